"""Figures of the agent service: replies/s, latency, memory, recovery from broker restarts.

Everything runs on this machine: a private RabbitMQ node (``PrivateNode``), the service as a
child process (``python -m agent_service``, the scripted model, LOG_LEVEL=WARNING), and this
process publishing requests and consuming replies. Each run gets its own queue names.

    python -m harness.bench [--json PATH] [--quick]

How the figures were taken and what they mean: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from agent_service.contract.codec import decode_reply
from agent_service.contract.messages import AgentReply, AgentRequest, TaskType
from agent_service.contract.topology import Topology, declare, delete
from harness.agent_process import AgentServiceProcess
from harness.broker.private_node import PrivateNode
from harness.broker.readiness import handshake
from harness.message_factory import agent_request
from harness.namespaces import declared, run_prefix
from harness.queue_tools import publish_requests

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- what is measured ----------------------------------------------------------------------


@dataclass
class BacklogRun:
    """N requests queued before the service starts; timed from the first reply to the last."""

    name: str
    concurrent_tasks: int
    model_latency: str
    requests: int
    seconds: float = 0.0
    replies_per_second: float = 0.0
    # agentMetadata.processingTime: the service's own time per request (agent and model calls).
    processing_mean: float = 0.0
    processing_p95: float = 0.0
    # From publish to reply: with the backlog published before the service starts, this is
    # mostly the wait in the queue (and the service's start); not a per-request latency.
    publish_to_reply_mean: float = 0.0
    publish_to_reply_p95: float = 0.0
    service_cpu_ms_per_reply: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class MemoryRun:
    requests: int
    settings: dict[str, str] = field(default_factory=dict)  # beyond the service's defaults
    rss_mib_at_start: float = 0.0
    rss_mib_after: dict[int, float] = field(default_factory=dict)  # requests answered → MiB
    peak_rss_mib: float = 0.0


@dataclass
class RecoveryRun:
    """A broker restart (or kill -9 and start) while the service consumes."""

    how: str
    broker_seconds: float = 0.0  # the restart() call, or kill() + start()
    first_reply_from_call: float = 0.0
    first_reply_from_ready: float = 0.0


@dataclass
class Report:
    date: str
    command: str
    machine: dict[str, Any]
    versions: dict[str, str]
    runs: list[BacklogRun] = field(default_factory=list)
    memory: MemoryRun | None = None
    recovery: list[RecoveryRun] = field(default_factory=list)
    load_average_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    total_seconds: float = 0.0


# --- the process and the queues ------------------------------------------------------------


def _proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_mib(pid: int) -> float:
    return _proc_status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return _proc_status_kib(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat (user and system time), after the "(comm)" field.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _pid(service: AgentServiceProcess) -> int:
    if service.pid is None:
        raise RuntimeError("the agent service is not running")
    return service.pid


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def make_requests(n: int) -> list[AgentRequest]:
    """The four task types in turn, each request from its own phone number."""
    types = list(TaskType)
    return [agent_request(types[i % len(types)], phone=f"+2567{i:08d}") for i in range(n)]


class TimedReplies:
    """Consumes a reply queue and notes when each reply arrived (``time.monotonic()``)."""

    def __init__(self, connection: AbstractConnection, queue: str) -> None:
        self._connection = connection
        self._queue = queue
        self.first: dict[str, tuple[float, AgentReply]] = {}
        self.on_first_reply: Callable[[], object] | None = None  # called at the first reply
        self._wanted = 0
        self._enough = asyncio.Event()
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def __aenter__(self) -> TimedReplies:
        self._channel = await self._connection.channel()
        queue = await self._channel.get_queue(self._queue, ensure=False)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.monotonic()
        reply = decode_reply(message.body)
        if not self.first and self.on_first_reply is not None:
            self.on_first_reply()
        self.first.setdefault(reply.originalMessageId, (now, reply))
        if len(self.first) >= self._wanted:
            self._enough.set()

    async def wait_for(self, count: int, timeout: float) -> None:
        """Until ``count`` distinct requests have a reply (TimeoutError after ``timeout``)."""
        self._wanted = count
        self._enough.clear()
        if len(self.first) < count:
            await asyncio.wait_for(self._enough.wait(), timeout)


def agent_service(
    url: str,
    topology: Topology,
    tasks: int,
    latency: str,
    log_dir: Path,
    name: str,
    **env: str,
) -> AgentServiceProcess:
    """The service as a child process (not started: ``async with`` it); ``env`` adds settings."""
    settings: dict[str, Any] = {
        "CONCURRENT_TASKS": str(tasks),
        "SCRIPTED_LATENCY": latency,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    log_path = log_dir / f"{name.replace(' ', '-')}-{tasks}.log"
    return AgentServiceProcess(url, topology, log_path=log_path, **settings)


@contextlib.asynccontextmanager
async def declared_for_restarts(url: str, topology: Topology) -> AsyncIterator[Topology]:
    """Declare on a connection of its own; delete afterwards on a new one (the broker may have
    restarted in between, taking the first connection with it)."""
    async with await aio_pika.connect(url, timeout=10) as connection:
        await declare(await connection.channel(), topology)
    try:
        yield topology
    finally:
        with contextlib.suppress(Exception):
            async with await aio_pika.connect(url, timeout=10) as connection:
                await delete(await connection.channel(), topology)


# --- the runs ------------------------------------------------------------------------------


async def backlog_run(
    node: PrivateNode, connection: AbstractConnection, run: BacklogRun, log_dir: Path
) -> BacklogRun:
    topology = Topology().renamed(run_prefix())
    async with declared(connection, topology):
        requests = make_requests(run.requests)
        channel = await connection.channel(publisher_confirms=True)
        await publish_requests(channel, topology, requests)
        published = {r.messageId: r.timestamp / 1000 for r in requests}
        await channel.close()
        service = agent_service(
            node.url, topology, run.concurrent_tasks, run.model_latency, log_dir, run.name
        )
        cpu_at_first: list[float] = []
        async with TimedReplies(connection, topology.webhook_queue) as replies:
            # The first replies may arrive before the service reports ready.
            replies.on_first_reply = lambda: cpu_at_first.append(cpu_seconds(_pid(service)))
            async with service:
                await replies.wait_for(run.requests, timeout=60 + run.requests * 2.0)
                cpu_at_last = cpu_seconds(_pid(service))
    return summarize(run, replies, published, cpu_at_last - cpu_at_first[0])


def summarize(
    run: BacklogRun, replies: TimedReplies, published: dict[str, float], cpu: float
) -> BacklogRun:
    arrivals = sorted(t for t, _ in replies.first.values())
    run.seconds = arrivals[-1] - arrivals[0]
    run.replies_per_second = (len(arrivals) - 1) / run.seconds if run.seconds else 0.0
    processing = [r.agentMetadata.processingTime for _, r in replies.first.values()]
    run.processing_mean, run.processing_p95 = mean(processing), percentile(processing, 0.95)
    # Wall clock on both sides (a request's timestamp is set just before it is published).
    offset = time.time() - time.monotonic()
    waited = [t + offset - published[i] for i, (t, _) in replies.first.items()]
    run.publish_to_reply_mean, run.publish_to_reply_p95 = mean(waited), percentile(waited, 0.95)
    run.service_cpu_ms_per_reply = 1000 * cpu / max(1, len(arrivals) - 1)
    for _, reply in replies.first.values():
        run.statuses[reply.status.value] = run.statuses.get(reply.status.value, 0) + 1
    return run


async def memory_run(
    node: PrivateNode,
    connection: AbstractConnection,
    total: int,
    log_dir: Path,
    **env: str,
) -> MemoryRun:
    """RSS of an idle, ready service, then after every 1,000 requests (latency 0)."""
    result = MemoryRun(total, dict(env))
    topology = Topology().renamed(run_prefix())
    async with (
        declared(connection, topology),
        TimedReplies(connection, topology.webhook_queue) as replies,
        agent_service(node.url, topology, 5, "0", log_dir, "memory", **env) as service,
    ):
        pid = _pid(service)
        await asyncio.sleep(1.0)
        result.rss_mib_at_start = rss_mib(pid)
        channel = await connection.channel(publisher_confirms=True)
        step = min(1000, total)
        for done in range(step, total + 1, step):
            await publish_requests(channel, topology, make_requests(step))
            await replies.wait_for(done, timeout=60 + step * 2.0)
            result.rss_mib_after[done] = rss_mib(pid)
        result.peak_rss_mib = peak_rss_mib(pid)
        await channel.close()
    return result


async def _first_reply(url: str, topology: Topology, timeout: float = 60.0) -> float:
    """Publish one request on a new connection; the monotonic time its reply arrived."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection, TimedReplies(connection, topology.webhook_queue) as replies:
        channel = await connection.channel(publisher_confirms=True)
        request = make_requests(1)[0]
        await publish_requests(channel, topology, [request], retry_for=10.0)
        await replies.wait_for(1, timeout)
        return replies.first[request.messageId][0]


