"""The run report: what happened to every message, in numbers a person reads at a glance."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.ledger import Entry, Ledger, MessageOutcome


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _latencies(entries: list[Entry]) -> dict[str, float | None]:
    values = [e.latency for e in entries if e.latency is not None]
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else None,
    }


@dataclass
class RunReport:
    scenario: str
    messages: int
    outcomes: dict[str, int]
    lost: int
    duplicated: int
    latency_seconds: dict[str, float | None]
    per_task: dict[str, dict[str, Any]]
    tools_used: dict[str, float]
    queue_depths: dict[str, int]
    duration_seconds: float
    throughput_per_second: float
    broker: str
    unmatched_alerts: int = 0
    # Outcomes tied to their message by id (a send the Node side recorded, an alert), and by
    # the contact's phone number alone (exact only if each contact waited for its answers).
    attributed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Per broker node lost (node-loss, rolling-restart): seconds from the last reply before it
    # to the first reply after it.
    failover_seconds: list[float] = field(default_factory=list)
    # Per fault that measures it: seconds from its end (a heal) to the next reply, None when
    # no reply came after it.
    recovery_seconds: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def build_report(
    scenario: str,
    ledger: Ledger,
    *,
    duration: float,
    depths: dict[str, int],
    tools: dict[str, float],
    broker: str,
) -> RunReport:
    outcomes = Counter(ledger.outcome_of(e).value for e in ledger.entries)
    by_task: dict[str, list[Entry]] = defaultdict(list)
    for entry in ledger.entries:
        by_task[entry.task].append(entry)
    per_task = {
        task: {
            "messages": len(entries),
            "outcomes": dict(Counter(ledger.outcome_of(e).value for e in entries)),
            "latency_seconds": _latencies(entries),
        }
        for task, entries in sorted(by_task.items())
    }
    settled = len(ledger.entries) - outcomes.get(MessageOutcome.MISSING.value, 0)
    return RunReport(
        scenario=scenario,
        messages=len(ledger.entries),
        outcomes={o.value: outcomes.get(o.value, 0) for o in MessageOutcome},
        lost=outcomes.get(MessageOutcome.MISSING.value, 0),
        duplicated=len(ledger.duplicates),
        latency_seconds=_latencies(ledger.entries),
        per_task=per_task,
        tools_used=tools,
        queue_depths=depths,
        duration_seconds=round(duration, 2),
        throughput_per_second=round(settled / duration, 2) if duration > 0 else 0.0,
        broker=broker,
        unmatched_alerts=len(ledger.unmatched_alerts),
        attributed=_attribution(ledger.entries),
    )


def _attribution(entries: list[Entry]) -> dict[str, int]:
    by_id = sum(1 for e in entries if e.exact or e.outcome is MessageOutcome.PARKED)
    settled = sum(1 for e in entries if e.outcome is not None)
    return {"by_id": by_id, "by_phone": settled - by_id}


def recovery_after(entries: list[Entry], at: float) -> float | None:
    """Seconds from ``at`` to the first reply the user got after it (None: none came)."""
    after = [
        e.outcome_at
        for e in entries
        if e.outcome is MessageOutcome.REPLY and e.outcome_at is not None and e.outcome_at >= at
    ]
    return round(min(after) - at, 3) if after else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def render(report: RunReport) -> str:
    r = report
    lat = r.latency_seconds
    lines = [
        f"Simulation report: scenario '{r.scenario}' on {r.broker}",
        "",
        f"  messages        {r.messages}",
        "  outcomes        " + ", ".join(f"{k} {v}" for k, v in r.outcomes.items()),
        f"  lost            {r.lost}",
        f"  duplicated      {r.duplicated}",
        f"  latency         p50 {_ms(lat['p50'])}   p95 {_ms(lat['p95'])}   p99 {_ms(lat['p99'])}",
        f"  throughput      {r.throughput_per_second:.1f} messages/s"
        f" over {r.duration_seconds:.1f} s",
        "",
        "  per task type   messages  reply  fallback  parked  missing    p50      p95",
    ]
    for task, data in r.per_task.items():
        o = data["outcomes"]
        lt = data["latency_seconds"]
        lines.append(
            f"  {task:<15} {data['messages']:>8} {o.get('reply', 0):>6} {o.get('fallback', 0):>9}"
            f" {o.get('parked', 0):>7} {o.get('missing', 0):>8} {_ms(lt['p50']):>8} "
            f"{_ms(lt['p95']):>8}"
        )
    tools = ", ".join(f"{name} {int(n)}" for name, n in sorted(r.tools_used.items())) or "-"
    depths = ", ".join(f"{name} {n}" for name, n in r.queue_depths.items()) or "-"
    if r.attributed.get("by_phone"):
        lines.append(
            f"  attribution     {r.attributed['by_phone']} outcomes tied to their message by the"
            " contact's phone only (exact only if each contact waited for its answers)"
        )
    lines += ["", f"  tools used      {tools}", f"  queue depths    {depths}"]
    if r.failover_seconds:
        gaps = ", ".join(f"{g:.2f} s" for g in r.failover_seconds)
        lines.append(f"  failover        {gaps} (last reply before a node loss to first after)")
    lines += [
        f"  recovery        {label}: {_ms(seconds)} from its end to the next reply"
        for label, seconds in r.recovery_seconds.items()
    ]
    lines += [f"  note            {n}" for n in r.notes]
    verdict = "PASS: every message has exactly one outcome" if r.ok else "FAIL: lost or duplicated"
    lines += ["", verdict]
    return "\n".join(lines)


_SAMPLE = re.compile(r'^agent_tools_used_total\{tool="([^"]+)"\} ([0-9.e+]+)$', re.M)


def tools_from_metrics(text: str) -> dict[str, float]:
    """Tool call counts from the agent service's Prometheus exposition."""
    return {name: float(value) for name, value in _SAMPLE.findall(text)}
