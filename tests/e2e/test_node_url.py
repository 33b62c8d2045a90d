"""`harness simulate --node-url`: the harness driving a Node service it did not start.

The Node service here is the Node simulator started as a party of its own (its broker, its
production queue names, its settings from what `simulate` printed), on a virtual host of a
private node that only this module uses."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aiohttp import web

from agent_service.contract.topology import Topology
from agent_service.http_server import HttpServer
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from harness import simulate
from harness.broker import PrivateNode
from harness.node_service import NodeServiceError
from harness.process_tools import free_port
from harness.topology_provision import with_vhost

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def vhost_url(private_node: PrivateNode) -> AsyncIterator[str]:
    vhost = f"node-url-{secrets.token_hex(3)}"
    await private_node.rabbitmqctl("add_vhost", vhost)
    try:
        await private_node.rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield with_vhost(private_node.url, vhost)
    finally:
        await private_node.rabbitmqctl("delete_vhost", vhost)


def simulate_args(node_url: str, broker_url: str, **overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(["--node-url", node_url, "--broker-url", broker_url])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


async def test_a_run_drives_a_node_service_on_its_own_queues(vhost_url: str) -> None:
    wasender_port, secret, key = free_port(), secrets.token_hex(8), secrets.token_hex(8)
    config = NodeSimulatorConfig(
        amqp_url=vhost_url,
        topology=Topology(),  # the production names and settings, as the Node service has
        wasender_url=f"http://127.0.0.1:{wasender_port}",
        wasender_api_key=key,
        webhook_secret=secret,
    )
    printed: list[str] = []
    async with NodeSimulator(config) as node:
        args = simulate_args(
            node.webhook_url,
            vhost_url,
            messages=12,
            contacts=3,
            model_latency="0",
            wasender_port=wasender_port,
            wasender_api_key=key,
            webhook_secret=secret,
            deadline=120,
        )
        result = await simulate.run(args, out=printed.append)
        sent = node.metrics.value("node_sends_total", kind="reply")
    report = result.report
    assert report.ok, printed
    assert report.outcomes["reply"] == 12 and sent == 12
    assert f"WASENDER_API_KEY={key}" in [line.strip() for line in printed]
    # The agent service consumed the production ag_queue; the run deleted nothing of theirs.
    async with await aio_pika.connect(vhost_url) as connection:
        channel = await connection.channel()
        for queue in Topology().queues():
            await channel.declare_queue(queue.name, passive=True)


async def test_a_drifted_queue_stops_the_run_before_it_starts(vhost_url: str) -> None:
    async with await aio_pika.connect(vhost_url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(
            "ag_queue", durable=True, arguments={"x-message-ttl": 1000, "x-max-priority": 10}
        )
    args = simulate_args(f"http://127.0.0.1:{free_port()}/webhook", vhost_url)
    with pytest.raises(NodeServiceError) as failed:
        await simulate.run(args, out=lambda _: None)
    text = str(failed.value)
    assert "queue 'ag_queue': x-message-ttl is 1000 on the broker, expected 300000" in text
    async with await aio_pika.connect(vhost_url) as connection:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await channel.declare_queue("wb_queue", passive=True)  # nothing was declared


async def test_a_node_service_that_does_not_answer_is_a_clear_error(vhost_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook"
    args = simulate_args(url, vhost_url, node_timeout=1.0)
    with pytest.raises(NodeServiceError, match=r"the Node service at .* did not answer within 1 s"):
        await simulate.run(args, out=lambda _: None)


def test_node_url_without_a_broker_url_is_refused() -> None:
    args = simulate_args("http://127.0.0.1:9/webhook", "")
    with pytest.raises(NodeServiceError, match="--node-url needs --broker-url"):
        asyncio.run(simulate.run(args, out=lambda _: None))


class SilentNode(HttpServer):
    """A Node service that takes every webhook and never publishes a request."""

    def _routes(self, app: web.Application) -> None:
        async def webhook(request: web.Request) -> web.Response:
            await request.read()
            return web.json_response({"received": True})

        app.router.add_route("*", "/webhook", webhook)


async def test_a_run_past_its_deadline_reports_the_missing_and_exits_1(vhost_url: str) -> None:
    async with SilentNode() as node:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("harness")),
            "simulate",
            "--node-url",
            node.url + "/webhook",
            "--broker-url",
            vhost_url,
            "--messages",
            "3",
            "--contacts",
            "3",
            "--deadline",
            "4",
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert "missing 3" in stdout and "FAIL" in stdout
