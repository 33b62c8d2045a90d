"""What goes wrong during a scenario, each as a small coroutine beside the conversation mix."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fakes.wasender_faults import RateLimited, ServerError
from harness.broker import PrivateNode
from harness.stack import SimulationStack
from harness.waiting import WaitTimeout, wait_until

Fault = Callable[[SimulationStack], Coroutine[Any, Any, None]]


async def _nothing(stack: SimulationStack) -> None:
    return None


async def _wasender_outage(stack: SimulationStack) -> None:
    await asyncio.sleep(1.0)
    stack.wasender.inject(ServerError(503), duration=3.0)


async def _rate_limited(stack: SimulationStack) -> None:
    await asyncio.sleep(0.5)
    stack.wasender.inject(RateLimited(retry_after=1), times=3)


async def _broker_restart(stack: SimulationStack) -> None:
    if not isinstance(stack.broker, PrivateNode):
        raise RuntimeError("the broker-restart scenario needs a private node (HARNESS_BROKER)")
    await asyncio.sleep(2.0)
    await stack.broker.restart()


async def _broker_kill(stack: SimulationStack) -> None:
    if not isinstance(stack.broker, PrivateNode):
        raise RuntimeError("the broker-kill scenario needs a private node (HARNESS_BROKER)")
    await asyncio.sleep(2.0)
    await stack.broker.kill()
    await stack.broker.start()


async def _replica_kill(stack: SimulationStack) -> None:
    # Mid-run, while it holds requests: the last replica dies at once (no graceful stop), the
    # broker hands its unacked requests to the others, then it comes back.
    victim = stack.agents[-1]

    async def busy() -> bool:
        return await victim.in_flight() > 0

    with contextlib.suppress(WaitTimeout):  # a run too short to catch it busy: kill anyway
        await wait_until(busy, timeout=10, what="requests on the replica", interval=0.02)
    await victim.kill()
    await asyncio.sleep(2.0)
    await victim.start()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fault: Fault = _nothing
    stack_options: dict[str, Any] = field(default_factory=dict)
    duplicate_every: int = 0
    min_replicas: int = 1


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("happy", "the conversation mix, nothing goes wrong"),
        Scenario(
            "duplicates",
            "every third message arrives twice (messages.upsert and messages.received)",
            duplicate_every=3,
        ),
        Scenario("wasender-outage", "Wasender answers 503 for 3 s", _wasender_outage),
        Scenario("rate-limit", "Wasender answers 429 retry_after=1 three times", _rate_limited),
        Scenario(
            "model-failures",
            "20% of model calls fail transiently and are retried",
            stack_options={"model_failure_rate": 0.2},
        ),
        Scenario("broker-restart", "the broker restarts mid-run", _broker_restart),
        Scenario("broker-kill", "the broker is killed (SIGKILL) and started", _broker_kill),
        Scenario(
            "replica-kill",
            "one of the agent replicas (2 at least) is killed with SIGKILL mid-run and started"
            " again 2 s later; with --postgres no request is answered twice",
            _replica_kill,
            min_replicas=2,
        ),
    ]
}
