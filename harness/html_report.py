"""``harness simulate --html PATH``: one self-contained page a person looks at after a run.

A timeline (messages/s, latency p50/p95 per second, queue depths, outcomes per second, fault
spans shaded on every chart) and the summary table of the text report. Everything is inline:
no file, font or script is fetched, so the page opens from a CI artefact or a mail. The charts
are SVG drawn in Python; the small script only adds a cursor that reads the values off.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from harness.ledger import Entry
from harness.report import RunReport, render
from harness.report_charts import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    legend,
    line_chart,
    stacked_bars,
)
from harness.report_series import RunSeries, Series, build_series
from harness.timeline import Timeline

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 960px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 24px 0 4px; }
.verdict { font-weight: bold; padding: 6px 10px; display: inline-block; border-radius: 4px; }
.pass { background: #dff5e1; } .fail { background: #fbe0e0; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td:first-child, th:first-child, #summary td { text-align: left; }
svg.chart { width: 100%; height: auto; background: #fafafa; }
.axis { stroke: #888; } .tick, .unit { font-size: 11px; fill: #555; }
.fault { fill: #d62728; opacity: 0.15; } .cursor { stroke: #444; stroke-dasharray: 3 3; }
.legend { font-size: 12px; } .key { margin-right: 14px; }
.key i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.readout { font: 12px monospace; min-height: 1.4em; color: #444; }
"""

# Reads the values at the pointer's second out of the embedded data: no library, no fetch.
_SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById("timeline-data").textContent);
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    const name = svg.id.replace("chart-", "");
    const series = data.charts[name];
    const readout = document.getElementById("readout-" + name);
    const cursor = document.createElementNS("http://www.w3.org/2000/svg", "line");
    cursor.setAttribute("class", "cursor");
    cursor.setAttribute("y1", data.top); cursor.setAttribute("y2", data.bottom);
    cursor.style.display = "none";
    svg.appendChild(cursor);
    svg.addEventListener("mousemove", function (event) {
      const box = svg.getBoundingClientRect();
      const x = (event.clientX - box.left) * data.width / box.width;
      const t = (x - data.left) / (data.width - data.left - data.right) * data.seconds;
      if (t < 0 || t > data.seconds) { return; }
      cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
      cursor.style.display = "";
      const parts = series.map(function (s) {
        let best = null;
        s.points.forEach(function (p) {
          if (p[0] <= t && (best === null || p[0] > best[0])) { best = p; }
        });
        const value = best === null || best[1] === null ? "-" : best[1];
        return s.name + " " + value;
      });
      readout.textContent = Math.floor(t) + " s: " + parts.join(", ");
    });
  });
  document.documentElement.dataset.charts = String(Object.keys(data.charts).length);
})();
"""


def _table(rows: list[list[Any]], head: list[str]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def summary(report: RunReport) -> str:
    """The text report's numbers as tables."""
    r, lat = report, report.latency_seconds
    rows: list[tuple[str, object]] = [
        ("messages", r.messages),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in r.outcomes.items())),
        ("lost", r.lost),
        ("duplicated", r.duplicated),
        ("latency", f"p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}"),
        ("throughput", f"{r.throughput_per_second:.1f} messages/s over {r.duration_seconds} s"),
        ("tools used", ", ".join(f"{k} {int(v)}" for k, v in sorted(r.tools_used.items()))),
        ("queue depths at the end", ", ".join(f"{k} {v}" for k, v in r.queue_depths.items())),
    ]
    rows += [("note", n) for n in r.notes]
    per_task = [
        [
            task,
            d["messages"],
            *(d["outcomes"].get(o, 0) for o in ("reply", "fallback", "parked", "missing")),
            _ms(d["latency_seconds"]["p50"]),
            _ms(d["latency_seconds"]["p95"]),
        ]
        for task, d in r.per_task.items()
    ]
    head = ["task type", "messages", "reply", "fallback", "parked", "missing", "p50", "p95"]
    return (
        '<table id="summary"><tbody>'
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
        + "</tbody></table>"
        + _table(per_task, head).replace("<table>", '<table id="per-task">', 1)
    )


def _charts(s: RunSeries) -> list[tuple[str, str, str, list[Series]]]:
    """(id, title, unit, series) of each chart, in page order."""
    return [
        ("rate", "Messages per second", "messages/s", s.rate),
        ("latency", "Latency of the messages answered in each second", "ms", s.latency_ms),
        ("depths", "Queue depths (messages ready)", "messages", s.depths),
        ("outcomes", "Outcomes per second", "messages", s.outcomes),
    ]


def render_html(report: RunReport, entries: list[Entry], timeline: Timeline) -> str:
    series = build_series(entries, timeline)
    sections = []
    for chart_id, title, unit, lines in _charts(series):
        draw = stacked_bars if chart_id == "outcomes" else line_chart
        svg = draw(chart_id, title, unit, series.seconds, lines, series.faults)
        sections.append(
            f"<h2>{escape(title)}</h2>{legend(lines)}{svg}"
            f'<div class="readout" id="readout-{chart_id}"></div>'
        )
    spans = [[f.label, f"{f.start:.1f} s", f"{f.end:.1f} s"] for f in series.faults]
    faults = _table(spans, ["fault", "from", "to"]) if spans else "<p>No fault injected.</p>"
    data = {
        "seconds": series.seconds,
        "width": WIDTH, "left": LEFT, "right": RIGHT, "top": TOP, "bottom": HEIGHT - BOTTOM,
        "charts": {cid: [{"name": s.name, "points": s.points} for s in lines]
                   for cid, _, _, lines in _charts(series)},
    }  # fmt: skip
    # "</" inside a script element would end it: JSON allows "<\/" for "</".
    payload = json.dumps(data).replace("</", "<\\/")
    verdict = "pass" if report.ok else "fail"
    text = (
        "PASS: every message has exactly one outcome" if report.ok else "FAIL: lost or duplicated"
    )
    title = f"Simulation report: scenario '{report.scenario}'"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p>on {escape(report.broker)}; {series.missing} message(s) without an outcome</p>
<p class="verdict {verdict}">{text}</p>
<h2>Summary</h2>{summary(report)}
<h2>Faults</h2><div id="faults">{faults}</div>
{"".join(sections)}
<details><summary>Text report</summary><pre>{escape(render(report))}</pre></details>
<script type="application/json" id="timeline-data">{payload}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
