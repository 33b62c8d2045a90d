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
from harness.bench.overhead import engine_run
from harness.bench.procstat import load_average
from harness.bench.report import BenchReport, describe, render
from harness.bench.runs import BacklogRun, backlog_run, make_requests, memory_run, recovery_runs
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="a tenth of the requests: a smoke run")
    p.add_argument(
        "--only", nargs="+", choices=PARTS, default=list(PARTS), help="measure only these parts"
    )
    p.add_argument("--rounds", type=int, default=2, help="broker restarts (and kills) to time")
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
        async with connection:
            if "overhead" in args.only:
                count = 2000 // (10 if args.quick else 1)
                _progress(f"overhead: the engine alone, then the service, {count} requests each")
                report.engine = await engine_run(make_requests(count), 5)
                service_run = BacklogRun("overhead", 5, "0", count, warm=True)
                report.service = await backlog_run(
                    node, connection, service_run, log_dir, event_loop=args.event_loop
                )
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
        if "recovery" in args.only:
            _progress(f"broker restarts and kills, {args.rounds} of each")
            report.recovery = await recovery_runs(node, args.rounds, log_dir)
    if "profiles" in args.only:
        report.runs += await profile_runs(args.quick, log_dir)
    return report


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
