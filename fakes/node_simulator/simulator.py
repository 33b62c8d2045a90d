"""NodeSimulator: the Node webhook service of the spec, in Python, wired together.

    async with NodeSimulator(NodeSimulatorConfig(amqp_url, topology, wasender.url, "key",
                                                 webhook_secret="s3cret")) as node:
        await whatsapp.post(node.webhook_url + "/webhook", event)

Starting opens the store, connects to the broker (robust: a broker restart is survived),
declares the topology, starts the wb_queue consumer and the dead-letter monitor, then listens.
Leaving stops all of it in reverse order; a start that fails half-way undoes what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from agent_service.contract.messages import FALLBACK_TEXT
from agent_service.contract.topology import Topology, declare
from agent_service.lifecycle import Lifecycle
from agent_service.transport.channels import PublishChannel
from agent_service.transport.connection import connect_robust_any
from fakes.node_simulator.dead_letters import DeadLetterMonitor
from fakes.node_simulator.metrics import Alert, AlertSink, NodeMetrics
from fakes.node_simulator.reply_consumer import Courier, Publisher, ReplyConsumer, SeenReply
from fakes.node_simulator.store import OutcomeLedger, RequestOutcome, Store, StoredMessage
from fakes.node_simulator.wasender_client import WasenderClient
from fakes.node_simulator.webhook import Intake, WebhookServer
from fakes.phones import to_e164

logger = logging.getLogger("fakes.node_simulator")

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]

# Dead letters are few; several at once keep one slow fallback from holding up the rest.
_DLQ_PREFETCH = 10
# A delivery whose handling failed (broker hiccup) goes back to its queue after this pause, so
# a fault that persists does not turn into a hot loop.
_REQUEUE_PAUSE = 1.0


@dataclass(frozen=True)
class NodeSimulatorConfig:
    amqp_url: str
    topology: Topology
    wasender_url: str
    wasender_api_key: str
    webhook_secret: str
    db_path: Path | None = None  # None: a temporary SQLite file, removed on stop
    history_turns: int = 10
    ai_enabled_by_default: bool = True
    alert_url: str | None = None  # None: alerts are only kept in memory (node.alerts)
    send_timeout: float = 10.0
    max_retries: int = 3
    rate_limit_max_wait: float = 60.0
    fallback_text: str = FALLBACK_TEXT
    host: str = "127.0.0.1"
    port: int = 0
    publish_timeout: float = 5.0
    stop_grace: float = 5.0  # seconds in-flight deliveries get to finish on stop
    # The nodes of a cluster (RABBITMQ_URLS of the Node side): when its node dies, the
    # simulator reconnects to the next. Empty: only amqp_url.
    amqp_urls: tuple[str, ...] = ()
    # AMQP heartbeat in seconds (None: what the broker proposes, 60 s by default). Network
    # fault runs shorten it, so a silent link is noticed and dropped within seconds.
    heartbeat: int | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.history_turns < 0:
            raise ValueError("max_retries and history_turns must be >= 0")
        if self.max_retries > 0 and not self.topology.webhook_retry_delays_ms:
            raise ValueError("retries need at least one webhook retry delay in the topology")


class _Consumers:
    """Queue consumers whose in-flight handlers can be drained on stop."""

    def __init__(self) -> None:
        self._tags: list[tuple[aio_pika.abc.AbstractQueue, str]] = []
        self._inflight: set[asyncio.Task[object]] = set()

    async def start(
        self, channel: AbstractChannel, topology: Topology, queue: str, handler: Handler
    ) -> None:
        spec = topology.queue(queue)
        # Declared on the robust channel so a reconnect re-declares it and resumes consuming.
        declared = await channel.declare_queue(
            spec.name, durable=spec.durable, auto_delete=spec.auto_delete, arguments=spec.arguments
        )
        tag = await declared.consume(self._guarded(handler))
        self._tags.append((declared, tag))

    def _guarded(self, handler: Handler) -> Handler:
        async def run(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                await handler(message)
            except Exception:
                logger.exception(
                    "handling %s failed; it goes back to its queue", message.routing_key
                )
                await asyncio.sleep(_REQUEUE_PAUSE)
                with contextlib.suppress(
                    Exception
                ):  # the channel may be gone: then it is redelivered
                    await message.nack(requeue=True)
            finally:
                if task is not None:
                    self._inflight.discard(task)

        return run

    async def stop(self, grace: float) -> None:
        for queue, tag in self._tags:
            # Bounded: with the broker gone, a cancel would wait for a reconnect that may not come.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await queue.cancel(tag)
        self._tags.clear()
        if self._inflight:
            # Unfinished deliveries stay unacked and return to their queues when the channel closes.
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class NodeSimulator(Lifecycle):
    """The Node webhook service's behaviour; see the module docstring."""

    def __init__(self, config: NodeSimulatorConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self._alerts = AlertSink(self.metrics, config.alert_url)
        self._store: Store | None = None
        self._courier: Courier | None = None
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: PublishChannel | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        store = self._open_store(stack)
        stack.push_async_callback(self._alerts.close)
        client = WasenderClient(
            cfg.wasender_url,
            cfg.wasender_api_key,
            timeout=cfg.send_timeout,
            rate_limit_max_wait=cfg.rate_limit_max_wait,
        )
        stack.push_async_callback(client.close)
        heartbeat: dict[str, Any] = {} if cfg.heartbeat is None else {"heartbeat": cfg.heartbeat}
        connection = await connect_robust_any(
            cfg.amqp_urls or (cfg.amqp_url,), reconnect_interval=1, timeout=10, **heartbeat
        )
        stack.push_async_callback(connection.close)
        self._connection = connection
        async with connection.channel() as setup:
            await declare(setup, cfg.topology)
        publish_channel = PublishChannel(
            lambda: connection.channel(publisher_confirms=True, on_return_raises=True)
        )
        await publish_channel.get()  # opened at the start, so a broken broker shows now
        self._publish_channel = publish_channel
        publisher = Publisher(publish_channel, cfg.publish_timeout)
        self._courier = courier = Courier(
            client=client,
            store=store,
            ledger=OutcomeLedger(store),
            metrics=self.metrics,
            alerts=self._alerts,
            publish=publisher.publish,
            topology=cfg.topology,
            max_retries=cfg.max_retries,
        )
        await self._start_consumers(stack, connection, courier)
        intake = Intake(
            store, publisher.publish, cfg.topology.agent_queue, self.metrics, cfg.history_turns
        )
        server = WebhookServer(
            intake, self.metrics, cfg.webhook_secret, self._broker_up, host=cfg.host, port=cfg.port
        )
        await stack.enter_async_context(server)
        self._url = server.url
        stack.callback(self._stopped)
        logger.info("🚀 Node simulator listening on %s", self._url)

    def _open_store(self, stack: contextlib.AsyncExitStack) -> Store:
        path = self.config.db_path
        if path is None:
            folder = tempfile.mkdtemp(prefix="node-sim-")
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            path = Path(folder) / "node.db"
        store = Store(path, ai_enabled_by_default=self.config.ai_enabled_by_default)
        stack.callback(store.close)
        self._store = store
        return store

    async def _start_consumers(
        self,
        stack: contextlib.AsyncExitStack,
        connection: AbstractRobustConnection,
        courier: Courier,
    ) -> None:
        topology = self.config.topology
        consumers = _Consumers()
        stack.push_async_callback(consumers.stop, self.config.stop_grace)
        replies = await connection.channel()
        await replies.set_qos(prefetch_count=topology.webhook_prefetch)
        await consumers.start(
            replies, topology, topology.webhook_queue, ReplyConsumer(courier).handle
        )
        monitor = DeadLetterMonitor(courier, self.config.fallback_text)
        dead = await connection.channel()
        await dead.set_qos(prefetch_count=_DLQ_PREFETCH)
        await consumers.start(dead, topology, topology.dlx_agent, monitor.handle_agent)
        await consumers.start(dead, topology, topology.dlx_webhook, monitor.handle_webhook)

    def _stopped(self) -> None:
        self._url = None
        logger.info("🛑 Node simulator stopped")

    def _broker_up(self) -> bool:
        # A robust connection is never "closed" while it reconnects; `connected` tells, and the
        # publish channel is the one a webhook needs reopened before it can be served.
        connection, channel = self._connection, self._publish_channel
        return (
            connection is not None
            and connection.connected.is_set()
            and channel is not None
            and channel.usable
        )

    # -- Python API ------------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        """Where Wasender posts events, e.g. http://127.0.0.1:40123/webhook."""
        return self.base_url + "/webhook"

    @property
    def base_url(self) -> str:
        if self._url is None:
            raise RuntimeError("NodeSimulator is not running; use `async with` or start()")
        return self._url

    @property
    def alerts(self) -> list[Alert]:
        """Admin alerts raised so far, oldest first (a copy)."""
        return list(self._alerts.alerts)

    def disable_ai(self, phone: str) -> None:
        """Stop publishing this contact's messages to the agent (they are still stored)."""
        self._require_store().set_ai_enabled(to_e164(phone), False)

    def enable_ai(self, phone: str) -> None:
        self._require_store().set_ai_enabled(to_e164(phone), True)

    def set_user_notes(self, phone: str, notes: str | None) -> None:
        """Notes that go into the contact's next requests as context.userNotes."""
        self._require_store().set_user_notes(to_e164(phone), notes)

    def history(self, phone: str) -> list[StoredMessage]:
        """The contact's stored conversation, oldest first."""
        return self._require_store().history(to_e164(phone))

    def replies_seen(self) -> list[SeenReply]:
        """Every reply the agent service published to wb_queue, in the order they came."""
        return list(self._courier.seen) if self._courier is not None else []

    def requests_of(self, phone: str) -> list[str]:
        """The request ids published for the contact's messages, in the order published."""
        return [m.request_id for m in self.history(phone) if m.role == "user" and m.request_id]

    def outcomes(self) -> dict[str, RequestOutcome]:
        """request id -> 'reply' | 'fallback' | 'parked', for every request settled so far."""
        return self._require_store().outcomes()

    def whatsapp_id_of_send(self, msg_id: object) -> str | None:
        """The WhatsApp message a Wasender send (by its msgId) answered; None until the send
        is recorded (just after Wasender answered it), or when not running."""
        store = self._store
        if store is None or not self.running:
            return None
        request_id = store.request_of_send(str(msg_id))
        return None if request_id is None else store.whatsapp_id_for(request_id)

    def _require_store(self) -> Store:
        if self._store is None or not self.running:
            raise RuntimeError("NodeSimulator is not running")
        return self._store
