"""The Locust profile's stack service: a SimulationStack in one plain asyncio process.

    python -m harness.load.stack_service --port N [--model-latency ...]

The stack cannot run inside Locust's process: Locust monkey-patches the interpreter for gevent
and the harness's asyncio code then breaks there, even in a real OS thread (docs/load-testing.md,
"How it works"). So the Locust side (loadtests/_stack_client.py) starts this process and drives
it over HTTP on 127.0.0.1:

    GET  /health    {"ready": bool, "broker": str}
    POST /turn      {"phone", "text", "task", "timeout"} -> the message's outcome
    POST /shutdown  the run report (harness.report), then the stack stops and the process exits

The service stops its stack (broker included) when asked, on SIGTERM, when its stdin closes
(Locust exited, however it exited) and after ``max_seconds`` at the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

from aiohttp import web

from agent_service.http_server import HttpServer
from harness.load.agent_stack import AgentOnlyStack
from harness.load.protocol import HOST, STACKS, StackSettings, add_service_arguments
from harness.stack import SimulationStack, StackOptions


class StackService(HttpServer):
    """The SimulationStack, driven over HTTP by the Locust process."""

    def __init__(self, settings: StackSettings, port: int) -> None:
        super().__init__(HOST, port)
        self.settings = settings
        self.stack: SimulationStack | AgentOnlyStack
        if settings.stack == "agent":
            self.stack = AgentOnlyStack(
                model_latency=settings.model_latency,
                model_failure_rate=settings.model_failure_rate,
                concurrent_tasks=settings.concurrent_tasks,
            )
        else:
            self.stack = SimulationStack(
                StackOptions(
                    model=settings.model,
                    model_latency=settings.model_latency,
                    model_failure_rate=settings.model_failure_rate,
                    concurrent_tasks=settings.concurrent_tasks,
                )
            )
        self.ready = False
        self.stopping = asyncio.Event()

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        app.router.add_post("/turn", self._turn)
        app.router.add_post("/shutdown", self._shutdown)

    async def _health(self, request: web.Request) -> web.Response:
        broker = self.stack.broker.describe() if self.ready else ""
        health: dict[str, object] = {"ready": self.ready, "broker": broker}
        if self.ready and isinstance(self.stack, AgentOnlyStack):
            health["agent"] = self.stack.endpoints()
        return web.json_response(health)

    async def _turn(self, request: web.Request) -> web.Response:
        if not self.ready or self.stopping.is_set():
            return web.json_response({"error": "the stack is not running"}, status=503)
        if not isinstance(self.stack, SimulationStack):
            error = "--stack agent runs no Node side: AgentQueueUser talks AMQP itself"
            return web.json_response({"error": error}, status=409)
        body = await request.json()
        timeout = float(body.get("timeout", self.settings.answer_timeout))
        posted = time.monotonic()
        entry = await self.stack.say(str(body["phone"]), str(body["text"]), str(body["task"]))
        if entry is None:
            waited = (time.monotonic() - posted) * 1000
            result = {"accepted": False, "outcome": "refused", "latency_ms": waited}
            return web.json_response({**result, "reply_length": 0})
        outcome = await self.stack.wait_outcome(entry, timeout)
        latency = entry.latency if entry.latency is not None else time.monotonic() - entry.sent_at
        return web.json_response(
            {
                "accepted": True,
                "outcome": outcome.value,
                "latency_ms": round(latency * 1000, 1),
                "reply_length": len((entry.reply_text or "").encode()),
            }
        )

    async def _shutdown(self, request: web.Request) -> web.Response:
        from harness.report import render

        if not self.ready:
            self.stopping.set()
            return web.json_response({"report": None, "text": "the stack never started"})
        stack = self.stack
        if not isinstance(stack, SimulationStack):
            self.stopping.set()
            text = "agent-only stack: the figures are Locust's own (AgentQueueUser)"
            return web.json_response({"report": None, "text": text})
        duration = time.monotonic() - stack.started_at
        # Messages in flight when Locust stopped its users still get their outcome counted.
        await stack.wait_all(time.monotonic() + self.settings.answer_timeout)
        report = await stack.final_report("locust", duration)
        self.stopping.set()
        return web.json_response({"report": report.to_json(), "text": render(report)})

    async def serve(self) -> int:
        """Start the stack, serve until told to stop (or ``max_seconds``), stop the stack."""
        # Starting may take a while (a broker boots); a stop request meanwhile cancels it.
        starting = asyncio.create_task(self.stack.start())
        stopping = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting  # the stack cleans up what it had started
            return 1
        stopping.cancel()
        starting.result()  # a failed start raises here, after the stack cleaned up
        try:
            self.ready = True
            _say(f"ready: {self.stack.broker.describe()}")
            remaining = self.settings.max_seconds - (time.monotonic() - self.stack.started_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), max(remaining, 0.0))
            self.ready = False
            await asyncio.sleep(0.2)  # let the /shutdown answer go out
        finally:
            await self.stack.stop()
        _say("stack stopped")
        return 0


def _say(text: str) -> None:
    print(f"[stack service] {text}", file=sys.stderr, flush=True)


async def _serve(port: int, settings: StackSettings) -> int:
    service = StackService(settings, port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, service.stopping.set)

    class _StdinWatch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            service.stopping.set()  # Locust is gone

    with contextlib.suppress(OSError, ValueError):
        await loop.connect_read_pipe(_StdinWatch, sys.stdin)
    async with service:
        return await service.serve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Locust profile's stack service")
    parser.add_argument("--port", type=int, required=True)
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.stack not in STACKS:
        parser.error(f"--stack must be one of {', '.join(STACKS)}, not {args.stack!r}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop handles it
    return asyncio.run(_serve(args.port, StackSettings.from_namespace(args)))


if __name__ == "__main__":
    sys.exit(main())
