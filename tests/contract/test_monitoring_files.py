"""deploy/grafana-dashboard.json and deploy/prometheus-alerts.yml read only metrics that exist:
every name and label they use is checked against live scrapes of the agent service, the Node
simulator and a RabbitMQ node with the rabbitmq_prometheus plugin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
import yaml

from agent_service.contract.topology import Topology, declare
from harness.broker import PrivateNode
from harness.process_tools import node_port
from harness.pytest_plugin import NodeFactory, ServiceFactory, TopologyFactory
from harness.reference.metrics_table import MetricRow, node_metric_rows, service_metric_rows
from harness.waiting import wait_until
from tests.conftest import REPO
from tests.promql import Exported, reads

pytestmark = [pytest.mark.contract, pytest.mark.slow]

DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"
ALERTS = REPO / "deploy" / "prometheus-alerts.yml"
# Made by Prometheus itself, and the labels it adds to every series it scrapes.
PROMETHEUS_OWN = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}


def dashboard_exprs(path: Path = DASHBOARD) -> list[str]:
    panels = json.loads(path.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def problems(exprs: Iterable[str], exported: Exported) -> list[str]:
    """Each metric or label an expression uses that no scrape offers."""
    found = []
    for expr in exprs:
        read = reads(expr)
        for name in sorted(read.metrics - exported.names - set(PROMETHEUS_OWN)):
            found.append(f"{name}: no service exports it ({expr})")
        labels_of: Callable[[str], set[str]] = lambda n: (  # noqa: E731
            exported.labels.get(n, set()) | PROMETHEUS_OWN.get(n, set()) | TARGET_LABELS
        )
        for name, labels in read.matched.items():
            found += [f"{name}: no label {label!r} ({expr})" for label in labels - labels_of(name)]
        offered = set().union(*(labels_of(n) for n in read.metrics)) | {"le"}
        found += [f"grouped by {label!r}, which none of its metrics has ({expr})"
                  for label in sorted(read.grouped - offered)]  # fmt: skip
    return found


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, url
        return await response.text()


@pytest.fixture(scope="module")
async def rabbitmq_scrape() -> AsyncIterator[str]:
    """/metrics/per-object of a node with the production topology, a consumer on each work
    queue and a message through each, so the per-queue families have samples."""
    port = node_port()
    config = (
        f"prometheus.tcp.port = {port}\nprometheus.tcp.ip = 127.0.0.1\n"
        "collect_statistics_interval = 500\n"  # per-queue figures every 0.5 s, not 5 s
    )
    async with PrivateNode(plugins=("rabbitmq_prometheus",), extra_config=config) as node:
        topology = Topology()
        async with await aio_pika.connect(node.url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await declare(channel, topology)
            for name in (topology.agent_queue, topology.webhook_queue):
                await (await channel.get_queue(name)).consume(_ack)
                await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=name)
            url = f"http://127.0.0.1:{port}/metrics/per-object"
            text = ""

            async def consumers_seen() -> bool:
                nonlocal text
                text = await _get(url)
                return 'rabbitmq_queue_consumers{vhost="/",queue="wb_queue"} 1' in text

            await wait_until(consumers_seen, timeout=30, what="per-queue metrics", interval=0.3)
        # A throwaway node: killed rather than stopped, which waits 5 s for the plugin's listener.
        await node.kill()
        yield text


async def _ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    await message.ack()


def _labels(rows: list[MetricRow]) -> dict[str, set[str]]:
    return {name: set(row.labels) for row in rows for name in row.exported}


@pytest.fixture
async def exported(
    rabbitmq_scrape: str,
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    start_node_simulator: NodeFactory,
) -> Exported:
    topology = await make_topology()
    service = await start_agent_service(topology, health_port=0)
    node = await start_node_simulator(topology)
    found = Exported()
    found.add_scrape(rabbitmq_scrape)
    # A labelled metric that nothing has touched yet shows no labels in a scrape: its label
    # names come from the registry (tests/unit/test_reference.py ties the two together).
    agent = await _get(f"http://127.0.0.1:{service.health_port}/metrics")
    found.add_scrape(agent, _labels(service_metric_rows()))
    found.add_scrape(await _get(f"{node.base_url}/metrics"), _labels(node_metric_rows()))
    return found


async def test_every_metric_and_label_the_dashboard_and_alerts_use_is_exported(
    exported: Exported,
) -> None:
    exprs = dashboard_exprs() + [rule["expr"] for rule in alert_rules()]
    assert problems(exprs, exported) == []
    # The check itself finds a misspelt metric, a label the metric lacks and a bad grouping.
    broken = [
        'rabbitmq_queue_messages_redy{queue="ag_queue"}',
        'rabbitmq_queue_consumers{queue_name="ag_queue"}',
        "sum by (task) (rate(agent_messages_consumed_total[5m]))",
    ]
    assert all(problems([expr], exported) for expr in broken)


def test_the_dashboard_and_the_rules_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["refId"] and t["expr"] for t in panel["targets"])
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_they_cover_the_specs_monitoring_list() -> None:
    shown = set().union(*(reads(e).metrics for e in dashboard_exprs()))
    spec = {
        "rabbitmq_queue_messages_ready",  # queue depth
        "rabbitmq_queue_messages_published_total",  # message rate in
        "rabbitmq_global_messages_delivered_total",  # message rate out
        "rabbitmq_queue_consumers",  # consumer count
        "rabbitmq_queue_messages_unacked",  # unacknowledged messages
        "rabbitmq_queue_messages",  # dead-letter and parking depth
        "agent_messages_consumed_total",
        "agent_messages_published_total",
        "agent_processing_seconds_bucket",  # p95, p99
        "agent_failures_total",
        "agent_tools_used_total",
        "node_published_ag_queue_total",
        "node_consumed_wb_queue_total",
        "node_publish_failures_total",
        "node_send_failures_total",
        "node_queue_latency_seconds_sum",
    }
    assert spec - shown == set()
    alerted = " ".join(rule["expr"] for rule in alert_rules())
    for needle in ('consumers{queue="ag_queue"}) == 0', 'queue="dlx_agent"} > 0',
                   'queue="dlx_webhook"} > 0', 'queue="wb_queue.parking"} > 0',
                   "histogram_quantile(0.95"):  # fmt: skip
        assert needle in alerted, needle
