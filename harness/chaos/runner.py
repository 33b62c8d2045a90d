"""``harness chaos``: the chaos state machine (harness/chaos/model.py) for minutes.

    harness chaos --minutes 10 [--seed 0] [--steps 12]

starts a broker the harness controls, the whole system behind fault links with two agent
replicas sharing PostgreSQL, and runs examples of the state machine, one seed after the other,
until the time is up. A failing example is shrunk by Hypothesis, which prints the shortest
sequence of steps it found that still fails; the command then exits 1. ``pytest -m chaos``
runs the same machine with fixed seeds and a small step budget.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import run_state_machine_as_test

from harness.broker import Broker, BrokerError, choose_broker
from harness.chaos.model import ChaosWorld, broker_nodes, chaos_machine
from harness.fuzzing.live import LoopThread
from harness.postgres import server_url
from harness.stack import StackOptions

# Examples per seed: the time budget is checked between rounds. Hypothesis's first example of
# a run is its simplest (the same rule every step), so rounds are not of one example.
EXAMPLES_PER_ROUND = 5


def chaos_options(postgres: str | None) -> StackOptions:
    """The system the machine runs on: every party behind a link, a heartbeat short enough
    that a blackhole longer than a few seconds drops connections, two replicas."""
    return StackOptions(
        model_latency="uniform:0.01:0.1",
        network=True,
        heartbeat=2,
        replicas=2,
        postgres=postgres,
    )


def chaos_settings(examples: int, steps: int, *, shrink: bool = True) -> settings:
    phases = [Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def run_examples(
    world: ChaosWorld, seed_value: int, examples: int, steps: int, *, shrink: bool = True
) -> None:
    """Examples of the machine on ``world`` from one seed; raises the (shrunk) failure."""
    machine = seed(seed_value)(chaos_machine(world))
    run_state_machine_as_test(machine, settings=chaos_settings(examples, steps, shrink=shrink))


@dataclass
class ChaosRun:
    seeds: int = 0
    failure: str | None = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=1.0, help="how long (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default %(default)s)")
    p.add_argument(
        "--steps", type=int, default=12, help="steps per example at most (default %(default)s)"
    )
    p.add_argument(
        "--postgres",
        default=server_url(),
        metavar="SERVER_URL",
        help="PostgreSQL server for the replicas' shared state (default %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    broker: Broker = choose_broker()
    if not broker_nodes(broker):
        raise BrokerError("harness chaos kills broker nodes: it needs HARNESS_BROKER=private")
    loop = LoopThread()
    began = time.monotonic()
    run = ChaosRun()
    try:
        loop.run(broker.__aenter__(), timeout=120)
        world = ChaosWorld(chaos_options(args.postgres), broker)
        world.open()
        try:
            deadline = began + args.minutes * 60
            seed_value = args.seed
            while time.monotonic() < deadline and run.failure is None:
                try:
                    run_examples(world, seed_value, examples=EXAMPLES_PER_ROUND, steps=args.steps)
                except Exception as exc:  # the shrunk failing sequence is printed above
                    run.failure = f"seed {seed_value}: {exc}"
                run.seeds += 1
                seed_value += 1
        finally:
            world.close()
    finally:
        loop.run(broker.__aexit__(None, None, None), timeout=120)
        loop.close()
    took = time.monotonic() - began
    messages = len(world.stack.ledger.entries)
    print(
        f"chaos: {world.steps} steps in {world.examples} examples ({run.seeds} seeds),"
        f" {messages} messages, in {took / 60:.1f} min"
    )
    if run.failure:
        print(f"FAIL: {run.failure}")
        return 1
    print("PASS: every example healed and drained with every message's one outcome")
    return 0
