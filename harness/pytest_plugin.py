"""pytest fixtures of the harness, registered through the ``pytest11`` entry point.

Another repository that installs this package gets them by name. Async session fixtures need
pytest-asyncio with ``asyncio_mode = "auto"`` and session loop scopes (see the README).

- ``broker`` (session): a real broker, chosen by ``choose_broker`` (HARNESS_BROKER...).
- ``private_node`` (session): a broker the harness owns and may stop, kill and restart.
- ``controlled_node``: ``private_node``, started again after the test whatever it did.
- ``broker_cluster``: three private nodes in one cluster (``BrokerCluster``, one per session);
  every node runs and the cluster is whole when a test begins, whatever the last one killed.
- ``amqp_connection``: a connection named after the test, closed after it.
- ``make_topology``: the topology under names unique to the test, declared, deleted after.
- ``start_agent_service``: the real agent service in this process (scripted model).
- ``fake_wasender``, ``fake_whatsapp``, ``alert_receiver``: the fakes of the other parties.
- ``start_node_simulator``: the Node side, wired to those fakes.
- ``make_stack``: the whole system (fakes, Node simulator, agent service process, ledger).
- ``ledger``: an empty ledger.
- ``postgres_template`` (session): a PostgreSQL database migrated and seeded once
  (HARNESS_POSTGRES_URL, default this machine's), dropped at the end.
- ``make_database``: ``await make_database()`` is the URL of a fresh copy of it (``seeded=False``:
  an empty database), dropped after the test.

pytest loads this module for every session of every repository that installs the package, so
it imports only pytest at load time: each fixture imports what it needs when it is used.
Every factory fixture (``make_*``, ``start_*``) enters what it makes on one exit stack, left
after the test in reverse order.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

    from agent_service.contract.topology import Topology
    from agent_service.service import AgentService
    from fakes.alert_receiver import AlertReceiver
    from fakes.node_simulator import NodeSimulator
    from fakes.wasender import FakeWasender
    from fakes.whatsapp import FakeWhatsApp
    from harness.broker import Broker, BrokerCluster, PrivateNode
    from harness.ledger import Ledger
    from harness.postgres import TemplateDatabase
    from harness.stack import SimulationStack

TopologyFactory = Callable[..., Awaitable["Topology"]]
ServiceFactory = Callable[..., Awaitable["AgentService"]]
NodeFactory = Callable[..., Awaitable["NodeSimulator"]]
StackFactory = Callable[..., Awaitable["SimulationStack"]]
DatabaseFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[Broker]:
    from harness.broker import choose_broker

    async with choose_broker() as chosen:
        yield chosen


@pytest.fixture(scope="session")
async def private_node(broker: Broker) -> AsyncIterator[PrivateNode]:
    from harness.broker import PrivateNode
    from harness.broker.private_node import rabbitmq_available

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


@pytest.fixture(scope="session")
async def _session_cluster(broker: Broker) -> AsyncIterator[BrokerCluster]:
    from harness.broker import BrokerCluster
    from harness.broker.private_node import rabbitmq_available

    if isinstance(broker, BrokerCluster):
        yield broker
        return
    if not rabbitmq_available():
        pytest.skip("needs rabbitmq-server installed, to run a cluster the harness may kill")
    async with BrokerCluster() as cluster:
        yield cluster


@pytest.fixture
async def broker_cluster(_session_cluster: BrokerCluster) -> AsyncIterator[BrokerCluster]:
    # Whatever an earlier test killed is started before this one (not after that test: the
    # last test's restart would only be waited for and stopped again, seconds for nothing).
    stopped = [node for node in _session_cluster.nodes if not node.is_running()]
    if stopped:
        import asyncio

        # Together: a node that stopped before another waits at boot for it to come back.
        await asyncio.gather(*(node.start() for node in stopped))
        await _session_cluster.wait_formed()
    yield _session_cluster


def _test_prefix() -> str:
    # Short on purpose: RabbitMQ cuts 406 reply texts at 255 bytes, and they quote names.
    return f"t{secrets.token_hex(3)}."


@pytest.fixture
async def amqp_connection(
    broker: Broker, request: pytest.FixtureRequest
) -> AsyncIterator[AbstractRobustConnection]:
    import aio_pika

    connection = await aio_pika.connect_robust(
        broker.url,
        client_properties={"connection_name": request.node.nodeid[:200]},
        timeout=10,
    )
    async with connection:
        yield connection


@pytest.fixture
async def make_topology(broker: Broker) -> AsyncIterator[TopologyFactory]:
    """``await make_topology(agent_ttl_ms=500, declared=True)``: a topology only this test
    uses, deleted after it."""
    from dataclasses import replace

    from agent_service.contract.topology import Topology
    from harness.namespaces import declared_on

    prefix = _test_prefix()
    count = 0
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, declared: bool = True, **overrides: Any) -> Topology:
            nonlocal count
            topology = replace(Topology(), **overrides).renamed(f"{prefix}{count}.")
            count += 1
            await stack.enter_async_context(
                declared_on(broker.url, topology, declare_first=declared)
            )
            return topology

        yield factory


@pytest.fixture
async def start_agent_service(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceFactory]:
    """``await start_agent_service(topology, concurrent_tasks=5, ...)``: the real service, in
    this process, with the scripted model (settings by field name); stopped after the test.
    ``engine=`` replaces the ADK engine (``agent_service.testing.FakeEngine``, say)."""
    from agent_service.service import AgentService
    from harness.agent_process import service_settings

    async with contextlib.AsyncExitStack() as stack:

        async def factory(topology: Topology, engine: Any = None, **overrides: Any) -> AgentService:
            overrides.setdefault("agent_state_dir", str(tmp_path_factory.mktemp("agent-state")))
            service = AgentService(service_settings(broker.url, topology, **overrides), engine)
            return await stack.enter_async_context(service)

        yield factory


@pytest.fixture
async def fake_wasender() -> AsyncIterator[FakeWasender]:
    """A fake Wasender API on 127.0.0.1 (any port), API key ``test-key``."""
    from fakes.wasender import FakeWasender

    async with FakeWasender() as wasender:
        yield wasender


@pytest.fixture
def fake_whatsapp() -> FakeWhatsApp:
    """Builds and posts Wasender webhook events, signed with the secret ``test-secret``."""
    from fakes.whatsapp import FakeWhatsApp

    return FakeWhatsApp("test-secret")


@pytest.fixture
async def alert_receiver() -> AsyncIterator[AlertReceiver]:
    from fakes.alert_receiver import AlertReceiver

    async with AlertReceiver() as receiver:
        yield receiver


@pytest.fixture
async def start_node_simulator(
    broker: Broker, fake_wasender: FakeWasender, alert_receiver: AlertReceiver
) -> AsyncIterator[NodeFactory]:
    """``await start_node_simulator(topology, **config)``: the Node side, wired to
    ``fake_wasender`` and ``alert_receiver``, webhook secret ``test-secret``."""
    from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig

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
async def make_stack(broker: Broker) -> AsyncIterator[StackFactory]:
    """``await make_stack(**StackOptions)``: the whole system on the session broker (fakes, Node
    simulator, agent service process, ledger), stopped after the test."""
    from harness.stack import SimulationStack, StackOptions

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
    from harness.ledger import Ledger

    return Ledger(FALLBACK_TEXT)


@pytest.fixture(scope="session")
async def postgres_template() -> AsyncIterator[TemplateDatabase]:
    from harness.postgres import TemplateDatabase

    async with TemplateDatabase() as template:
        yield template


@pytest.fixture
async def make_database(postgres_template: TemplateDatabase) -> AsyncIterator[DatabaseFactory]:
    """``await make_database()``: the URL of a new database with the schemas and demo data
    (``seeded=False``: empty), dropped after the test."""
    from harness.postgres import ThrowawayDatabase

    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, seeded: bool = True) -> str:
            database = postgres_template.copy() if seeded else ThrowawayDatabase()
            return (await stack.enter_async_context(database)).url

        yield factory
