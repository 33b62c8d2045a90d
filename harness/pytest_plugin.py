"""pytest fixtures of the harness, registered through the ``pytest11`` entry point.

Another repository that installs this package gets them by name. Async session fixtures need
pytest-asyncio with ``asyncio_mode = "auto"`` and session loop scopes (see the README).

- ``broker`` (session): a real broker, chosen by ``choose_broker`` (HARNESS_BROKER...).
- ``private_node`` (session): a broker the harness owns and may stop, kill and restart.
- ``controlled_node``: ``private_node``, started again after the test whatever it did.
- ``amqp_connection``: a connection named after the test, closed after it.
- ``make_topology``: the topology under names unique to the test, declared, deleted after.
- ``start_agent_service``: the real agent service in this process (scripted model).
- ``fake_wasender``, ``fake_whatsapp``, ``alert_receiver``: the fakes of the other parties.
- ``start_node_simulator``: the Node side, wired to those fakes.
- ``make_stack``: the whole system (fakes, Node simulator, agent service process, ledger).
- ``ledger``: an empty ledger.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.contract.topology import Topology, declare, delete
from fakes.alert_receiver import AlertReceiver
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp
from harness.broker import Broker, PrivateNode, choose_broker
from harness.broker.private_node import rabbitmq_available
from harness.ledger import Ledger
from harness.stack import SimulationStack, StackOptions

if TYPE_CHECKING:
    from agent_service.service import AgentService

TopologyFactory = Callable[..., Awaitable[Topology]]


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[Broker]:
    async with choose_broker() as chosen:
        yield chosen


@pytest.fixture(scope="session")
async def private_node(broker: Broker) -> AsyncIterator[PrivateNode]:
    if isinstance(broker, PrivateNode):
        yield broker
        return
    if not rabbitmq_available():
        pytest.skip("needs rabbitmq-server installed, to run a node the harness may kill")
    async with PrivateNode() as node:
        yield node


@pytest.fixture
async def controlled_node(private_node: PrivateNode) -> AsyncIterator[PrivateNode]:
    yield private_node
    # Whatever a chaos test did to the node, the next test finds it running.
    if not private_node.is_running():
        await private_node.start()


def _test_prefix() -> str:
    # Short on purpose: RabbitMQ cuts 406 reply texts at 255 bytes, and they quote names.
    return f"t{secrets.token_hex(3)}."


@pytest.fixture
async def amqp_connection(
    broker: Broker, request: pytest.FixtureRequest
) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(
        broker.url,
        client_properties={"connection_name": request.node.nodeid[:200]},
        timeout=10,
    )
    async with connection:
        yield connection


@pytest.fixture
async def make_topology(broker: Broker) -> AsyncIterator[TopologyFactory]:
    """``await make_topology(agent_ttl_ms=500, declare=True)``: a topology only this test uses."""
    made: list[Topology] = []
    prefix = _test_prefix()

    async def factory(*, declared: bool = True, **overrides: Any) -> Topology:
        topology = replace(Topology(), **overrides).renamed(f"{prefix}{len(made)}.")
        made.append(topology)
        if declared:
            async with await aio_pika.connect(broker.url, timeout=10) as connection:
                await declare(await connection.channel(), topology)
        return topology

    yield factory
    if made:
        with contextlib.suppress(Exception):  # a broker a chaos test left down has no queues
            async with await aio_pika.connect(broker.url, timeout=10) as connection:
                for topology in made:
                    await delete(await connection.channel(), topology)


ServiceFactory = Callable[..., Awaitable["AgentService"]]


@pytest.fixture
async def start_agent_service(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceFactory]:
    """``await start_agent_service(topology, concurrent_tasks=5, ...)``: the real service, in
    this process, with the scripted model (settings by field name); stopped after the test.
    ``engine=`` replaces the ADK engine (``agent_service.testing.FakeEngine``, say)."""
    from agent_service.service import AgentService
    from harness.agent_process import service_settings

    started: list[AgentService] = []

    async def factory(topology: Topology, engine: Any = None, **overrides: Any) -> AgentService:
        overrides.setdefault("agent_state_dir", str(tmp_path_factory.mktemp("agent-state")))
        service = AgentService(service_settings(broker.url, topology, **overrides), engine)
        await service.__aenter__()
        started.append(service)
        return service

    yield factory
    for service in reversed(started):
        with contextlib.suppress(Exception):
            await service.stop()


@pytest.fixture
async def fake_wasender() -> AsyncIterator[FakeWasender]:
    """A fake Wasender API on 127.0.0.1 (any port), API key ``test-key``."""
    async with FakeWasender() as wasender:
        yield wasender


@pytest.fixture
def fake_whatsapp() -> FakeWhatsApp:
    """Builds and posts Wasender webhook events, signed with the secret ``test-secret``."""
    return FakeWhatsApp("test-secret")


@pytest.fixture
async def alert_receiver() -> AsyncIterator[AlertReceiver]:
    async with AlertReceiver() as receiver:
        yield receiver


@pytest.fixture
async def start_node_simulator(
    broker: Broker, fake_wasender: FakeWasender, alert_receiver: AlertReceiver
) -> AsyncIterator[Callable[..., Awaitable[NodeSimulator]]]:
    """``await start_node_simulator(topology, **config)``: the Node side, wired to
    ``fake_wasender`` and ``alert_receiver``, webhook secret ``test-secret``."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(topology: Topology, **config: Any) -> NodeSimulator:
            settings = NodeSimulatorConfig(
                amqp_url=broker.url,
                topology=topology,
                wasender_url=fake_wasender.url,
                wasender_api_key=fake_wasender.api_key,
                webhook_secret="test-secret",
                alert_url=alert_receiver.url,
                max_retries=len(topology.webhook_retry_delays_ms),
                **config,
            )
            return await stack.enter_async_context(NodeSimulator(settings))

        yield factory


@pytest.fixture
async def make_stack(broker: Broker) -> AsyncIterator[Callable[..., Awaitable[SimulationStack]]]:
    """``await make_stack(**StackOptions)``: the whole system on the session broker (fakes, Node
    simulator, agent service process, ledger), stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(**options: Any) -> SimulationStack:
            return await stack.enter_async_context(
                SimulationStack(StackOptions(**options), broker=broker)
            )

        yield factory


@pytest.fixture
def ledger() -> Ledger:
    """An empty ledger (the fallback text of the agent service)."""
    from agent_service.contract.messages import FALLBACK_TEXT

    return Ledger(FALLBACK_TEXT)
