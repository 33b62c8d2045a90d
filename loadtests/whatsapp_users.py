"""Locust profile: WhatsApp contacts writing to the business number.

Each Locust user is one contact with its own phone number. It sends a realistic message of a
random task type (harness.scenarios.conversation.TEXTS), waits for what the contact gets back
and reports it as a request of type ``whatsapp`` named after the task type: the response time
runs from the webhook post to the outcome (the reply's send at the fake Wasender, or the admin
alert of a parked reply). A reply is a success; the fallback text, a parked message and no
outcome within ``--answer-timeout`` are failures. Then the contact thinks for 0.5 to 2 s.

The system under test is a whole SimulationStack that the profile runs itself, in a stack
service process (harness/load/stack_service.py says why not in Locust's process): started when
Locust starts in headless mode (so its boot does not eat into --run-time), otherwise when a test
starts; stopped, with the harness's run report printed, when the test stops.

    locust -f loadtests/ --headless -u 5 -r 5 -t 30s
    locust -f loadtests/                 # web UI on http://127.0.0.1:8089
"""

from __future__ import annotations

import atexit
import itertools
import logging
import random
import time
from http.client import HTTPException
from typing import Any

from _stack_client import NotAnswered, StackClient, StackProcess
from gevent.lock import BoundedSemaphore
from locust import User, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from harness.load.protocol import StackServiceError, StackSettings, add_locust_arguments
from harness.scenarios.conversation import DEMO_ORDER_OWNERS, TASKS, TEXTS, contact_phone

logger = logging.getLogger("whatsapp_users")
_phones = itertools.count()


class _Stack:
    """The stack service of this Locust process (one at a time)."""

    process: StackProcess | None = None
    error: str | None = None
    lock = BoundedSemaphore()  # init and test_start may both be starting it (workers)


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    add_locust_arguments(parser)


def _settings(environment: Environment) -> StackSettings:
    options = environment.parsed_options
    if options is None:
        return StackSettings()
    return StackSettings.from_namespace(options, prefix="stack_")


def _start_stack(environment: Environment) -> None:
    with _Stack.lock:
        if _Stack.process is not None and _Stack.process.running():
            return
        settings = _settings(environment)
        logger.info("starting the simulation stack (model latency %s)", settings.model_latency)
        began = time.monotonic()
        process = StackProcess(settings)
        _Stack.process, _Stack.error = process, None  # known to atexit from now on
        process.launch()
        try:
            process.wait_ready()
        except StackServiceError as exc:
            _Stack.process, _Stack.error = None, str(exc)
            process.kill()
            logger.error("the simulation stack did not start: %s", exc)
            environment.process_exit_code = 2
            return
        elapsed = time.monotonic() - began
        logger.info("simulation stack ready in %.1f s: %s", elapsed, process.broker)


def _stop_stack() -> None:
    with _Stack.lock:
        process, _Stack.process = _Stack.process, None
    if process is None:
        return
    answer = process.shutdown()
    text = (answer or {}).get("text")
    print("\n" + (text or "(no report: the stack service did not answer)"), flush=True)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return  # each worker runs its own stack; the master runs none
    options = environment.parsed_options
    if options is not None and options.headless:
        _start_stack(environment)
        if _Stack.error is not None:
            raise SystemExit(2)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        _start_stack(environment)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        _stop_stack()


@atexit.register
def _on_exit() -> None:
    process, _Stack.process = _Stack.process, None
    if process is not None:
        process.kill()


class WhatsAppContact(User):
    """One contact: write, wait for the answer, think, write again."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.phone = contact_phone(next(_phones))
        self.client: StackClient | None = None
        if _Stack.process is not None:
            self.client = _Stack.process.client()

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.close()

    @task
    def send_message(self) -> None:
        task_type = random.choice(TASKS)
        text = random.choice(TEXTS[task_type]).format(order=DEMO_ORDER_OWNERS.get(self.phone, 1042))
        began = time.perf_counter()
        exception: Exception | None = None
        response_time = 0.0
        length = 0
        if self.client is None:
            exception = StackServiceError(_Stack.error or "the simulation stack is not running")
        else:
            try:
                result = self.client.turn(self.phone, text, task_type)
            except (OSError, ValueError, KeyError, HTTPException, StackServiceError) as exc:
                exception = exc
            else:
                response_time, length = result.latency_ms, result.reply_length
                if result.outcome != "reply":
                    exception = NotAnswered(result.outcome, self.client.answer_timeout)
        if exception is not None and response_time == 0.0:
            response_time = (time.perf_counter() - began) * 1000
        self.environment.events.request.fire(
            request_type="whatsapp",
            name=task_type,
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={"phone": self.phone},
        )
