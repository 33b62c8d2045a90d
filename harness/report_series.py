"""A run's timeline as per-second series: messages/s, latency p50/p95, outcomes, queue depths.

Pure functions of the ledger's entries and the run's timeline (one clock, ``time.monotonic``),
so the HTML report draws exactly what the ledger counted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from harness.ledger import Entry, MessageOutcome
from harness.report import percentile
from harness.timeline import Timeline

Point = tuple[float, float | None]  # (seconds since the run began, value or a gap)


@dataclass(frozen=True)
class Series:
    name: str
    points: list[Point]


@dataclass(frozen=True)
class Span:
    label: str
    start: float
    end: float


@dataclass(frozen=True)
class RunSeries:
    """Everything the timeline charts draw, in seconds since the run began."""

    seconds: int
    rate: list[Series]  # sent and answered per second
    latency_ms: list[Series]  # p50 and p95 of the messages answered in that second
    outcomes: list[Series]  # reply, fallback, parked per second (stacked)
    depths: list[Series]  # one per queue, as sampled
    faults: list[Span]
    missing: int


def _second(at: float, began: float) -> int:
    return max(0, int(at - began))


def build_series(entries: list[Entry], timeline: Timeline, end: float | None = None) -> RunSeries:
    """The per-second series of a run; ``end`` (monotonic) defaults to its last event."""
    began = timeline.began
    times = [e.sent_at for e in entries] + [e.outcome_at for e in entries if e.outcome_at]
    times += [s.at for s in timeline.depths]
    last = end if end is not None else max(times, default=began)
    seconds = max(1, math.ceil(last - began))
    sent = [0.0] * seconds
    answered = [0.0] * seconds
    by_outcome: dict[MessageOutcome, list[float]] = defaultdict(lambda: [0.0] * seconds)
    latencies: list[list[float]] = [[] for _ in range(seconds)]
    for entry in entries:
        sent[min(seconds - 1, _second(entry.sent_at, began))] += 1
        if entry.outcome is None or entry.outcome_at is None:
            continue
        s = min(seconds - 1, _second(entry.outcome_at, began))
        answered[s] += 1
        by_outcome[entry.outcome][s] += 1
        if entry.latency is not None:
            latencies[s].append(entry.latency * 1000)
    axis = [float(s) for s in range(seconds)]

    def per_second(name: str, values: list[float | None]) -> Series:
        return Series(name, list(zip(axis, values, strict=True)))

    return RunSeries(
        seconds=seconds,
        rate=[per_second("sent", list(sent)), per_second("answered", list(answered))],
        latency_ms=[
            per_second(name, [percentile(values, q) for values in latencies])
            for name, q in (("p50", 50), ("p95", 95))
        ],
        outcomes=[
            per_second(o.value, list(by_outcome[o]))
            for o in (MessageOutcome.REPLY, MessageOutcome.FALLBACK, MessageOutcome.PARKED)
        ],
        depths=_depth_series(timeline),
        faults=[
            Span(
                f.label,
                round(f.began - began, 2),
                round((f.ended if f.ended is not None else last) - began, 2),
            )
            for f in timeline.faults
        ],
        missing=sum(1 for e in entries if e.outcome is None),
    )


def _depth_series(timeline: Timeline) -> list[Series]:
    names: list[str] = []
    for sample in timeline.depths:
        names += [n for n in sample.depths if n not in names]
    return [
        Series(
            name,
            [
                (
                    round(s.at - timeline.began, 2),
                    float(v) if (v := s.depths.get(name)) is not None else None,
                )
                for s in timeline.depths
            ],
        )
        for name in names
    ]
