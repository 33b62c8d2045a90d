"""What the simulator reports: the spec's Node metrics, and admin alerts.

Each simulator has its own CollectorRegistry, so several can run in one process (tests, Locust)
without their counters mixing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from fakes.phones import mask

logger = logging.getLogger("fakes.node_simulator")

# Queue latency spans a fast path (milliseconds) and retries or a backlog (minutes).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class NodeMetrics:
    """The Node service's metrics (spec, "Monitoring": Node.js Service), on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.published = Counter(
            "node_published_ag_queue", "AI requests published to ag_queue (confirmed)", registry=r
        )
        self.publish_failures = Counter(
            "node_publish_failures", "Publishes the broker did not confirm", registry=r
        )
        self.consumed = Counter(
            "node_consumed_wb_queue", "Replies consumed from wb_queue", ["status"], registry=r
        )
        self.send_failures = Counter(
            "node_send_failures", "Failed Wasender send attempts", ["reason"], registry=r
        )
        self.sends = Counter("node_sends", "Messages Wasender accepted", ["kind"], registry=r)
        self.latency = Histogram(
            "node_queue_latency_seconds",
            "From the reply's timestamp to its consumption from wb_queue",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.parked = Counter(
            "node_parked", "Messages given up on and parked", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "node_duplicates", "Duplicates recognised and dropped", ["source"], registry=r
        )
        self.alerts = Counter("node_alerts", "Admin alerts raised", ["reason"], registry=r)

    def value(self, name: str, **labels: str) -> float:
        """A sample's value, 0 when never set: value("node_sends_total", kind="reply")."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True, slots=True)
class Alert:
    """An admin alert: something the system gave up on, which a person must look at."""

    reason: str
    original_message_id: str | None  # the ag_queue request's messageId
    whatsapp_message_id: str | None  # the user's WhatsApp message, from the store
    phone: str  # masked
    at: float = field(default_factory=time.time)  # epoch seconds
    detail: str = ""


class AlertSink:
    """Keeps every alert in memory and, when configured, POSTs it as JSON to `url`.

    Posting runs in the background so a slow alert receiver never holds a queue message; a
    failed post is logged and the alert stays in memory either way.
    """

    def __init__(self, metrics: NodeMetrics, url: str | None, timeout: float = 5.0) -> None:
        self.alerts: list[Alert] = []
        self._metrics = metrics
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._posting: set[asyncio.Task[None]] = set()

    def raise_alert(
        self,
        reason: str,
        *,
        original_message_id: str | None,
        whatsapp_message_id: str | None,
        phone: str | None,
        detail: str = "",
    ) -> Alert:
        alert = Alert(reason, original_message_id, whatsapp_message_id, mask(phone), detail=detail)
        self.alerts.append(alert)
        self._metrics.alerts.labels(reason=reason).inc()
        logger.error(
            "🚨 Admin alert: %s",
            reason,
            extra={"alert": asdict(alert)},
        )
        if self._url is not None:
            task = asyncio.create_task(self._post(alert))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)
        return alert

    async def _post(self, alert: Alert) -> None:
        assert self._url is not None
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, json=asdict(alert)) as response:
                if response.status >= 300:
                    logger.warning("alert receiver answered %s", response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("could not post alert %s: %r", alert.reason, exc)

    async def close(self, grace: float = 2.0) -> None:
        """Let pending posts finish (bounded by `grace` seconds), then close the session."""
        if self._posting:
            _, pending = await asyncio.wait(set(self._posting), timeout=grace)
            for task in pending:
                task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
