"""The parties around the Node service under test, set up and torn down as one.

``parties``: the fake Wasender and the alert receiver (fixed ports and key for a real service,
any for ours), the AMQP connection and the agent double on the given queues.
``simulator``: our Node simulator wired to them, as it is or as a broken ``Variant``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aio_pika

from agent_service.contract.topology import Topology
from fakes.alert_receiver import AlertReceiver
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp
from harness.conformance.agent_double import AgentDouble
from harness.conformance.target import Target
from harness.conformance.variants import QueueRelay, Variant, WebhookProxy, variants
from harness.namespaces import declared


@dataclass(frozen=True)
class PartyOptions:
    broker_url: str
    topology: Topology
    secret: str | None
    wasender_port: int = 0
    wasender_api_key: str = ""
    alerts_port: int = 0
    patience: float = 15.0


@contextlib.asynccontextmanager
async def parties(options: PartyOptions, webhook_url: str = "") -> AsyncIterator[Target]:
    """Everything but the Node service. ``webhook_url`` may be set on the target later."""
    async with contextlib.AsyncExitStack() as stack:
        connection = await aio_pika.connect_robust(options.broker_url, timeout=10)
        stack.push_async_callback(connection.close)
        wasender = await stack.enter_async_context(
            FakeWasender(
                api_key=options.wasender_api_key or secrets.token_hex(16),
                port=options.wasender_port,
            )
        )
        alerts = await stack.enter_async_context(AlertReceiver(port=options.alerts_port))
        agent = AgentDouble(connection, options.topology)
        await agent.start()
        stack.push_async_callback(agent.stop)
        yield Target(
            webhook_url=webhook_url,
            secret=options.secret,
            connection=connection,
            topology=options.topology,
            wasender=wasender,
            alerts=alerts,
            agent=agent,
            whatsapp=FakeWhatsApp(options.secret or ""),
            patience=options.patience,
        )


@contextlib.asynccontextmanager
async def simulator(
    broker_url: str, topology: Topology, broken: str | None = None, patience: float = 15.0
) -> AsyncIterator[Target]:
    """Our Node simulator (broken as the variant named ``broken`` says) on ``topology``, with
    the parties.

    A variant with a relay gets queues of its own between the simulator and the agent side:
    the simulator publishes to ``<ag_queue>.node`` and consumes ``<wb_queue>.node``."""
    secret = secrets.token_hex(16)
    variant = next((v for v in variants(secret) if v.name == broken), None) if broken else None
    if broken and variant is None:
        raise ValueError(f"no broken variant {broken!r}")
    sim_topology = topology
    if variant is not None and variant.requests is not None:
        sim_topology = replace(sim_topology, agent_queue=topology.agent_queue + ".node")
    if variant is not None and variant.replies is not None:
        sim_topology = replace(sim_topology, webhook_queue=topology.webhook_queue + ".node")
    async with contextlib.AsyncExitStack() as stack:
        connection = await aio_pika.connect_robust(broker_url, timeout=10)
        stack.push_async_callback(connection.close)
        await stack.enter_async_context(declared(connection, topology))
        if sim_topology != topology:
            await stack.enter_async_context(declared(connection, sim_topology))
        options = PartyOptions(broker_url, topology, secret, patience=patience)
        target = await stack.enter_async_context(parties(options))
        settings: dict[str, Any] = {
            "wasender_url": target.wasender.url,
            "wasender_api_key": target.wasender.api_key,
            "webhook_secret": secret,
            "alert_url": target.alerts.url,
            "max_retries": len(topology.webhook_retry_delays_ms),
        }
        settings |= variant.config if variant is not None else {}
        config = NodeSimulatorConfig(amqp_url=broker_url, topology=sim_topology, **settings)
        node = await stack.enter_async_context(NodeSimulator(config))
        target.webhook_url = node.webhook_url
        if variant is not None:
            await _break(stack, connection, variant, target, node.webhook_url, sim_topology)
        yield target


async def _break(
    stack: contextlib.AsyncExitStack,
    connection: aio_pika.abc.AbstractRobustConnection,
    variant: Variant,
    target: Target,
    webhook_url: str,
    sim_topology: Topology,
) -> None:
    if variant.webhook is not None:
        proxy = await stack.enter_async_context(WebhookProxy(webhook_url, variant.webhook))
        target.webhook_url = proxy.url + "/webhook"
    topology = target.topology
    if variant.requests is not None:
        relay = QueueRelay(
            connection, sim_topology.agent_queue, topology.agent_queue, variant.requests
        )
        stack.push_async_callback(await relay.start())
    if variant.replies is not None:
        relay = QueueRelay(
            connection, topology.webhook_queue, sim_topology.webhook_queue, variant.replies
        )
        stack.push_async_callback(await relay.start())
