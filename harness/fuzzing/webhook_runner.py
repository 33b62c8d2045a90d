"""``harness fuzz-webhook``: Hypothesis webhook events against the Node side, with the figures.

    harness fuzz-webhook --examples 2000                      # our Node simulator
    harness fuzz-webhook --url http://127.0.0.1:3000/webhook --secret S \\
        --broker-url "$AMQP_URL" --queue ag_queue --examples 500

Against a real service, the harness consumes its agent queue to count requests: run it with no
agent service consuming there. Exit 1 when an answer was a 5xx (or none), or a message got other
than what it is owed (webhook_target.py); ``pytest -m fuzz`` runs a short fixed-seed budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from fakes.wasender import FakeWasender
from harness.fuzzing.webhook_target import WebhookTally, WebhookTarget
from harness.namespaces import broker_with_topology

if TYPE_CHECKING:
    from harness.fuzzing.live import LoopThread
    from harness.fuzzing.webhook_events import Case

ENV_OF_SIGNATURE = "HARNESS_WEBHOOK_SECRET"


def fuzz_webhook(
    target: WebhookTarget,
    loop: LoopThread,
    tally: WebhookTally,
    *,
    examples: int,
    seed_value: int,
    shrink: bool = False,
) -> None:
    """One Hypothesis run of ``examples`` batches; failures are recorded in ``tally``."""
    # Hypothesis comes with the test extra: imported here, so `harness --help` works without.
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from harness.fuzzing.webhook_events import webhook_batches

    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )
    @given(webhook_batches())
    def check(cases: list[Case]) -> None:
        loop.run(target.exchange(cases, tally))

    try:
        check()
    except Exception as exc:
        tally.failures.append(f"stopped at: {type(exc).__name__}: {str(exc)[:300]}")
    # A late duplicate of the last batch shows up only now.
    loop.run(asyncio.sleep(1.0))
    tally.failures += target.problems()


@contextlib.asynccontextmanager
async def simulator_target(secret: str) -> AsyncIterator[WebhookTarget]:
    """A broker, the topology, the fake Wasender and our Node simulator, with the target."""
    async with contextlib.AsyncExitStack() as stack:
        broker, topology = await broker_with_topology(stack)
        wasender = await stack.enter_async_context(FakeWasender(api_key=secrets.token_hex(8)))
        config = NodeSimulatorConfig(
            amqp_url=broker.url,
            topology=topology,
            wasender_url=wasender.url,
            wasender_api_key=wasender.api_key,
            webhook_secret=secret,
            max_retries=len(topology.webhook_retry_delays_ms),
        )
        node = await stack.enter_async_context(NodeSimulator(config))
        target = WebhookTarget(node.webhook_url, secret, broker.url, topology.agent_queue)
        await target.start()
        stack.push_async_callback(target.close)
        yield target


@contextlib.asynccontextmanager
async def url_target(args: argparse.Namespace) -> AsyncIterator[WebhookTarget]:
    target = WebhookTarget(args.url, args.secret, args.broker_url, args.queue)
    try:
        await target.start()
        yield target
    finally:
        await target.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="a Node service's webhook (default: our simulator)")
    p.add_argument(
        "--secret",
        default=os.environ.get(ENV_OF_SIGNATURE),
        help=f"X-Webhook-Signature to send (default ${ENV_OF_SIGNATURE}; generated for the"
        " simulator)",
    )
    p.add_argument("--broker-url", default=None, help="with --url: the broker its requests go to")
    p.add_argument("--queue", default="ag_queue", help="with --url: its agent queue")
    p.add_argument("--examples", type=int, default=200, help="batches (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the Hypothesis seed (default 0)")
    p.add_argument("--shrink", action="store_true", help="shrink a failure to a small example")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.url and not args.broker_url:
        print("error: --url needs --broker-url (and --queue) to count the requests")
        return 2
    if args.url is None:
        args.secret = args.secret or secrets.token_hex(16)
    try:  # Hypothesis comes with the test extra, not with the service
        from harness.fuzzing.live import LoopThread
    except ImportError as exc:
        print(f"error: harness fuzz-webhook needs the test extra ({exc}): pip install -e '.[test]'")
        return 2
    loop = LoopThread()
    tally = WebhookTally()
    began = time.monotonic()
    rig = url_target(args) if args.url else simulator_target(args.secret)
    try:
        target = loop.run(rig.__aenter__())
        try:
            print(f"fuzzing {target.webhook_url} ({args.examples} examples, seed {args.seed})")
            fuzz_webhook(
                target,
                loop,
                tally,
                examples=args.examples,
                seed_value=args.seed,
                shrink=args.shrink,
            )
        finally:
            loop.run(rig.__aexit__(None, None, None))
    finally:
        loop.close()
    print(tally.render(time.monotonic() - began))
    return 1 if tally.failures else 0
