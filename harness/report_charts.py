"""Inline SVG charts for the HTML report: drawn here, so the page needs no script to render.

Each chart is one ``<svg class="chart" id="chart-NAME">`` with a time axis in seconds, one
``<polyline class="series">`` (line charts) or ``<rect class="bar">`` group (stacked bars) per
series, and a shaded ``<rect class="fault">`` per fault span.
"""

from __future__ import annotations

import math
from html import escape

from harness.report_series import Series, Span

WIDTH, HEIGHT = 900, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 28
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _nice_max(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten, at least the largest value."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= value)


class _Frame:
    """Scales from (seconds, value) to pixels."""

    def __init__(self, seconds: float, top: float) -> None:
        self.seconds = max(seconds, 1.0)
        self.top = top

    def x(self, t: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * t / self.seconds, 1)

    def y(self, v: float) -> float:
        return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * v / self.top, 1)


def _axes(frame: _Frame, unit: str) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}"'
        f' y2="{HEIGHT - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>',
    ]
    for i in range(5):
        v = frame.top * i / 4
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{frame.y(v) + 4}" text-anchor="end">{v:g}</text>'
        )
    step = max(1, math.ceil(frame.seconds / 10))
    for t in range(0, int(frame.seconds) + 1, step):
        parts.append(
            f'<text class="tick" x="{frame.x(t)}" y="{HEIGHT - 8}" text-anchor="middle">{t}s</text>'
        )
    parts.append(f'<text class="unit" x="{LEFT + 4}" y="{TOP + 10}">{escape(unit)}</text>')
    return parts


def _faults(frame: _Frame, faults: list[Span]) -> list[str]:
    parts = []
    for span in faults:
        x0, x1 = frame.x(span.start), frame.x(span.end)
        parts.append(
            f'<rect class="fault" x="{x0}" y="{TOP}" width="{max(2.0, x1 - x0)}"'
            f' height="{HEIGHT - TOP - BOTTOM}"><title>{escape(span.label)}</title></rect>'
        )
    return parts


def _polylines(frame: _Frame, series: Series, colour: str) -> list[str]:
    """One polyline per run of values without a gap."""
    runs: list[list[str]] = [[]]
    for t, v in series.points:
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{frame.x(t)},{frame.y(v)}")
    name = escape(series.name)
    return [
        f'<polyline class="series" data-series="{name}" fill="none" stroke="{colour}"'
        f' stroke-width="2" points="{" ".join(run)}"/>'
        for run in runs
        if run
    ]


def _svg(chart_id: str, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" id="chart-{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-label="{escape(title)}">' + "".join(body) + "</svg>"
    )


def line_chart(
    chart_id: str, title: str, unit: str, seconds: float, series: list[Series], faults: list[Span]
) -> str:
    values = [v for s in series for _, v in s.points if v is not None]
    frame = _Frame(seconds, _nice_max(max(values, default=0.0)))
    body = _faults(frame, faults) + _axes(frame, unit)
    for i, s in enumerate(series):
        body += _polylines(frame, s, COLOURS[i % len(COLOURS)])
    return _svg(chart_id, title, body)


def stacked_bars(
    chart_id: str, title: str, unit: str, seconds: int, series: list[Series], faults: list[Span]
) -> str:
    totals = [sum(s.points[i][1] or 0.0 for s in series) for i in range(seconds)]
    frame = _Frame(seconds, _nice_max(max(totals, default=0.0)))
    body = _faults(frame, faults) + _axes(frame, unit)
    width = max(1.0, frame.x(1) - frame.x(0) - 2)
    base = [0.0] * seconds
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        for second, (t, v) in enumerate(s.points):
            if not v:
                continue
            y0, y1 = frame.y(base[second]), frame.y(base[second] + v)
            body.append(
                f'<rect class="bar" data-series="{escape(s.name)}" x="{frame.x(t) + 1}"'
                f' y="{y1}" width="{width}" height="{round(y0 - y1, 1)}" fill="{colour}"/>'
            )
            base[second] += v
    return _svg(chart_id, title, body)


def legend(series: list[Series]) -> str:
    items = [
        f'<span class="key"><i style="background:{COLOURS[i % len(COLOURS)]}"></i>'
        f"{escape(s.name)}</span>"
        for i, s in enumerate(series)
    ]
    return f'<div class="legend">{"".join(items)}</div>'
