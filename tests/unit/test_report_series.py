"""The HTML report's timeline is the ledger's numbers per second, and faults where they were."""

from __future__ import annotations

import pytest

from harness.ledger import Entry, MessageOutcome
from harness.report_series import Span, build_series
from harness.timeline import DepthSample, FaultSpan, Timeline

pytestmark = pytest.mark.unit

T0 = 1000.0


def entry(sent: float, answered: float | None, outcome: MessageOutcome | None) -> Entry:
    at = None if answered is None else T0 + answered
    return Entry("id", "256700000001", "hi", "conversation", T0 + sent, outcome, at)


def test_rates_latencies_outcomes_and_faults_per_second() -> None:
    entries = [
        entry(0.1, 0.3, MessageOutcome.REPLY),  # 200 ms, answered in second 0
        entry(0.2, 1.2, MessageOutcome.REPLY),  # 1000 ms, second 1
        entry(0.5, 1.5, MessageOutcome.FALLBACK),  # 1000 ms, second 1
        entry(1.1, 2.5, MessageOutcome.PARKED),  # 1400 ms, second 2
        entry(2.0, None, None),  # missing
    ]
    timeline = Timeline(
        began=T0,
        faults=[FaultSpan("outage", T0 + 1.0, T0 + 2.0), FaultSpan("open", T0 + 2.2)],
        depths=[DepthSample(T0 + 0.5, {"ag_queue": 3}), DepthSample(T0 + 1.0, {"wb_queue": 1})],
    )
    s = build_series(entries, timeline)

    assert s.seconds == 3
    rate = {x.name: [v for _, v in x.points] for x in s.rate}
    assert rate == {"sent": [3, 1, 1], "answered": [1, 2, 1]}
    latency = {x.name: [v for _, v in x.points] for x in s.latency_ms}
    assert latency["p50"] == pytest.approx([200, 1000, 1400])
    outcomes = {x.name: [v for _, v in x.points] for x in s.outcomes}
    assert outcomes == {"reply": [1, 1, 0], "fallback": [0, 1, 0], "parked": [0, 0, 1]}
    assert s.missing == 1
    # A fault still open at the end lasts to the run's last event.
    assert s.faults == [Span("outage", 1.0, 2.0), Span("open", 2.2, 2.5)]
    depths = {x.name: x.points for x in s.depths}
    assert depths == {"ag_queue": [(0.5, 3.0), (1.0, None)], "wb_queue": [(0.5, None), (1.0, 1.0)]}


def test_a_second_without_answers_is_a_gap_in_the_latency_line() -> None:
    entries = [entry(0.0, 0.1, MessageOutcome.REPLY), entry(0.0, 2.1, MessageOutcome.REPLY)]
    s = build_series(entries, Timeline(began=T0))
    p95 = [v for _, v in s.latency_ms[1].points]
    assert p95[1] is None and p95[0] == pytest.approx(100) and p95[2] == pytest.approx(2100)
