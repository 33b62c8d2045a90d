"""``harness simulate --html``: the page renders in headless Chromium, with its charts, its fault
marks and its summary, no script error and nothing fetched."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pytest

from harness import simulate
from harness.broker import Broker
from harness.html_report import render_html
from harness.ledger import Entry, Ledger, MessageOutcome
from harness.report import build_report
from harness.timeline import DepthSample, FaultSpan, Timeline
from tests.browser import HeadlessChromium

pytestmark = pytest.mark.e2e

CHARTS = ("rate", "latency", "depths", "outcomes")

# What the page shows, read in the browser after its script ran.
_INSPECT = """
const charts = {};
for (const svg of document.querySelectorAll("svg.chart")) {
  const box = svg.getBoundingClientRect();
  charts[svg.id] = {width: box.width, height: box.height,
    lines: svg.querySelectorAll("polyline.series").length,
    bars: svg.querySelectorAll("rect.bar").length,
    faults: svg.querySelectorAll("rect.fault").length};
}
const summary = {};
for (const row of document.querySelectorAll("#summary tr")) {
  summary[row.cells[0].textContent] = row.cells[1].textContent;
}
return {charts: charts, summary: summary, scripted: document.documentElement.dataset.charts,
        fetched: performance.getEntriesByType("resource").length,
        faults: document.querySelectorAll("#faults tr").length,
        perTask: document.querySelectorAll("#per-task tbody tr").length};
"""

# A pointer moved over the middle of a chart: the readout must name the series' values.
_HOVER = """
const svg = document.getElementById(arguments[0]);
const box = svg.getBoundingClientRect();
svg.dispatchEvent(new MouseEvent("mousemove", {clientX: box.left + box.width / 2,
                                               clientY: box.top + box.height / 2}));
return document.getElementById(arguments[1]).textContent;
"""


async def _look(uri: str) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    async with HeadlessChromium() as browser:
        await browser.open(uri)
        page = await browser.run(_INSPECT)
        readout = await browser.run(_HOVER, "chart-rate", "readout-rate")
        return page, str(readout), await browser.console()


def _run_data() -> tuple[Ledger, Timeline]:
    t0 = time.monotonic()
    ledger = Ledger("fallback")
    for n in range(30):
        outcome = MessageOutcome.FALLBACK if n % 10 == 9 else MessageOutcome.REPLY
        answered = None if n == 29 else t0 + n * 0.2 + 0.05 + 0.01 * n
        ledger.entries.append(
            Entry(f"w{n}", "256700000001", "hi", "search", t0 + n * 0.2, outcome, answered)
        )
    ledger.entries[-1].outcome = None
    timeline = Timeline(
        began=t0,
        faults=[FaultSpan("Wasender answers 503", t0 + 1.0, t0 + 2.5), FaultSpan("kill", t0 + 4)],
        depths=[DepthSample(t0 + i * 0.5, {"ag_queue": i % 3, "wb_queue": 1}) for i in range(12)],
    )
    return ledger, timeline


async def test_the_page_renders_its_charts_and_summary_in_chromium(tmp_path: Path) -> None:
    ledger, timeline = _run_data()
    report = build_report("wasender-outage", ledger, duration=6.0, depths={"ag_queue": 0},
                          tools={"search_products": 3.0}, broker="test broker")  # fmt: skip
    path = tmp_path / "report.html"
    path.write_text(render_html(report, ledger.entries, timeline))

    page, readout, console = await _look(path.resolve().as_uri())

    assert [e for e in console if e.get("level") == "SEVERE"] == []
    assert page["scripted"] == "4"  # the script ran to its end
    assert page["fetched"] == 0  # self-contained: nothing loaded from anywhere
    assert set(page["charts"]) == {f"chart-{c}" for c in CHARTS}
    for name, chart in page["charts"].items():
        assert chart["width"] > 300 and chart["height"] > 50, name
        assert chart["faults"] == 2, name  # both faults shaded on every chart
    assert page["charts"]["chart-rate"]["lines"] >= 2
    assert page["charts"]["chart-depths"]["lines"] >= 2
    assert page["charts"]["chart-outcomes"]["bars"] > 0
    assert page["summary"]["messages"] == "30" and page["summary"]["lost"] == "1"
    assert page["faults"] == 3 and page["perTask"] == 1  # a header row and two faults
    assert readout.startswith(("2 s:", "3 s:")) and "sent" in readout and "answered" in readout


@pytest.mark.slow
async def test_simulate_writes_the_page_of_a_real_run(broker: Broker, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    path = tmp_path / "run.html"
    args = parser.parse_args(
        ["--scenario", "rate-limit", "--messages", "8", "--contacts", "4",
         "--model-latency", "0.01", "--html", str(path)]
    )  # fmt: skip

    result = await simulate.run(args, out=lambda _: None, broker=broker)
    path.write_text(render_html(result.report, result.entries, result.timeline))

    assert result.report.ok and result.report.messages == 8
    assert result.timeline.depths, "queue depths were sampled during the run"
    page, _, console = await _look(path.resolve().as_uri())
    assert [e for e in console if e.get("level") == "SEVERE"] == []
    assert page["summary"]["messages"] == "8"
    assert page["charts"]["chart-rate"]["faults"] == 1  # the 429s, marked where they began
