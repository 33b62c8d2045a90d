"""``harness bench --capacity``: a sweep of CONCURRENT_TASKS, model latency and replicas, the
sizing rule fitted to it (harness/bench/sizing.py), its check on a run it did not use, and the
report: Markdown with PNG plots (docs/capacity.md, docs/capacity/*.png).

Each point is a backlog drained by warm services (runs.backlog_run): replies/s, CPU per reply
and every reply's processing time. Requests per point are sized to take a few seconds.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractConnection

from agent_service.agent import AgentEngine, ScriptedModel, open_demo_database
from agent_service.contract.messages import AgentRequest
from harness.bench.runs import BacklogRun, backlog_run, make_requests
from harness.bench.sizing import Fit, Plan, fit_runs, plan
from harness.broker.private_node import PrivateNode
from harness.postgres import server_url


@dataclass(frozen=True)
class Grid:
    latencies: tuple[float, ...]
    tasks: tuple[int, ...]
    replicas: tuple[int, ...]  # at replica_point, sharing PostgreSQL
    replica_point: tuple[int, float]  # (tasks, latency)
    check: tuple[int, float]  # (tasks, latency): not in the sweep, predicted then measured
    seconds: float  # about how long a point runs


QUICK = Grid((0.0, 0.1, 0.3), (1, 4, 16), (1, 2), (4, 0.1), (8, 0.2), 5.0)
FULL = Grid((0.0, 0.1, 0.3, 1.0), (1, 2, 5, 10, 20, 50), (1, 2, 3), (10, 0.3), (8, 0.5), 12.0)


@dataclass
class CapacityReport:
    grid: Grid
    calls: float = 0.0
    runs: list[BacklogRun] = field(default_factory=list)
    fit: Fit | None = None
    check_predicted: float = 0.0
    check_run: BacklogRun | None = None
    plans: list[Plan] = field(default_factory=list)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def check_error(self) -> float:
        measured = self.check_run.replies_per_second if self.check_run else 0.0
        return abs(self.check_predicted - measured) / measured if measured else math.inf


async def model_calls(requests: list[AgentRequest]) -> list[int]:
    """How many model calls each request takes (scripted model, in this process)."""
    calls = 0

    def count(_: object) -> None:
        nonlocal calls
        calls += 1

    result = []
    with open_demo_database(None) as store:
        async with AgentEngine(ScriptedModel(on_request=count), store) as engine:
            for request in requests:
                before = calls
                await engine.run(request)
                result.append(calls - before)
    return result


def _requests_for(tasks: int, latency: float, calls: float, seconds: float, replicas: int) -> int:
    rate = min(replicas * tasks / (calls * latency + 0.01), 150.0)
    return max(20, min(1500, round(rate * seconds)))


async def sweep(
    node: PrivateNode, connection: AbstractConnection, grid: Grid, log_dir: Path, **env: Any
) -> CapacityReport:
    report = CapacityReport(grid)
    report.calls = statistics.fmean(await model_calls(make_requests(40)))

    async def point(name: str, tasks: int, latency: float, replicas: int = 1) -> BacklogRun:
        count = _requests_for(tasks, latency, report.calls, grid.seconds, replicas)
        _progress(f"capacity: {tasks} tasks, latency {latency:g}, {replicas} replica(s), {count}")
        postgres = server_url() if replicas > 1 else None
        run = BacklogRun(
            name, tasks, f"{latency:g}", count, replicas=replicas, postgres=postgres, warm=True
        )
        return await backlog_run(node, connection, run, log_dir, **env)

    for latency in grid.latencies:
        for tasks in grid.tasks:
            report.runs.append(await point("sweep", tasks, latency))
    tasks, latency = grid.replica_point
    for replicas in grid.replicas:
        if replicas > 1:
            report.runs.append(await point("replicas", tasks, latency, replicas))
    serial = [(float(r.model_latency), r.replies_per_second) for r in _sweep(report, tasks=1)]
    cpu = [r.service_cpu_ms_per_reply for r in _sweep(report) if float(r.model_latency) == 0]
    report.fit = fit_runs(report.calls, serial, cpu)
    tasks, latency = grid.check
    report.check_predicted = report.fit.throughput(tasks, latency)
    report.check_run = await point("check", tasks, latency)
    report.plans = [
        plan(report.fit, target, model_latency, quota)
        for target, model_latency, quota in (
            (600, 1.0, 2000),
            (3000, 1.0, 10000),
            (6000, 2.0, 20000),
            (3000, 1.0, 4000),
        )
    ]
    return report


def _sweep(report: CapacityReport, tasks: int | None = None) -> list[BacklogRun]:
    return [
        r
        for r in report.runs
        if r.name == "sweep" and (tasks is None or r.concurrent_tasks == tasks)
    ]


def _progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)
