"""The bench's overhead figure: the median of alternating engine/service pairs, as printed."""

from __future__ import annotations

import pytest

from harness.bench.overhead import EngineRun
from harness.bench.report import BenchReport, OverheadPair, median_pair, render
from harness.bench.runs import BacklogRun

pytestmark = pytest.mark.unit


def pair(engine_rate: float, service_rate: float) -> OverheadPair:
    engine = EngineRun(5, 100, requests_per_second=engine_rate, cpu_ms_per_request=8.0)
    service = BacklogRun("overhead", 5, "0", 100, replies_per_second=service_rate)
    return OverheadPair(engine, service)


def test_the_ratio_is_the_services_rate_over_the_engines() -> None:
    assert pair(80.0, 72.0).ratio == pytest.approx(0.9)
    assert pair(0.0, 72.0).ratio == 0.0


def test_the_median_pair_is_the_middle_ratio_not_the_middle_run() -> None:
    low, middle, high = pair(100, 80), pair(100, 90), pair(100, 120)
    assert median_pair([high, low, middle]) is middle
    assert median_pair([high, low]) is low  # even count: the lower middle one


def test_the_report_prints_every_pair_and_the_median() -> None:
    machine = {"cpus": 2, "processor": "test"}
    report = BenchReport("2026-12-01", "harness bench", machine, {"rabbitmq": "3", "python": "3"})
    report.overhead = [pair(100, 80), pair(100, 95), pair(100, 91)]
    text = render(report)
    assert text.count("  pair ") == 3
    assert "ratio  80.0 %" in text and "ratio  95.0 %" in text
    assert "median ratio        91.0 % of the engine's rate (the plumbing costs 9.0 %)" in text
