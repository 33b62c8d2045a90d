"""The stack service of this Locust process, shared by every User class in loadtests/.

Locust skips this file (its name starts with ``_``); the user files import it, and Python
imports it once, so the stack starts once per process whatever the classes: when Locust starts
in headless mode (its boot does not eat into --run-time), otherwise when a test starts; it
stops, with the harness's run report printed, when the test stops. In distributed mode each
worker runs its own stack and the master none.

A User class in loadtests/ other than WhatsAppContact runs only when named (on the command
line or in LOCUST_USER_CLASSES; ``enabled``): ``locust -f loadtests/`` alone runs the closed-loop
contacts, as it always has.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import sys
import time
from http.client import HTTPException
from typing import Any

from _stack_client import NotAnswered, StackClient, StackProcess
from gevent.lock import BoundedSemaphore
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.load.protocol import StackServiceError, StackSettings, add_locust_arguments
from harness.scenarios.conversation import DEMO_ORDER_OWNERS, TASKS, TEXTS
from harness.waiting import wait_until_blocking

logger = logging.getLogger("loadtests")


def enabled(class_name: str) -> bool:
    """Whether a User class was asked for: named in LOCUST_USER_CLASSES or on the command line
    (where Locust takes its class names). Workers must be given the same names."""
    named = os.environ.get("LOCUST_USER_CLASSES", "").split() + sys.argv[1:]
    return class_name in named


class Stack:
    """The stack service of this Locust process (one at a time)."""

    process: StackProcess | None = None
    error: str | None = None
    lock = BoundedSemaphore()  # init and test_start may both be starting it (workers)


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    add_locust_arguments(parser)
    parser.add_argument(
        "--arrival-rate",
        type=float,
        default=5.0,
        env_var="LOCUST_ARRIVAL_RATE",
        help="OpenLoopContacts: messages per second each user sends, answered or not"
        " (default %(default)s)",
    )
    parser.add_argument(
        "--burst-share",
        type=float,
        default=0.2,
        env_var="LOCUST_BURST_SHARE",
        help="OpenLoopContacts: share of arrivals that are a burst of 2-4 messages from one"
        " contact (default %(default)s)",
    )


def settings(environment: Environment) -> StackSettings:
    options = environment.parsed_options
    if options is None:
        return StackSettings()
    return StackSettings.from_namespace(options, prefix="stack_")


def start_stack(environment: Environment) -> None:
    with Stack.lock:
        if Stack.process is not None and Stack.process.running():
            return
        chosen = settings(environment)
        logger.info("starting the %s stack (model latency %s)", chosen.stack, chosen.model_latency)
        began = time.monotonic()
        process = StackProcess(chosen)
        Stack.process, Stack.error = process, None  # known to atexit from now on
        process.launch()
        try:
            process.wait_ready()
        except StackServiceError as exc:
            Stack.process, Stack.error = None, str(exc)
            process.kill()
            logger.error("the simulation stack did not start: %s", exc)
            environment.process_exit_code = 2
            return
        elapsed = time.monotonic() - began
        logger.info("simulation stack ready in %.1f s: %s", elapsed, process.broker)


def stop_stack() -> None:
    with Stack.lock:
        process, Stack.process = Stack.process, None
    if process is None:
        return
    answer = process.shutdown()
    text = (answer or {}).get("text")
    print("\n" + (text or "(no report: the stack service did not answer)"), flush=True)


class Workers:
    """On the master: the workers whose stacks are ready (they say so by a message)."""

    ready: set[str] = set()  # noqa: RUF012 - one master per process


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        # Each worker runs its own stack; the master runs none, but waits for theirs.
        runner.register_message("stack_ready", lambda msg, **_: Workers.ready.add(msg.node_id))
        return
    options = environment.parsed_options
    # A worker boots its stack as soon as it has joined the master, and tells it when ready.
    worker = isinstance(runner, WorkerRunner)
    if worker or (options is not None and options.headless):
        start_stack(environment)
        if Stack.error is not None:
            raise SystemExit(2)
        if isinstance(runner, WorkerRunner):
            runner.send_message("stack_ready", {})


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        start_stack(environment)
        return
    options = environment.parsed_options
    if options is None or not options.headless:
        return  # in the web UI a worker boots its stack again at each test's start
    # Headless: no user is sent before every worker's stack is ready, and a shape's clock
    # starts then (--run-time's has run since the start: give it the boot's time too).
    timeout = settings(environment).start_timeout
    wait_until_blocking(
        lambda: set(runner.clients) <= Workers.ready,
        timeout=timeout,
        what="every worker's stack ready",
        interval=0.2,
    )
    if environment.shape_class is not None:
        environment.shape_class.reset_time()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        stop_stack()


@atexit.register
def _on_exit() -> None:
    process, Stack.process = Stack.process, None
    if process is not None:
        process.kill()


def send_turn(
    environment: Environment, client: StackClient | None, phone: str, request_type: str
) -> None:
    """One message of a random task type from ``phone``, waited for and reported to Locust as
    a request of ``request_type`` named after the task type: the response time runs from the
    webhook post to the outcome; anything but a reply is a failure."""
    task_type = random.choice(TASKS)
    text = random.choice(TEXTS[task_type]).format(order=DEMO_ORDER_OWNERS.get(phone, 1042))
    began = time.perf_counter()
    exception: Exception | None = None
    response_time = 0.0
    length = 0
    if client is None:
        exception = StackServiceError(Stack.error or "the simulation stack is not running")
    else:
        try:
            result = client.turn(phone, text, task_type)
        except (OSError, ValueError, KeyError, HTTPException, StackServiceError) as exc:
            exception = exc
        else:
            response_time, length = result.latency_ms, result.reply_length
            if result.outcome != "reply":
                exception = NotAnswered(result.outcome, client.answer_timeout)
    if exception is not None and response_time == 0.0:
        response_time = (time.perf_counter() - began) * 1000
    environment.events.request.fire(
        request_type=request_type,
        name=task_type,
        response_time=response_time,
        response_length=length,
        exception=exception,
        context={"phone": phone},
    )