async def recovery_runs(node: PrivateNode, rounds: int, log_dir: Path) -> list[RecoveryRun]:
    """Restart the broker (then kill -9 and start it) under a consuming service, ``rounds``
    times each, and time the first reply to a request published once the node answers."""
    topology = Topology().renamed(run_prefix())
    results = []
    async with (
        declared_for_restarts(node.url, topology),
        agent_service(node.url, topology, 5, "0", log_dir, "recovery"),
    ):
        await _first_reply(node.url, topology)  # the service consumes before the fault
        for how in ["restart"] * rounds + ["kill -9 + start"] * rounds:
            run = RecoveryRun(how)
            called = time.monotonic()
            if how == "restart":
                await node.restart()
            else:
                await node.kill()
                await node.start()
            ready = time.monotonic()
            first = await _first_reply(node.url, topology)
            run.broker_seconds = ready - called
            run.first_reply_from_call = first - called
            run.first_reply_from_ready = first - ready
            results.append(run)
    return results


# --- the report ----------------------------------------------------------------------------


async def describe(node: PrivateNode, command: str) -> Report:
    props = await handshake(node.url)

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    versions = {
        "python": platform.python_version(),
        "rabbitmq": text(props.get("version")),
        "erlang": text(props.get("platform")),
    }
    for package in ("aio-pika", "google-adk", "pydantic"):
        versions[package] = metadata.version(package)
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "load_average_before": load_average(),
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return Report(now, command, machine, versions)


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minutes: other programs on the machine share its cores with the bench."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def render(report: Report) -> str:
    v = report.versions
    lines = [
        f"agent service benchmark, {report.date}, {report.machine['cpus']} CPUs "
        f"({report.machine['processor']}), RabbitMQ {v['rabbitmq']}, Python {v['python']}",
    ]
    if report.runs:
        lines += [
            "",
            f"{'run':<22}{'tasks':>6}{'latency':>8}{'requests':>9}{'seconds':>9}"
            f"{'replies/s':>10}{'proc mean':>10}{'proc p95':>9}{'cpu ms/reply':>13}",
        ]
    for r in report.runs:
        lines.append(
            f"{r.name:<22}{r.concurrent_tasks:>6}{r.model_latency:>8}{r.requests:>9}"
            f"{r.seconds:>9.1f}{r.replies_per_second:>10.1f}{r.processing_mean:>10.3f}"
            f"{r.processing_p95:>9.3f}{r.service_cpu_ms_per_reply:>13.1f}"
        )
    if report.memory:
        m = report.memory
        after = ", ".join(f"{n}: {mib:.0f}" for n, mib in m.rss_mib_after.items())
        lines += [
            "",
            f"service RSS (MiB){' with ' + str(m.settings) if m.settings else ''}: "
            f"at start {m.rss_mib_at_start:.0f}; after N requests {after}; "
            f"peak {m.peak_rss_mib:.0f}",
        ]
    if report.recovery:
        lines += [
            "",
            f"{'broker fault':<18}{'broker s':>9}{'reply from call':>17}{'from ready':>12}",
        ]
        for rec in report.recovery:
            lines.append(
                f"{rec.how:<18}{rec.broker_seconds:>9.2f}{rec.first_reply_from_call:>17.2f}"
                f"{rec.first_reply_from_ready:>12.2f}"
            )
    lines += [
        "",
        f"total {report.total_seconds:.0f} s, load average after {report.load_average_after}",
    ]
    return "\n".join(lines)


