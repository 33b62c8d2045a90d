"""The sizing rule's arithmetic, the soak's slope and the capacity report's writer, on made-up
figures (the sweep itself is `harness bench --capacity`, run by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench.capacity import QUICK, CapacityReport
from harness.bench.capacity_report import write
from harness.bench.runs import BacklogRun
from harness.bench.sizing import Fit, fit_runs, plan
from harness.bench.soak import growth_per_10k

FIT = Fit(calls=2.0, base=0.01, cpu=0.005)  # 200 replies/s at most per replica


def test_throughput_is_bound_by_tasks_then_by_cpu() -> None:
    assert FIT.throughput(4, 0.5) == pytest.approx(4 / 1.01)
    assert FIT.throughput(1000, 0.0) == pytest.approx(200.0)
    assert FIT.throughput(4, 0.5, replicas=3) == pytest.approx(3 * 4 / 1.01)


def test_plan_by_littles_law_and_the_cpu_cap() -> None:
    # 12,000/min = 200/s: 200 / (0.7 * 200) -> 2 replicas; in flight 200 * 2.01 * 1.25 = 502.5
    p = plan(FIT, 12_000, 1.0, quota_per_minute=30_000)
    assert (p.replicas, p.concurrent_tasks) == (2, 252)
    assert p.model_requests_per_minute == 24_000 and p.feasible


def test_a_target_beyond_the_model_quota_is_called_infeasible() -> None:
    p = plan(FIT, 3_000, 1.0, quota_per_minute=4_000)
    assert not p.feasible
    assert p.most_per_minute == 2_000


def test_bad_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="above 0"):
        plan(FIT, 0, 1.0, 100)


def test_the_fit_takes_the_base_from_serial_runs_and_cpu_from_latency_zero() -> None:
    # One task at 0.1 s per call, 2 calls: 1 / 4.76 = 0.21 s per reply, 0.01 s of it not model.
    fit = fit_runs(2.0, [(0.1, 1 / 0.21), (0.0, 100.0)], [4.0, 6.0])
    assert fit.base == pytest.approx(0.01)
    assert fit.cpu == pytest.approx(0.005)


def test_soak_growth_is_the_slope_per_10k() -> None:
    assert growth_per_10k({0: 100.0, 10_000: 103.0, 20_000: 106.0}) == pytest.approx(3.0)
    assert growth_per_10k({0: 100.0}) == 0.0


def _run(tasks: int, latency: str, rate: float, name: str = "sweep") -> BacklogRun:
    run = BacklogRun(name, tasks, latency, 100, warm=True)
    run.replies_per_second, run.service_cpu_ms_per_reply = rate, 5.0
    run.processing_times = [0.01 * (i + 1) for i in range(20)]
    return run


def test_the_writer_makes_markdown_and_three_pngs(tmp_path: Path) -> None:
    report = CapacityReport(QUICK, calls=2.0, fit=FIT, check_predicted=7.5)
    report.runs = [_run(t, lat, 5.0 * t) for lat in ("0", "0.1") for t in (1, 4)]
    report.check_run = _run(8, "0.2", 7.0, name="check")
    report.plans = [plan(FIT, 600, 1.0, 2000)]  # 10/s x 2.01 s x 1.25 = 25.1: 26 tasks
    paths = write(report, "harness bench --capacity", tmp_path / "capacity.md")
    text = paths[0].read_text()
    assert "7.1 % off (within the 15 %" in text
    assert "| 600 | 1 | 2000 | 1 | 26 | 1200 | yes |" in text
    for png in paths[1:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(capacity/{png.name})" in text
