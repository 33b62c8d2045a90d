"""The sizing rule: replicas and CONCURRENT_TASKS for a target of messages per minute.

Pure arithmetic on three figures the capacity sweep measures (docs/capacity.md):

- ``calls``: model calls per message (the scripted policy's average over the demo texts; a
  tool turn is two calls), so a message holds a task for ``calls * latency + base`` seconds;
- ``base``: the seconds a message holds a task beside the model (engine, decoding, publishing
  with confirms), from the runs at one task at a time;
- ``cpu``: CPU seconds of the service per reply, which caps one replica (one process, one core
  at most) at ``1 / cpu`` replies per second.

Little's law gives the tasks: in flight = arrival rate * time held. A replica is planned at
``UTILISATION`` of its CPU cap, and the model quota caps what any number of replicas can do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UTILISATION = 0.7  # headroom: a replica planned at 70 % of its CPU cap
TASK_HEADROOM = 1.25  # bursts: a quarter more tasks than the mean in flight


@dataclass(frozen=True)
class Fit:
    calls: float  # model calls per message
    base: float  # seconds held per message beside the model
    cpu: float  # CPU seconds per reply

    def hold_seconds(self, latency: float) -> float:
        return self.calls * latency + self.base

    def replica_cap(self) -> float:
        """Replies per second one replica can do at most (CPU bound)."""
        return 1.0 / self.cpu

    def throughput(self, tasks: int, latency: float, replicas: int = 1) -> float:
        """Predicted replies per second: latency bound by the tasks, CPU bound per replica."""
        per_replica = min(tasks / self.hold_seconds(latency), self.replica_cap())
        return per_replica * replicas


@dataclass(frozen=True)
class Plan:
    target_per_minute: float
    latency: float
    quota_per_minute: float
    replicas: int
    concurrent_tasks: int  # per replica
    model_requests_per_minute: float
    feasible: bool  # within the model quota
    most_per_minute: float  # what the quota allows, in messages per minute


def plan(fit: Fit, target_per_minute: float, latency: float, quota_per_minute: float) -> Plan:
    """Replicas and CONCURRENT_TASKS (each) for ``target_per_minute`` messages at a model
    ``latency`` (seconds per call) under a model quota of ``quota_per_minute`` requests."""
    if target_per_minute <= 0 or latency < 0 or quota_per_minute <= 0:
        raise ValueError("target and quota must be above 0 and the latency not below 0")
    rate = target_per_minute / 60.0
    replicas = max(1, math.ceil(rate / (UTILISATION * fit.replica_cap())))
    in_flight = rate * fit.hold_seconds(latency) * TASK_HEADROOM
    tasks = max(1, math.ceil(in_flight / replicas))
    model_rpm = target_per_minute * fit.calls
    return Plan(
        target_per_minute,
        latency,
        quota_per_minute,
        replicas,
        tasks,
        model_rpm,
        feasible=model_rpm <= quota_per_minute,
        most_per_minute=quota_per_minute / fit.calls,
    )


def fit_runs(calls: float, serial: list[tuple[float, float]], cpu_ms: list[float]) -> Fit:
    """The fit from the sweep: ``serial`` holds (latency, replies/s) of runs at one task (each
    reply then takes 1 / rate seconds, of which calls * latency is the model's); ``cpu_ms``
    the CPU per reply of the runs at latency 0 (the CPU-bound ones)."""
    if not serial or not cpu_ms:
        raise ValueError("the fit needs runs at one task and runs at latency 0")
    bases = [1.0 / rate - calls * latency for latency, rate in serial if rate > 0]
    base = max(0.0, sum(bases) / len(bases))
    return Fit(calls, base, sum(cpu_ms) / len(cpu_ms) / 1000.0)
