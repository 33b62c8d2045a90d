"""What the service adds to the agent: the engine alone, in this process, on the same requests.

The service's rate (a backlog through RabbitMQ, ``runs.backlog_run``) divided by this one is
the share of the agent's own rate the plumbing leaves: decoding, claiming, publishing with
confirms, acking, logging and metrics. Both use the scripted model at latency 0 and the same
number of requests at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from agent_service.agent import AgentEngine, ScriptedModel, open_demo_database
from agent_service.contract.messages import AgentRequest


@dataclass
class EngineRun:
    concurrent_tasks: int
    requests: int
    seconds: float = 0.0
    requests_per_second: float = 0.0
    cpu_ms_per_request: float = 0.0


async def engine_run(requests: list[AgentRequest], concurrent_tasks: int) -> EngineRun:
    """The requests through the ADK engine, ``concurrent_tasks`` at once, after a warm-up."""
    result = EngineRun(concurrent_tasks, len(requests))
    with open_demo_database(None) as store:
        async with AgentEngine(ScriptedModel(), store) as engine:
            slots = asyncio.Semaphore(concurrent_tasks)

            async def one(request: AgentRequest) -> None:
                async with slots:
                    await engine.run(request)

            # A cold engine pays its first sessions and lazy imports once: not measured, as
            # the service's figures start at its first reply.
            await asyncio.gather(*(one(r) for r in requests[:concurrent_tasks]))
            cpu, began = time.process_time(), time.monotonic()
            await asyncio.gather(*(one(r) for r in requests))
            result.seconds = time.monotonic() - began
            cpu_used = time.process_time() - cpu
    result.requests_per_second = len(requests) / result.seconds if result.seconds else 0.0
    result.cpu_ms_per_request = 1000 * cpu_used / max(1, len(requests))
    return result
