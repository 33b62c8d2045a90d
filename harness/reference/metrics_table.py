"""The Prometheus metrics of the services as rows of the reference, read from their registries.

A registry is built as each service builds it (``ServiceMetrics``, the Node simulator's
``NodeMetrics``) and every metric on it becomes a row with the names it is exported under
(a counter ``x`` is scraped as ``x_total``, a histogram ``h`` as ``h_bucket``, ``h_sum``,
``h_count``), so the reference, the dashboard test and the scrape agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from agent_service.observability.metrics import ServiceMetrics
from fakes.node_simulator.metrics import NodeMetrics

_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
             "summary": ("_sum", "_count")}  # fmt: skip


@dataclass(frozen=True)
class MetricRow:
    name: str  # as registered
    type: str
    labels: tuple[str, ...]
    meaning: str

    @property
    def exported(self) -> tuple[str, ...]:
        """The sample names a scrape shows for this metric."""
        return tuple(self.name + suffix for suffix in _SUFFIXES.get(self.type, ("",)))


def _metrics_of(owner: object) -> Iterable[MetricWrapperBase]:
    return (v for v in vars(owner).values() if isinstance(v, MetricWrapperBase))


def _rows(owner: object) -> list[MetricRow]:
    rows = []
    for metric in _metrics_of(owner):
        (family,) = metric.describe()
        # prometheus_client has no public accessor for a metric's label names; they are read
        # here, where a wrong reading shows as a difference from a live scrape in the tests.
        labels = tuple(getattr(metric, "_labelnames", ()))
        rows.append(MetricRow(family.name, family.type, labels, family.documentation))
    return sorted(rows, key=lambda r: r.name)


def service_metric_rows() -> list[MetricRow]:
    """The agent service's metrics (``/metrics`` on HEALTH_PORT)."""
    return _rows(ServiceMetrics(CollectorRegistry()))


def node_metric_rows() -> list[MetricRow]:
    """The Node side's metrics, as the simulator (its reference behaviour) exports them."""
    return _rows(NodeMetrics())


def exported_names(rows: Iterable[MetricRow]) -> set[str]:
    return {name for row in rows for name in row.exported}
