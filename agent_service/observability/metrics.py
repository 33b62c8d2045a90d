"""Prometheus metrics of the agent service (the spec's "Python Service" list)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    """One registry per service instance, so several instances can live in one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "agent_messages_consumed", "Messages consumed from ag_queue", ["task_type"], registry=r
        )
        self.published = Counter(
            "agent_messages_published", "Replies published to wb_queue", ["status"], registry=r
        )
        self.failures = Counter(
            "agent_failures", "Processing failures by kind and code", ["kind", "code"], registry=r
        )
        self.retries = Counter(
            "agent_retries", "Requests sent to a retry wait queue", ["level"], registry=r
        )
        self.dead_lettered = Counter(
            "agent_dead_lettered",
            "Requests published to dlx_agent, by reason (an ErrorCode)",
            ["reason"],
            registry=r,
        )
        self.returned = Counter(
            "agent_publish_returned",
            "Publishes the broker returned because no queue takes them",
            ["destination"],
            registry=r,
        )
        self.handed_back = Counter(
            "agent_handed_back", "Deliveries handed back to the broker unanswered", registry=r
        )
        self.duplicates = Counter(
            "agent_duplicates", "Deliveries of an already answered request", registry=r
        )
        self.processing = Histogram(
            "agent_processing_seconds",
            "Agent processing time per request",
            ["task_type"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.order_wait = Histogram(
            "agent_order_wait_seconds",
            "How long a built reply waited for the contact's earlier requests to settle",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.order_timeouts = Counter(
            "agent_order_wait_timeouts",
            "Replies published out of order because an earlier request of the contact stayed"
            " unsettled for ORDER_WAIT",
            registry=r,
        )
        self.tools = Counter("agent_tools_used", "Tool calls by tool", ["tool"], registry=r)
        self.in_flight = Gauge("agent_in_flight", "Requests being processed", registry=r)
        self.connected = Gauge("agent_broker_connected", "1 while connected", registry=r)
