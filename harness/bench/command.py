"""``harness bench``: replies/s, latency, memory and recovery figures of the agent service.

    harness bench [--json PATH] [--quick] [--only throughput latency ...]

Everything runs on this machine: a private RabbitMQ node, the service as a child process,
and this process publishing requests and consuming replies. How the figures were taken and
what they mean: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aio_pika

from agent_service.contract.topology import PROFILES
from agent_service.event_loop import run as run_on_loop
from harness.bench.openloop import OpenLoopRun, openloop_run
from harness.bench.overhead import engine_run
from harness.bench.procstat import load_average
from harness.bench.report import BenchReport, OverheadPair, describe, render
from harness.bench.runs import BacklogRun, backlog_run, make_requests, memory_run, recovery_runs
from harness.bench.soak import SoakRun, soak_run
from harness.broker.cluster import BrokerCluster
from harness.broker.private_node import PrivateNode
from harness.postgres import server_url

PARTS = (
    "overhead",
    "throughput",
    "latency",
    "production-path",
    "replicas",
    "memory",
    "recovery",
    "profiles",
)
# Long or special runs: only when named with --only.
EXTRA_PARTS = ("soak", "openloop")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="a tenth of the requests: a smoke run")
    p.add_argument(
        "--only",
        nargs="+",
        choices=PARTS + EXTRA_PARTS,
        default=list(PARTS),
        help="measure only these parts (soak runs only when named)",
    )
    p.add_argument("--requests", type=int, default=50_000, help="the soak's requests after warm-up")
    p.add_argument(
        "--capacity",
        action="store_true",
        help="only the capacity sweep (CONCURRENT_TASKS x model latency, replicas), the sizing"
        " rule and its check; writes --capacity-report and its plots (--quick: a small sweep)",
    )
    p.add_argument(
        "--capacity-report",
        type=Path,
        default=Path("docs/capacity.md"),
        help="the capacity report's Markdown; the PNGs go to a folder of its stem (default"
        " %(default)s, docs/capacity/*.png)",
    )
    p.add_argument("--rate", type=float, default=50.0, help="openloop: messages per second")
    p.add_argument("--seconds", type=float, default=30.0, help="openloop: how long to send")
    p.add_argument(
        "--model-latency", type=float, default=0.2, help="openloop: seconds per model call"
    )
    p.add_argument("--warm-up", type=int, default=5_000, help="the soak's warm-up requests")
    p.add_argument("--rounds", type=int, default=2, help="broker restarts (and kills) to time")
    p.add_argument(
        "--overhead-pairs",
        type=int,
        default=3,
        help="engine-alone and service runs, back to back, for the overhead's median ratio",
    )
    p.add_argument(
        "--dedup-ttl", help="DEDUP_TTL (seconds) for the memory run (default: the service's)"
    )
    p.add_argument("--log-dir", type=Path, help="keep the service logs here")
    p.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the services' EVENT_LOOP, and this process's for the engine-alone run"
        " (default %(default)s, as the service's)",
    )


def plan(parts: Sequence[str], quick: bool) -> tuple[list[BacklogRun], int]:
    """The backlog runs and the memory run's request count."""
    scale = 10 if quick else 1
    runs = []
    if "throughput" in parts:
        runs += [
            BacklogRun("throughput", 5, "0", 2000 // scale),
            BacklogRun("throughput", 20, "0", 2000 // scale),
        ]
    if "production-path" in parts:
        # ADK's Gemini model, google-genai and HTTP to the fake Gemini API: what the service's
        # CPU per reply is on the path production takes, beside the scripted model's.
        runs.append(BacklogRun("throughput", 5, "0", 1000 // scale, model="gemini-fake"))
    if "replicas" in parts:
        # Replicas sharing their state in PostgreSQL, at a slow model and at none; one
        # replica with the embedded state beside them gives the shared store's cost.
        server = server_url()
        for latency, requests in (("1.0", 150), ("0", 1000)):
            for replicas in (1, 2, 3):
                runs.append(
                    BacklogRun(
                        "replicas",
                        5,
                        latency,
                        requests // scale,
                        replicas=replicas,
                        postgres=server,
                        # Warmed, and the backlog published only once every replica consumes
                        # and the database's count before it is read: otherwise the first
                        # replica takes the backlog alone while the others start.
                        warm=True,
                    )
                )
        runs.append(BacklogRun("replicas", 5, "0", 1000 // scale, warm=True))
    if "latency" in parts:
        runs += [
            BacklogRun("slow model", 5, "1.0", 100 // scale),
            BacklogRun("slow model", 50, "1.0", 500 // scale),
        ]
    return runs, 5000 // scale


@contextlib.asynccontextmanager
async def model_settings(run: BacklogRun) -> AsyncIterator[dict[str, Any]]:
    """The service settings of the run's model; a fake Gemini API runs for the block."""
    if run.model != "gemini-fake":
        yield {}
        return
    from fakes.gemini import FakeGemini  # loads google-genai: only when this run needs it

    async with FakeGemini(api_key=secrets.token_hex(8)) as gemini:
        yield {
            "agent_model": "gemini-2.5-flash",
            "google_api_key": gemini.api_key,
            "google_gemini_base_url": gemini.url,
        }


async def measure(args: argparse.Namespace, command: str, log_dir: Path) -> BenchReport:
    runs, memory_requests = plan(args.only, args.quick)
    async with PrivateNode() as node:
        report = await describe(node, command)
        connection = await aio_pika.connect(node.url, timeout=10)
        if args.capacity:
            async with connection:
                await _capacity(args, command, node, connection, log_dir)
            return report
        async with connection:
            if "overhead" in args.only:
                count = 2000 // (10 if args.quick else 1)
                pairs = 1 if args.quick else args.overhead_pairs
                _progress(
                    f"overhead: the engine alone, then the service, {count} requests each,"
                    f" {pairs} times"
                )
                for _ in range(pairs):
                    engine = await engine_run(make_requests(count), 5)
                    service_run = BacklogRun("overhead", 5, "0", count, warm=True)
                    service = await backlog_run(
                        node, connection, service_run, log_dir, event_loop=args.event_loop
                    )
                    report.overhead.append(OverheadPair(engine, service))
            for run in runs:
                _progress(
                    f"{run.name} ({run.model}), {run.concurrent_tasks} tasks, {run.requests}"
                    " requests"
                )
                async with model_settings(run) as settings:
                    report.runs.append(
                        await backlog_run(node, connection, run, log_dir, **settings)
                    )
            if "memory" in args.only:
                _progress(f"memory, {memory_requests} requests")
                env = {"dedup_ttl": args.dedup_ttl} if args.dedup_ttl else {}
                report.memory = await memory_run(node, connection, memory_requests, log_dir, **env)
            if "soak" in args.only:
                soak = SoakRun(args.requests, args.warm_up, every=min(10_000, args.requests))
                _progress(f"soak, {soak.warm_up} + {soak.requests} requests")
                env = {"dedup_ttl": args.dedup_ttl} if args.dedup_ttl else {}
                report.soak = await soak_run(node, connection, soak, log_dir, **env)
        if "openloop" in args.only:
            seconds = args.seconds / (3 if args.quick else 1)
            loop = OpenLoopRun(args.rate, seconds, args.model_latency, concurrent_tasks=50)
            _progress(f"open loop, {loop.rate:g} messages/s for {loop.seconds:g} s")
            report.openloop = await openloop_run(loop, node)
        if "recovery" in args.only:
            _progress(f"broker restarts and kills, {args.rounds} of each")
            report.recovery = await recovery_runs(node, args.rounds, log_dir)
    if "profiles" in args.only:
        report.runs += await profile_runs(args.quick, log_dir)
    return report


async def _capacity(
    args: argparse.Namespace,
    command: str,
    node: PrivateNode,
    connection: aio_pika.abc.AbstractConnection,
    log_dir: Path,
) -> None:
    from harness.bench.capacity import FULL, QUICK, sweep
    from harness.bench.capacity_report import write  # matplotlib: only when asked for

    capacity = await sweep(node, connection, QUICK if args.quick else FULL, log_dir)
    capacity.load_average = load_average()
    for path in write(capacity, command, args.capacity_report):
        print(f"wrote {path}", file=sys.stderr)


async def profile_runs(quick: bool, log_dir: Path) -> list[BacklogRun]:
    """The same warm backlog through classic and through quorum queues, on one 3-node cluster:
    what replication costs (classic queues live on one node of it, quorum queues on all)."""
    requests = 1000 // (10 if quick else 1)
    _progress(f"profiles: a 3-node cluster, classic then quorum queues, {requests} requests each")
    done = []
    async with BrokerCluster() as cluster:
        connection = await aio_pika.connect(cluster.url, timeout=10)
        async with connection:
            for profile in PROFILES:
                run = BacklogRun(f"profile {profile}", 5, "0", requests, warm=True, profile=profile)
                done.append(await backlog_run(cluster, connection, run, log_dir))
    return done


def _progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, command: str) -> BenchReport:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as scratch:
        log_dir = args.log_dir or Path(scratch)
        log_dir.mkdir(parents=True, exist_ok=True)
        report = await measure(args, command, log_dir)
    report.load_average_after = load_average()
    report.total_seconds = time.monotonic() - began
    return report


def main(args: argparse.Namespace) -> int:
    command = " ".join(["harness bench", *sys.argv[2:]])
    report = run_on_loop(run(args, command), args.event_loop)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
