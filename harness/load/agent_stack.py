"""A broker and the agent service alone: what Locust's AMQP users load (loadtests/agent_queue.py).

No fake WhatsApp, no Node simulator, no fake Wasender: the users publish requests to the
agent queue and consume the webhook queue themselves, so what they time is the agent service
and the broker, nothing of the Node side.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from agent_service.contract.topology import Topology
from agent_service.lifecycle import Lifecycle
from harness.agent_process import AgentServiceProcess
from harness.broker import Broker
from harness.namespaces import broker_with_topology


class AgentOnlyStack(Lifecycle):
    def __init__(self, *, model_latency: str, model_failure_rate: float, concurrent_tasks: int):
        self.model_latency = model_latency
        self.model_failure_rate = model_failure_rate
        self.concurrent_tasks = concurrent_tasks
        self.broker: Broker
        self.topology: Topology
        self.started_at = 0.0

    async def _start(self, stack: AsyncExitStack) -> None:
        self.broker, self.topology = await broker_with_topology(stack)
        log = Path(tempfile.mkdtemp(prefix="harness-agent-")) / "agent.log"
        agent = AgentServiceProcess(
            self.broker.url,
            self.topology,
            log_path=log,
            concurrent_tasks=self.concurrent_tasks,
            scripted_latency=self.model_latency,
            scripted_failure_rate=self.model_failure_rate,
        )
        await stack.enter_async_context(agent)
        self.started_at = time.monotonic()

    def endpoints(self) -> dict[str, str]:
        """Where the Locust users publish and what they consume."""
        return {
            "amqp_url": self.broker.url,
            "agent_queue": self.topology.agent_queue,
            "webhook_queue": self.topology.webhook_queue,
        }
