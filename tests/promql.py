"""What a PromQL expression reads: its metric names, the labels its selectors match on and the
labels it groups by; and what a Prometheus scrape offers. Enough of PromQL for checking the
dashboard and alert rules in deploy/, not a parser of the whole language."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SELECTOR = re.compile(rf"(?<![\w.$])({_IDENT})\s*\{{([^}}]*)\}}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(rf"(?<![\w.$:])({_IDENT})(?![\w:]|\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan", "Inf", "NaN"}  # fmt: skip
_HISTOGRAM = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Reads:
    metrics: set[str]
    matched: dict[str, set[str]]  # metric -> labels its selectors match on
    grouped: set[str]  # labels of by (...), on (...), ...


def reads(expr: str) -> Reads:
    matched: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(expr):
        matched.setdefault(name, set()).update(_MATCHER.findall(_STRING.sub('""', matchers)))
    grouped = {label.strip() for labels in _GROUPING.findall(expr) for label in labels.split(",")}
    rest = _STRING.sub(" ", expr)
    rest = re.sub(r"\{[^}]*\}", " ", rest)  # matchers
    rest = re.sub(r"\[[^\]]*\]", " ", rest)  # ranges: [5m], [$__rate_interval]
    rest = _GROUPING.sub(" ", rest)
    names = {n for n in _NAME.findall(rest) if n not in _KEYWORDS}
    return Reads(names | set(matched), matched, grouped - {""})


@dataclass
class Exported:
    """What scrapes offered: every sample name a query can select, and labels per name."""

    names: set[str] = field(default_factory=set)
    labels: dict[str, set[str]] = field(default_factory=dict)

    def add_scrape(self, text: str, known_labels: dict[str, set[str]] | None = None) -> None:
        """A scrape's families, including those without samples yet (a labelled counter no
        request has touched is announced by its TYPE line only)."""
        for family in text_string_to_metric_families(text):
            kind = family.type
            base = family.name
            if kind == "counter":
                names = {base + "_total"}
            elif kind == "histogram":
                names = {base + s for s in _HISTOGRAM}
            elif kind == "summary":
                names = {base + "_sum", base + "_count"}
            else:
                names = {base}
            for sample in family.samples:
                names.add(sample.name)
                self.labels.setdefault(sample.name, set()).update(sample.labels)
            self.names |= names
        for name, labels in (known_labels or {}).items():
            self.labels.setdefault(name, set()).update(labels)
