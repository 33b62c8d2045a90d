"""The agent service's lifecycle: connect, declare, consume, serve health, shut down in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractRobustConnection

from agent_service.contract.topology import declare
from agent_service.lifecycle import Lifecycle
from agent_service.observability.health import HealthServer
from agent_service.observability.metrics import ServiceMetrics
from agent_service.pipeline.engine import Engine
from agent_service.pipeline.handler import Limits, RequestHandler
from agent_service.settings import Settings
from agent_service.state.backends import open_backends, open_business_store, open_pool
from agent_service.transport.connection import connect_robust_any
from agent_service.transport.consumer import Consumer
from agent_service.transport.publisher import AmqpOutlet
from agent_service.transport.settle import Settler

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)


def build_engine(
    settings: Settings, stack: AsyncExitStack, pool: AsyncConnectionPool[Any] | None = None
) -> Engine:
    """The ADK agent engine with the model the settings name (fails fast without a key), on
    the business data of ``pool`` (DATABASE_URL) or of the shared SQLite file. Its database
    and runners are closed when ``stack`` closes."""
    from agent_service.agent import AgentEngine, build_model
    from agent_service.agent.options import ScriptedModelOptions

    options = ScriptedModelOptions(
        latency=settings.scripted_latency, failure_rate=settings.scripted_failure_rate
    )
    model = build_model(settings.agent_model, options)
    database = open_business_store(settings, stack, pool)
    engine = AgentEngine(model=model, database=database)
    stack.push_async_callback(engine.close)
    return engine


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_processing_time=settings.max_processing_time,
        max_retries=settings.max_retries,
        retry_levels=len(settings.retry_delays()),
        max_message_bytes=settings.max_message_bytes,
        max_deliveries=settings.max_deliveries,
        include_stack=settings.error_include_stack,
        log_message_text=settings.log_message_text,
    )


class AgentService(Lifecycle):
    """``async with AgentService(settings) as service: await service.run_until_signal()``."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.topology = settings.topology()
        self.metrics = ServiceMetrics()
        self._engine = engine
        self._connection: AbstractRobustConnection | None = None
        self._consumer: Consumer | None = None
        self._settler: Settler | None = None
        self._stopping = False
        self.health_port: int | None = None

    def ready(self) -> bool:
        """Started, connected, consuming, and the last publish was not returned by the broker.

        Started: every consumer channel is open. The first one consumes before the others
        are opened; ready then, a service whose link to the broker broke during the rest of
        its start died after it was taken for ready (found by the network-cut scenario)."""
        connection = self._connection
        return bool(
            self.running
            and connection is not None
            and not connection.is_closed
            and self._consumer is not None
            and self._consumer.consuming
            and self._settler is not None
            and self._settler.publishing
        )

    @property
    def in_flight(self) -> int:
        return self._consumer.in_flight if self._consumer else 0

    async def _start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        pool = await open_pool(s, stack)
        engine = self._engine or build_engine(s, stack, pool)
        backends = await open_backends(s, stack, pool)
        # With RABBITMQ_URLS, every reconnect goes to the next node (transport/connection.py).
        connection = await connect_robust_any(
            s.amqp_urls(),
            timeout=15,
            heartbeat=s.rabbitmq_heartbeat,
            reconnect_interval=s.reconnect_interval,
            ssl_context=s.ssl_context(),
            client_properties={"connection_name": "agent-service"},
        )
        self._connection = connection
        stack.push_async_callback(self._close_connection, connection)
        await declare(await connection.channel(), self.topology)
        connection.reconnect_callbacks.add(self._on_reconnect)
        connection.close_callbacks.add(self._on_connection_lost)
        handler = RequestHandler(
            engine, backends.states, backends.deliveries, self.metrics, limits_of(s)
        )
        outlet = AmqpOutlet(
            lambda: connection.channel(publisher_confirms=True, on_return_raises=True),
            self.topology,
        )
        self._settler = Settler(outlet, self.metrics)
        self._consumer = Consumer(
            connection,
            self.topology.agent_queue,
            handler,
            self._settler,
            self.metrics,
            concurrent_tasks=s.concurrent_tasks,
            prefetch=s.agent_queue_prefetch,
        )
        if s.health_port >= 0:
            health = HealthServer(self.metrics.registry, self.ready, s.health_host, s.health_port)
            await stack.enter_async_context(health)
            self.health_port = health.port
        await self._consumer.start()
        self.metrics.connected.set(1)
        log.info(
            "agent service consuming",
            extra={
                "queue": self.topology.agent_queue,
                "concurrent_tasks": s.concurrent_tasks,
                "prefetch": s.agent_queue_prefetch,
                "model": s.agent_model,
                "health_port": self.health_port,
            },
        )

    async def _close_connection(self, connection: AbstractRobustConnection) -> None:
        # Closing while the broker is unreachable must not hang the shutdown.
        try:
            await asyncio.wait_for(connection.close(), 10)
        except (TimeoutError, Exception):
            log.warning("broker connection did not close cleanly")

    async def _on_reconnect(self, connection: Any) -> None:
        # The broker may have lost non-durable state or been replaced: declare again.
        self.metrics.connected.set(1)
        log.info("reconnected to the broker; declaring the topology again")
        with contextlib.suppress(Exception):
            await declare(await connection.channel(), self.topology)

    def _on_connection_lost(self, *_: Any) -> None:
        self.metrics.connected.set(0)
        if not self._stopping:
            log.warning("lost the broker connection; reconnecting")

    async def _before_stop(self) -> None:
        """Stop consuming and finish or return in-flight work within SHUTDOWN_GRACE; then the
        health server, the connection and the engine close in reverse order."""
        self._stopping = True
        if self._consumer is not None:
            await self._consumer.stop(self.settings.shutdown_grace)

    async def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down", extra={"in_flight": self.in_flight})