PARTS = ("throughput", "latency", "memory", "recovery")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n")[0])
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
    return p


def plan(parts: Sequence[str], quick: bool) -> tuple[list[BacklogRun], int]:
    """The backlog runs and the memory run's request count."""
    scale = 10 if quick else 1
    runs = []
    if "throughput" in parts:
        runs += [
            BacklogRun("throughput", 5, "0", 2000 // scale),
            BacklogRun("throughput", 20, "0", 2000 // scale),
        ]
    if "latency" in parts:
        runs += [
            BacklogRun("slow model", 5, "1.0", 100 // scale),
            BacklogRun("slow model", 50, "1.0", 500 // scale),
        ]
    return runs, 5000 // scale


async def measure(args: argparse.Namespace, command: str, log_dir: Path) -> Report:
    runs, memory_requests = plan(args.only, args.quick)
    async with PrivateNode() as node:
        report = await describe(node, command)
        connection = await aio_pika.connect(node.url, timeout=10)
        async with connection:
            for run in runs:
                _progress(f"{run.name}, {run.concurrent_tasks} tasks, {run.requests} requests")
                report.runs.append(await backlog_run(node, connection, run, log_dir))
            if "memory" in args.only:
                _progress(f"memory, {memory_requests} requests")
                env = {"DEDUP_TTL": args.dedup_ttl} if args.dedup_ttl else {}
                report.memory = await memory_run(node, connection, memory_requests, log_dir, **env)
        if "recovery" in args.only:
            _progress(f"broker restarts and kills, {args.rounds} of each")
            report.recovery = await recovery_runs(node, args.rounds, log_dir)
    return report


def _progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    began = time.monotonic()
    command = " ".join(["python -m harness.bench", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as scratch:
        log_dir = args.log_dir or Path(scratch)
        log_dir.mkdir(parents=True, exist_ok=True)
        report = await measure(args, command, log_dir)
    report.load_average_after = load_average()
    report.total_seconds = time.monotonic() - began
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
