"""The bench's report: what was measured, on which machine and versions, as text and JSON."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from harness.bench.openloop import OpenLoopRun, render_openloop
from harness.bench.overhead import EngineRun
from harness.bench.procstat import cpu_model, load_average
from harness.bench.runs import BacklogRun, MemoryRun, RecoveryRun
from harness.bench.soak import SoakRun, render_soak
from harness.broker.private_node import PrivateNode
from harness.broker.readiness import handshake


@dataclass
class OverheadPair:
    engine: EngineRun
    service: BacklogRun

    @property
    def ratio(self) -> float:
        """The service's replies/s as a share of the engine's requests/s on the same requests."""
        e = self.engine.requests_per_second
        return self.service.replies_per_second / e if e else 0.0


def median_pair(pairs: list[OverheadPair]) -> OverheadPair:
    """The pair whose ratio is the median (the lower middle one of an even number)."""
    return sorted(pairs, key=lambda p: p.ratio)[(len(pairs) - 1) // 2]


@dataclass
class BenchReport:
    date: str
    command: str
    machine: dict[str, Any]
    versions: dict[str, str]
    runs: list[BacklogRun] = field(default_factory=list)
    memory: MemoryRun | None = None
    recovery: list[RecoveryRun] = field(default_factory=list)
    # The engine alone and the service on the same requests, in alternating pairs (on a shared
    # machine the load drifts; a pair run back to back sees about the same load).
    overhead: list[OverheadPair] = field(default_factory=list)
    soak: SoakRun | None = None
    openloop: OpenLoopRun | None = None
    load_average_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    total_seconds: float = 0.0


async def describe(node: PrivateNode, command: str) -> BenchReport:
    props = await handshake(node.url)

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    versions = {
        "python": platform.python_version(),
        "rabbitmq": text(props.get("version")),
        "erlang": text(props.get("platform")),
    }
    for package in ("aio-pika", "google-adk", "google-genai", "pydantic"):
        versions[package] = metadata.version(package)
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": cpu_model(),
        "load_average_before": load_average(),
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return BenchReport(now, command, machine, versions)


def render(report: BenchReport) -> str:
    v = report.versions
    lines = [
        f"agent service benchmark, {report.date}, {report.machine['cpus']} CPUs "
        f"({report.machine['processor']}), RabbitMQ {v['rabbitmq']}, Python {v['python']}",
    ]
    if report.runs:
        lines += [
            "",
            f"{'run':<22}{'model':>12}{'tasks':>6}{'latency':>8}{'requests':>9}{'seconds':>9}"
            f"{'replies/s':>10}{'proc mean':>10}{'proc p95':>9}{'cpu ms/reply':>13}"
            f"{'replicas':>9}{'state':>10}{'db trips':>9}",
        ]
    for r in report.runs:
        lines.append(
            f"{r.name:<22}{r.model:>12}{r.concurrent_tasks:>6}{r.model_latency:>8}"
            f"{r.requests:>9}{r.seconds:>9.1f}{r.replies_per_second:>10.1f}"
            f"{r.processing_mean:>10.3f}{r.processing_p95:>9.3f}{r.service_cpu_ms_per_reply:>13.1f}"
            f"{r.replicas:>9}{'postgres' if r.postgres else 'embedded':>10}"
            f"{r.database_round_trips_per_reply:>9.1f}"
        )
    if report.overhead:
        first = report.overhead[0].engine
        lines += [
            "",
            f"plumbing overhead ({first.requests} requests, {first.concurrent_tasks} at once,"
            f" latency 0), {len(report.overhead)} pairs run back to back:",
        ]
        for n, pair in enumerate(report.overhead, 1):
            e, svc = pair.engine, pair.service
            lines += [
                f"  pair {n}: engine alone {e.requests_per_second:6.1f} requests/s"
                f" {e.cpu_ms_per_request:6.2f} ms CPU each; agent service"
                f" {svc.replies_per_second:6.1f} replies/s {svc.service_cpu_ms_per_reply:6.2f}"
                f" ms CPU each (through RabbitMQ); ratio {100 * pair.ratio:5.1f} %",
            ]
        ratio = median_pair(report.overhead).ratio
        lines.append(
            f"  median ratio    {100 * ratio:8.1f} % of the engine's rate"
            f" (the plumbing costs {100 * (1 - ratio):.1f} %)"
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
    if report.openloop:
        lines += render_openloop(report.openloop)
    if report.soak:
        lines += render_soak(report.soak)
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
