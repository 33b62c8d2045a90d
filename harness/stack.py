"""The whole system on one machine: a broker, the fakes, the Node side and the agent service.

``async with SimulationStack(options) as stack:`` starts, in order: a broker (DESIGN.md
section 7, unless one is given), the topology, the fake Wasender, an alert receiver, the Node
simulator (or nothing, when ``node_webhook_url`` targets the Node team's real service) and the
agent service as its own process with the scripted model. Leaving stops all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aio_pika.abc import AbstractRobustConnection

from agent_service.agent.options import parse_latency
from agent_service.contract.messages import FALLBACK_TEXT
from agent_service.contract.topology import Profile, Topology
from agent_service.lifecycle import Lifecycle
from agent_service.transport.connection import connect_robust_any
from fakes.alert_receiver import AlertReceiver
from fakes.gemini import FakeGemini
from fakes.gemini_faults import ErrorResponse as GeminiError
from fakes.gemini_faults import SlowResponse
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp
from harness.agent_process import AgentServiceProcess
from harness.broker import Broker, broker_urls, choose_broker
from harness.ledger import Entry, Ledger, MessageOutcome
from harness.namespaces import declared, topology_for
from harness.node_service import prepare_topology, wait_answering
from harness.postgres import ThrowawayDatabase
from harness.queue_tools import queue_depth
from harness.report import RunReport, build_report, recovery_after, tools_from_metrics
from harness.timeline import FaultSpan
from harness.topology_provision import Declared
from harness.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:  # imported when a run has a network: aiomisc costs half a second to import
    from harness.network import Network

# How long a run's report waits after the last outcome, so a late duplicate send is counted.
LATE_DUPLICATE_GRACE = 1.0
# How long a send may wait for the Node simulator's record of the message it answered
# (written once Wasender answered the send) before it is attributed by phone number.
ATTRIBUTION_GRACE = 2.0
# Retry waits short enough for a run to finish in seconds; TTLs stay at production values.
DEMO_RETRY_DELAYS_MS = (1_000, 2_000, 4_000)


MODELS = ("scripted", "gemini-fake")
GEMINI_MODEL = "gemini-2.5-flash"


@dataclass(frozen=True)
class StackOptions:
    model: str = "scripted"  # or "gemini-fake": the production path against FakeGemini
    model_latency: str = "uniform:0.05:0.3"  # SCRIPTED_LATENCY, or the fake Gemini's latency
    model_failure_rate: float = 0.0
    concurrent_tasks: int = 10
    retry_delays_ms: tuple[int, ...] = DEMO_RETRY_DELAYS_MS
    agent_ttl_ms: int = 300_000
    node_webhook_url: str | None = None  # the Node team's real service instead of ours
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    wasender_api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    wasender_port: int = 0
    alert_port: int = 0  # the alert receiver's (ALERT_URL of a real Node service)
    # How long the Node service at node_webhook_url may take to answer at the start.
    node_timeout: float = 30.0
    # The fake Wasender's rate limit: sends per window (None: unlimited) and the window's length.
    wasender_rate_limit_per_minute: int | None = None
    wasender_rate_limit_window_seconds: float = 60.0
    agent_log: Path | None = None
    start_agent: bool = True
    service_env: dict[str, Any] = field(default_factory=dict)
    # Agent service processes on one ag_queue (competing consumers), sharing AGENT_STATE_DIR.
    replicas: int = 1
    # A PostgreSQL server (URL): the run makes a database of its own there for DATABASE_URL,
    # shared by the replicas, and drops it at the end. None: the embedded default.
    postgres: str | None = None
    # TOPOLOGY_PROFILE of both sides: classic, or quorum (replicated queues, for a cluster).
    topology_profile: Profile = "classic"
    # Every party reaches the broker and the Node side reaches Wasender through a fault link of
    # its own (harness/network.py): "agent-1".., "node" (to the broker), "wasender".
    network: bool = False
    # The AMQP heartbeat of the agent service and the Node simulator (None: their defaults).
    heartbeat: int | None = None
    seed: int = 7  # the network's jitter


class SimulationStack(Lifecycle):
    def __init__(self, options: StackOptions | None = None, broker: Broker | None = None) -> None:
        self.options = options or StackOptions()
        self._given_broker = broker
        self.ledger = Ledger(FALLBACK_TEXT)
        self.whatsapp = FakeWhatsApp(self.options.webhook_secret)
        self.broker: Broker
        self.topology: Topology
        self.connection: AbstractRobustConnection
        self.wasender: FakeWasender
        self.alerts: AlertReceiver
        self.node: NodeSimulator | None = None
        self.gemini: FakeGemini | None = None
        self.network: Network | None = None
        self.agents: list[AgentServiceProcess] = []
        self.database_url: str | None = None
        self.provisioned: Declared | None = None  # against a real Node service: what it did
        self.webhook_url = ""
        self._send_cursor = 0
        self._alert_cursor = 0
        self._deliveries: set[asyncio.Task[bool]] = set()
        self.started_at = 0.0

    async def _start(self, stack: AsyncExitStack) -> None:
        o = self.options
        if self._given_broker is not None:
            self.broker = self._given_broker
        else:
            self.broker = await stack.enter_async_context(choose_broker())
        if o.node_webhook_url:
            # The Node team's service: its broker, the contract's production names and
            # settings (its own), verified first, only the missing declared, nothing deleted.
            self.topology = Topology(profile=o.topology_profile)
        else:
            base = replace(Topology(), agent_ttl_ms=o.agent_ttl_ms, profile=o.topology_profile)
            self.topology = topology_for(
                self.broker,
                base,
                agent_retry_delays_ms=o.retry_delays_ms,
                webhook_retry_delays_ms=o.retry_delays_ms,
            )
        self.connection = await connect_robust_any(broker_urls(self.broker), reconnect_interval=0.5)
        stack.push_async_callback(self.connection.close)
        if o.node_webhook_url:
            self.provisioned = await prepare_topology(self.connection, self.topology)
        else:
            await stack.enter_async_context(declared(self.connection, self.topology))
        self.wasender = await stack.enter_async_context(
            FakeWasender(
                api_key=o.wasender_api_key,
                port=o.wasender_port,
                rate_limit_per_minute=o.wasender_rate_limit_per_minute,
                rate_limit_window_seconds=o.wasender_rate_limit_window_seconds,
            )
        )
        self.alerts = await stack.enter_async_context(AlertReceiver(port=o.alert_port))
        if o.network:
            from harness.network import Network

            self.network = await stack.enter_async_context(Network(seed=o.seed))
        if o.model == "gemini-fake":
            self.gemini = await stack.enter_async_context(self._fake_gemini())
        if o.node_webhook_url:
            self.webhook_url = o.node_webhook_url
            await wait_answering(self.webhook_url, o.node_timeout)
        else:
            config = await self._node_config(stack)
            self.node = await stack.enter_async_context(NodeSimulator(config))
            self.webhook_url = self.node.webhook_url
        if o.postgres is not None:
            database = await stack.enter_async_context(ThrowawayDatabase(o.postgres))
            self.database_url = database.url
        state_dir = Path(tempfile.mkdtemp(prefix="harness-agent-state-"))
        for index in range(max(1, o.replicas)):
            agent = self._agent_process(index, state_dir, await self._route(f"agent-{index + 1}"))
            self.agents.append(agent)
            stack.push_async_callback(agent.terminate)
        if o.start_agent:
            # One first, so the schema and the demo data are made once, then the others.
            await self.agents[0].start()
            await asyncio.gather(*(agent.start() for agent in self.agents[1:]))
        stack.push_async_callback(self._end_deliveries)  # first thing undone at the stop
        self.started_at = time.monotonic()

    @property
    def agent(self) -> AgentServiceProcess:
        """The first replica (the only one unless ``replicas`` says otherwise)."""
        return self.agents[0]

    def describe_agents(self) -> str:
        count = len(self.agents)
        where = "PostgreSQL" if self.database_url else "embedded SQLite, in-process dedup"
        return f"{count} agent replica{'s' if count != 1 else ''}, state in {where}"

    async def _route(self, link: str, url: str | None = None) -> str:
        """``url`` (the broker's by default) as the party named ``link`` reaches it: through a
        fault link of its own when the run has a network, else directly."""
        url = url or self.broker.url
        if self.network is None:
            return url
        return (await self.network.add(link, url)).route(url)

    async def restart_node(self, down: float = 1.0) -> None:
        """Stop the Node simulator, ``down`` seconds later start it again on the same record
        file (the webhook moves to a new port: users' posts retry meanwhile, as Wasender's)."""
        node = self.node
        if node is None:
            raise RuntimeError("the run drives a real Node service: the harness cannot restart it")
        await node.stop()
        await asyncio.sleep(down)
        await node.start()
        self.webhook_url = node.webhook_url

    async def _node_config(self, stack: AsyncExitStack) -> NodeSimulatorConfig:
        # Its record (contacts, messages, outcomes, sends) in a file of the run, which a
        # restart of the simulator finds again.
        folder = Path(tempfile.mkdtemp(prefix="harness-node-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        return NodeSimulatorConfig(
            db_path=folder / "node-simulator.db",
            amqp_url=await self._route("node"),
            # Through the links, one broker; otherwise every node (a cluster's) to move to.
            amqp_urls=() if self.options.network else tuple(broker_urls(self.broker)),
            topology=self.topology,
            wasender_url=await self._route("wasender", self.wasender.url),
            wasender_api_key=self.options.wasender_api_key,
            webhook_secret=self.options.webhook_secret,
            alert_url=self.alerts.url,
            max_retries=len(self.topology.webhook_retry_delays_ms),
            heartbeat=self.options.heartbeat,
        )

    def _fake_gemini(self) -> FakeGemini:
        """The Gemini API on loopback, with the run's latency and failure rate as faults."""
        o = self.options
        gemini = FakeGemini(api_key=secrets.token_hex(16))
        latency = parse_latency(o.model_latency)
        if latency.mean > 0:
            gemini.inject(SlowResponse(latency))
        if o.model_failure_rate > 0:
            gemini.inject(GeminiError(503), ratio=o.model_failure_rate)
        return gemini

    def _model_env(self) -> dict[str, Any]:
        o = self.options
        if self.gemini is None:
            return {
                "agent_model": "scripted",
                "scripted_latency": o.model_latency,
                "scripted_failure_rate": o.model_failure_rate,
            }
        return {
            "agent_model": GEMINI_MODEL,
            "google_api_key": self.gemini.api_key,
            "google_gemini_base_url": self.gemini.url,
        }

    def _agent_process(self, index: int, state_dir: Path, amqp_url: str) -> AgentServiceProcess:
        o = self.options
        if o.agent_log is not None:
            log = o.agent_log if index == 0 else o.agent_log.with_suffix(f".{index}.log")
        else:
            log = Path(tempfile.mkdtemp(prefix="harness-agent-")) / "agent.log"
        extra = {"database_url": self.database_url} if self.database_url else {}
        urls = broker_urls(self.broker)
        if len(urls) > 1 and not o.network:  # a cluster: the service moves to a live node
            extra["rabbitmq_urls"] = ",".join(urls)
        heartbeat = {} if o.heartbeat is None else {"rabbitmq_heartbeat": o.heartbeat}
        return AgentServiceProcess(
            amqp_url,
            self.topology,
            log_path=log,
            state_dir=state_dir,
            concurrent_tasks=o.concurrent_tasks,
            **{**self._model_env(), **extra, **heartbeat, **o.service_env},
        )

    # -- driving the system ----------------------------------------------------------------

    async def say(
        self, phone: str, text: str, task: str, *, duplicate: bool = False, **event: Any
    ) -> Entry | None:
        """A user sends a WhatsApp message; it is recorded in the ledger once accepted.

        ``duplicate`` posts it the way Wasender sometimes does: as both messages.upsert and
        messages.received with the same id. It is still one message, owed one answer."""
        if duplicate:
            payloads = list(self.whatsapp.duplicate_pair(phone, text, **event))
        else:
            payloads = [self.whatsapp.text_event(phone, text, **event)]
        entry = self.ledger.injected(_message_id(payloads[0]), phone, text, task)
        # Once sent, the message is WhatsApp's to deliver, whether or not its sender waits:
        # a caller cancelled mid-post (a Locust user stopped mid-turn) must not take back a
        # message the ledger already owes an answer. The stack owns the delivery; it ends
        # with the stack.
        delivery = asyncio.create_task(self._deliver_all(entry, payloads))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        return entry if await asyncio.shield(delivery) else None

    async def _deliver_all(self, entry: Entry, payloads: list[dict[str, Any]]) -> bool:
        statuses = [await self._deliver(p) for p in payloads]
        if statuses[0] != 200:
            self.ledger.withdraw(entry)
            return False
        return True

    async def _end_deliveries(self) -> None:
        for delivery in list(self._deliveries):
            delivery.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def _deliver(self, payload: dict[str, Any], patience: float = 30.0) -> int:
        # Like Wasender: a webhook answered 5xx (the Node side could not reach the broker) or
        # not answered at all is delivered again, so the user's message is not lost.
        deadline = time.monotonic() + patience
        while True:
            try:
                status = (await self.whatsapp.post(self.webhook_url, payload)).status
            except (OSError, TimeoutError, aiohttp.ClientError):
                status = 599
            if status < 500 or time.monotonic() > deadline:
                return status
            await asyncio.sleep(1.0)

    def collect(self) -> None:
        """Take new sends and alerts into the ledger."""
        sends = self.wasender.sends
        now = time.monotonic()
        for sent in sends[self._send_cursor :]:
            whatsapp_id = None
            if self.node is not None:
                whatsapp_id = self.node.whatsapp_id_of_send(sent.msg_id)
                if whatsapp_id is None and now - sent.received_at < ATTRIBUTION_GRACE:
                    break  # the Node side records the send once Wasender answered: soon
            self.ledger.on_send(sent.to, sent.text or "", sent.received_at, whatsapp_id)
            self._send_cursor += 1
        alerts = self.alerts.alerts
        for alert in alerts[self._alert_cursor :]:
            self.ledger.on_alert(alert.whatsapp_message_id, alert.received_at)
        self._alert_cursor = len(alerts)

    def _settled(self, entry: Entry | None = None) -> bool:
        self.collect()
        return self.ledger.pending == 0 if entry is None else entry.outcome is not None

    async def wait_outcome(self, entry: Entry, timeout: float) -> MessageOutcome:
        """The message's outcome once it has one; MISSING if none came within ``timeout``."""
        with contextlib.suppress(WaitTimeout):
            await wait_until(
                lambda: self._settled(entry), timeout=timeout, what="an outcome", interval=0.02
            )
        return self.ledger.outcome_of(entry)

    async def wait_all(self, deadline: float) -> None:
        """Until every message has an outcome or the (monotonic) deadline passes."""
        with contextlib.suppress(WaitTimeout):
            await wait_until(
                self._settled,
                timeout=max(0.0, deadline - time.monotonic()),
                what="every outcome",
            )

    async def tools_used(self) -> dict[str, float]:
        """Tool calls by tool, summed over the replicas' /metrics (those that answer)."""
        total: dict[str, float] = {}
        for agent in self.agents:
            for tool, count in tools_from_metrics(await agent.metrics_text()).items():
                total[tool] = total.get(tool, 0.0) + count
        return total

    async def final_report(
        self, scenario: str, duration: float, faults: Iterable[FaultSpan] = ()
    ) -> RunReport:
        """The run's report once its messages have had their chance: a late duplicate within
        a second after the last outcome is still seen and counted. ``faults`` that measure
        recovery get the time from their end to the next reply."""
        await asyncio.sleep(LATE_DUPLICATE_GRACE)
        self.collect()
        report = build_report(
            scenario,
            self.ledger,
            duration=duration,
            depths=await self.depths(),
            tools=await self.tools_used(),
            broker=f"{self.broker.describe()}; {self.describe_agents()}",
        )
        for span in faults:
            if span.measure_recovery and span.ended is not None:
                report.recovery_seconds[span.label] = recovery_after(
                    self.ledger.entries, span.ended
                )
        return report

    async def depths(self) -> dict[str, int]:
        t = self.topology
        names = {
            "ag_queue": t.agent_queue,
            "wb_queue": t.webhook_queue,
            "dlx_agent": t.dlx_agent,
            "dlx_webhook": t.dlx_webhook,
            "parking": t.webhook_parking,
        }
        out = {}
        for label, name in names.items():
            with contextlib.suppress(Exception):
                out[label] = await queue_depth(self.connection, name)
        return out


def _message_id(event: dict[str, Any]) -> str:
    messages = event["data"]["messages"]
    message = messages[0] if isinstance(messages, list) else messages
    return str(message["key"]["id"])
