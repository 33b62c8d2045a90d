"""``harness fuzz``: Hypothesis-driven envelopes against a running agent service, for minutes.

    harness fuzz --minutes 10 --db .hypothesis/live

starts a broker (as ``harness simulate`` does), the agent service as its own process with the
scripted model, and sends batches of envelopes until the time is up; saved failing examples in
``--db`` are replayed first. Exit code 1 when an envelope got the wrong outcome or the service
died. ``pytest -m fuzz`` runs the same check with a short, fixed-seed budget.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from harness.agent_process import AgentServiceProcess
from harness.fuzzing.envelopes import Envelope, batches
from harness.fuzzing.live import LiveTarget, LoopThread, Tally
from harness.namespaces import broker_with_topology

# Small rounds: the time budget is checked between them.
_EXAMPLES_PER_ROUND = 50


def fuzz_round(
    target: LiveTarget,
    loop: LoopThread,
    tally: Tally,
    *,
    examples: int,
    seed_value: int,
    database: ExampleDatabase | None = None,
    batch: int = 8,
    shrink: bool = True,
) -> None:
    """One Hypothesis run of ``examples`` batches; a failure is recorded in ``tally``.
    Shrinking replays batches against the live service for minutes: CI turns it off."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=database,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(batches(batch))
    def check(envelopes_: list[Envelope]) -> None:
        verdicts = loop.run(target.exchange(envelopes_))
        tally.examples += 1
        tally.envelopes += len(envelopes_)
        tally.outcomes.update(verdicts)

    try:
        check()
    except Exception as exc:
        tally.failures.append(f"{type(exc).__name__}: {exc}")


@dataclass
class FuzzRig:
    target: LiveTarget
    service: AgentServiceProcess


@contextlib.asynccontextmanager
async def fuzz_rig(log_dir: Path) -> AsyncIterator[FuzzRig]:
    """A broker, the topology, the agent service process and the target, torn down after."""
    async with contextlib.AsyncExitStack() as stack:
        broker, topology = await broker_with_topology(stack)
        service = AgentServiceProcess(
            broker.url, topology, log_path=log_dir / "agent.log", concurrent_tasks=10
        )
        await stack.enter_async_context(service)
        target = LiveTarget(broker.url, topology, f"http://127.0.0.1:{service.health_port}/metrics")
        await target.start()
        stack.push_async_callback(target.close)
        yield FuzzRig(target, service)


def main(args: argparse.Namespace) -> int:
    loop = LoopThread()
    tally = Tally()
    log_dir = Path(tempfile.mkdtemp(prefix="harness-fuzz-"))
    rig_cm = fuzz_rig(log_dir)
    began = time.monotonic()
    try:
        rig = loop.run(rig_cm.__aenter__())
        database = DirectoryBasedExampleDatabase(args.db)
        deadline = began + args.minutes * 60
        round_ = 0
        while time.monotonic() < deadline and not tally.failures:
            fuzz_round(
                rig.target,
                loop,
                tally,
                examples=_EXAMPLES_PER_ROUND,
                seed_value=args.seed + round_,
                database=database,
                batch=args.batch,
            )
            round_ += 1
        alive = rig.service.process is not None and rig.service.process.returncode is None
    finally:
        loop.run(rig_cm.__aexit__(None, None, None))
        loop.close()
    print(render(tally, time.monotonic() - began, alive, log_dir))
    return 0 if alive and not tally.failures else 1


def render(tally: Tally, seconds: float, alive: bool, log_dir: Path) -> str:
    lines = [
        f"Live envelope fuzzing: {tally.envelopes} envelopes in {tally.examples} examples,"
        f" {seconds:.0f} s ({tally.envelopes / seconds if seconds else 0:.0f} envelopes/s)",
        "",
        "  outcome         " + ", ".join(f"{k} {v}" for k, v in sorted(tally.by_outcome().items())),
        "  per kind",
    ]
    per_kind: dict[str, list[str]] = {}
    for (kind, outcome), n in sorted(tally.outcomes.items()):
        per_kind.setdefault(kind, []).append(f"{outcome} {n}")
    lines += [f"    {kind:<32} {', '.join(parts)}" for kind, parts in per_kind.items()]
    lines += [
        "",
        f"  service         {'alive and consuming' if alive else 'DIED'} (log: {log_dir})",
        f"  crashes         {0 if alive else 1}",
    ]
    lines += [f"  FAILURE         {f}" for f in tally.failures]
    lines.append("PASS" if alive and not tally.failures else "FAIL")
    return "\n".join(lines)
