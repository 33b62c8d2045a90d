"""The topology on a real broker: declared as the production table; drift is reported by name
and nothing on the broker is changed by verification."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import ChannelNotFoundEntity

from agent_service.contract.topology import Topology, declare, delete
from harness.broker import PrivateNode
from harness.pytest_plugin import TopologyFactory
from harness.topology_check import Drift, parse_precondition, verify

pytestmark = pytest.mark.contract

# DESIGN.md section 4, pinned here exactly: a change to the production values fails this test.
PRODUCTION_QUEUES = {
    "ag_queue": {"x-message-ttl": 300000, "x-dead-letter-exchange": "dlx_agent"},
    "wb_queue": {"x-message-ttl": 60000, "x-dead-letter-exchange": "dlx_webhook"},
    "dlx_agent": {},
    "dlx_webhook": {},
}


async def _list(node: PrivateNode, what: str, *columns: str) -> list[dict[str, Any]]:
    out = await node.rabbitmqctl(what, *columns, "--formatter", "json", "-q")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def _arguments(row: dict[str, Any]) -> dict[str, Any]:
    # rabbitmqctl's JSON lists each argument as [name, AMQP type, value].
    return {name: value for name, _type, value in row["arguments"]}


async def test_declared_topology_equals_the_production_table(
    private_node: PrivateNode,
) -> None:
    topology = Topology()
    assert (topology.agent_prefetch, topology.webhook_prefetch) == (1, 10)
    async with await aio_pika.connect(private_node.url) as connection:
        await declare(await connection.channel(), topology)
        try:
            queues = {
                q["name"]: q
                for q in await _list(
                    private_node, "list_queues", "name", "durable", "auto_delete", "arguments"
                )
            }
            exchanges = {
                e["name"]: e
                for e in await _list(private_node, "list_exchanges", "name", "type", "durable")
            }
            bindings = await _list(private_node, "list_bindings", "source_name", "destination_name")
        finally:
            await delete(await connection.channel(), topology)
    for name, arguments in PRODUCTION_QUEUES.items():
        assert queues[name]["durable"] is True and queues[name]["auto_delete"] is False
        assert _arguments(queues[name]) == arguments, name
    for name in ("dlx_agent", "dlx_webhook"):
        assert (exchanges[name]["type"], exchanges[name]["durable"]) == ("fanout", True)
        assert {"source_name": name, "destination_name": name} in bindings
    for level, delay in enumerate((30000, 60000, 120000), start=1):
        assert _arguments(queues[f"ag_queue.retry.{level}"]) == {
            "x-message-ttl": delay,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "ag_queue",
        }


async def test_verify_reports_nothing_when_the_broker_agrees(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    topology = await make_topology()
    assert await verify(amqp_connection, topology) == []


async def test_verify_names_a_drifted_ttl_and_a_missing_queue_without_changing_anything(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    expected = await make_topology(declared=False)
    drifted = replace(expected, agent_ttl_ms=1000)  # same names, another TTL
    await declare(await amqp_connection.channel(), drifted)
    channel = await amqp_connection.channel()
    await channel.queue_delete(expected.webhook_parking)

    drifts = await verify(amqp_connection, expected)

    assert Drift("queue", expected.agent_queue, "x-message-ttl", 300000, 1000) in drifts
    assert Drift("queue", expected.webhook_parking, "missing") in drifts
    assert len(drifts) == 2, drifts
    assert "x-message-ttl is 1000 on the broker, expected 300000" in str(drifts[0])
    # Nothing changed: the drift is still there and the missing queue is still missing.
    assert await verify(amqp_connection, expected) == drifts
    with pytest.raises(ChannelNotFoundEntity):
        probe = await amqp_connection.channel()
        await probe.declare_queue(expected.webhook_parking, passive=True)


async def test_verify_lists_every_difference_of_one_queue(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    expected = await make_topology(declared=False)
    channel = await amqp_connection.channel()
    await channel.declare_queue(
        expected.webhook_queue,
        durable=True,
        arguments={"x-message-ttl": 5, "x-max-length": 10},  # wrong TTL, extra, no DLX
    )
    drifts = [d for d in await verify(amqp_connection, expected) if d.setting != "missing"]
    assert {(d.setting, d.expected, d.actual) for d in drifts} == {
        ("x-message-ttl", 60000, 5),
        ("x-max-length", None, 10),
        ("x-dead-letter-exchange", expected.dlx_webhook, None),
    }


def test_parse_precondition_reads_rabbitmq_replies() -> None:
    base = "PRECONDITION_FAILED - inequivalent arg '{}' for queue 'q' in vhost '/': "
    assert parse_precondition(
        base.format("x-message-ttl") + "received '300000' but current is '1000'"
    ) == ("x-message-ttl", 1000)
    assert parse_precondition(
        base.format("x-max-length") + "received none but current is the value '5' of type 'byte'"
    ) == ("x-max-length", 5)
    assert parse_precondition(
        base.format("x-dead-letter-exchange")
        + "received the value 'a' of type 'longstr' but current is none"
    ) == ("x-dead-letter-exchange", None)
    assert parse_precondition(
        base.format("durable") + "received 'false' but current is 'true'"
    ) == ("durable", True)
    assert parse_precondition("NOT_FOUND - no queue") is None
