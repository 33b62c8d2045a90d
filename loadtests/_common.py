"""Helpers of the Locust profile; Locust skips this file (its name starts with ``_``).

The system under test is a :class:`harness.stack.SimulationStack` (broker, fake Wasender, alert
receiver, Node simulator and the agent service process). It cannot run inside Locust's process:
Locust monkey-patches the whole interpreter for gevent, and the harness's asyncio code then
breaks there, even in a real OS thread. ``subprocess.Popen`` becomes gevent's, whose child
watchers exist only on the main thread's loop ("child watchers are only available on the
default loop"); with the original subprocess functions put back it still did not start in
120 s (docs/load-testing.md, "How it works"). So the stack lives in a *stack service*: this
file run as a script, a plain asyncio process with ONE event loop, no gevent, that answers the
users over HTTP on 127.0.0.1:

    GET  /health    {"ready": bool, "broker": str}
    POST /turn      {"phone", "text", "task", "timeout"} -> the message's outcome
    POST /shutdown  the run report (harness.report), then the stack stops and the process exits

The Locust side (:class:`StackProcess`, :class:`StackClient`) uses only the standard library:
``subprocess`` and ``http.client`` are cooperative under gevent's patches, so a user waiting
for its answer blocks only its own greenlet. The service stops its stack (broker included)
when asked, on SIGTERM, when its stdin closes (Locust exited, however it exited), when the
Locust process dies (PR_SET_PDEATHSIG = SIGTERM) and after ``max_seconds`` at the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

HOST = "127.0.0.1"
OUTCOMES = ("reply", "fallback", "parked", "missing")


@dataclass(frozen=True)
class StackSettings:
    """What the stack service runs with; Locust's custom arguments fill it."""

    model_latency: str = "uniform:0.05:0.3"
    model_failure_rate: float = 0.0
    concurrent_tasks: int = 10
    answer_timeout: float = 30.0  # seconds a user waits for its outcome before "missing"
    start_timeout: float = 120.0  # seconds the stack may take to start
    max_seconds: float = 3600.0  # the service stops its stack after this, whatever happens

    def argv(self) -> list[str]:
        return [f"--{name.replace('_', '-')}={value}" for name, value in asdict(self).items()]


@dataclass(frozen=True)
class TurnResult:
    """What became of one message, as the stack service saw it."""

    accepted: bool
    outcome: str  # reply | fallback | parked | missing ("refused" when not accepted)
    latency_ms: float  # webhook post to outcome; the time waited when missing
    reply_length: int


class NotAnswered(Exception):
    """The contact got no real answer: a fallback text, a parked message or nothing at all."""

    def __init__(self, outcome: str, answer_timeout: float) -> None:
        self.outcome = outcome
        messages = {
            "fallback": "fallback: the contact got the fallback text",
            "parked": "parked: the reply was parked and an admin alerted",
            "missing": f"missing: no outcome within {answer_timeout:g} s",
            "refused": "refused: the webhook did not accept the message",
        }
        super().__init__(messages.get(outcome, outcome))


class StackServiceError(RuntimeError):
    pass


# -- the Locust side -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _term_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # The service must still stop its broker when Locust is killed: SIGTERM, not SIGKILL.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class StackProcess:
    """The stack service as a child process of Locust."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.broker = ""

    def launch(self) -> None:
        """Start the service; it boots the stack in the background (see ``wait_ready``)."""
        command = [sys.executable, str(Path(__file__).resolve()), f"--port={self.port}"]
        self.process = subprocess.Popen(
            command + self.settings.argv(),
            stdin=subprocess.PIPE,  # never written: its closing tells the service Locust is gone
            start_new_session=True,  # Ctrl-C in a terminal reaches Locust only; Locust stops it
            preexec_fn=_term_with_parent,
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = None if self.process is None else self.process.returncode
                raise StackServiceError(f"the stack service exited with code {code} at start")
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
                health = _request(self.port, "GET", "/health", None, timeout=2.0)
                if health.get("ready"):
                    self.broker = str(health.get("broker", ""))
                    return
            time.sleep(0.2)  # cooperative under gevent
        self.kill()
        raise StackServiceError(f"the stack was not ready in {self.settings.start_timeout:g} s")

    def client(self) -> StackClient:
        return StackClient(self.port, self.settings.answer_timeout)

    def shutdown(self, timeout: float = 90.0) -> dict[str, Any] | None:
        """Ask for the run report, let the service stop its stack, wait for it to exit."""
        report = None
        if self.running():
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
                wait = self.settings.answer_timeout + 30.0  # in-flight messages settle first
                report = _request(self.port, "POST", "/shutdown", {}, timeout=wait)
        self._close_stdin()  # a service that missed /shutdown stops on EOF
        self._wait_exit(timeout)
        return report

    def kill(self) -> None:
        """Last resort (atexit): SIGTERM, a grace period for the stack's teardown, SIGKILL."""
        self._close_stdin()
        self._wait_exit(30.0)

    def _close_stdin(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def _wait_exit(self, timeout: float) -> None:
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            process.terminate()
        try:
            process.wait(30.0)
        except subprocess.TimeoutExpired:
            # The service is stuck: kill its whole session (it leads it), broker included.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10.0)


class StackClient:
    """One user's connection to the stack service (keep-alive HTTP on 127.0.0.1)."""

    def __init__(self, port: int, answer_timeout: float) -> None:
        self.port = port
        self.answer_timeout = answer_timeout
        self._connection: http.client.HTTPConnection | None = None

    def turn(self, phone: str, text: str, task: str) -> TurnResult:
        body = {"phone": phone, "text": text, "task": task, "timeout": self.answer_timeout}
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                HOST, self.port, timeout=self.answer_timeout + 15.0
            )
        try:
            data = _exchange(self._connection, "POST", "/turn", body)
        except BaseException:
            self.close()  # a greenlet killed mid-request must not reuse the connection
            raise
        return TurnResult(
            accepted=bool(data["accepted"]),
            outcome=str(data["outcome"]),
            latency_ms=float(data["latency_ms"]),
            reply_length=int(data["reply_length"]),
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _request(port: int, method: str, path: str, body: Any, *, timeout: float) -> dict[str, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        return _exchange(connection, method, path, body)
    finally:
        connection.close()


def _exchange(
    connection: http.client.HTTPConnection, method: str, path: str, body: Any
) -> dict[str, Any]:
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    raw = response.read()
    if response.status != 200:
        raise StackServiceError(f"{method} {path}: HTTP {response.status}: {raw[:200]!r}")
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise StackServiceError(f"{method} {path}: unexpected answer {raw[:200]!r}")
    return data


# -- the stack service (this file run as a script; no gevent here) --------------------------


class StackService:
    """The SimulationStack in one asyncio loop, driven over HTTP by the Locust process."""

    def __init__(self, settings: StackSettings) -> None:
        from harness.stack import SimulationStack, StackOptions

        self.settings = settings
        self.stack = SimulationStack(
            StackOptions(
                model_latency=settings.model_latency,
                model_failure_rate=settings.model_failure_rate,
                concurrent_tasks=settings.concurrent_tasks,
            )
        )
        self.ready = False
        self.stop = asyncio.Event()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/health", self.health),
            web.post("/turn", self.turn),
            web.post("/shutdown", self.shutdown),
        ]

    async def health(self, request: web.Request) -> web.Response:
        broker = self.stack.broker.describe() if self.ready else ""
        return web.json_response({"ready": self.ready, "broker": broker})

    async def turn(self, request: web.Request) -> web.Response:
        if not self.ready or self.stop.is_set():
            return web.json_response({"error": "the stack is not running"}, status=503)
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

    async def shutdown(self, request: web.Request) -> web.Response:
        from harness.report import build_report, render

        if not self.ready:
            self.stop.set()
            return web.json_response({"report": None, "text": "the stack never started"})
        stack = self.stack
        duration = time.monotonic() - stack.started_at
        # Messages in flight when Locust stopped its users still get their outcome counted.
        await stack.wait_all(time.monotonic() + self.settings.answer_timeout)
        await asyncio.sleep(0.5)  # a late duplicate still counts
        stack.collect()
        report = build_report(
            "locust",
            stack.ledger,
            duration=duration,
            depths=await stack.depths(),
            tools=await self._tools(),
            broker=stack.broker.describe(),
        )
        self.stop.set()
        return web.json_response({"report": report.to_json(), "text": render(report)})

    async def _tools(self) -> dict[str, float]:
        from harness.report import tools_from_metrics

        url = f"http://{HOST}:{self.stack.agent.health_port}/metrics"
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                return tools_from_metrics(await response.text())
        return {}

    async def run(self) -> int:
        """Start the stack, serve until told to stop (or ``max_seconds``), stop the stack."""
        # Starting may take a while (a broker boots); a stop request meanwhile cancels it.
        starting = asyncio.create_task(self.stack.__aenter__())
        stopping = asyncio.create_task(self.stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting  # SimulationStack cleans up what it had started
            return 1
        stopping.cancel()
        starting.result()  # a failed start raises here, after the stack cleaned up
        try:
            self.ready = True
            _say(f"ready: {self.stack.broker.describe()}")
            remaining = self.settings.max_seconds - (time.monotonic() - self.stack.started_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(remaining, 0.0))
            self.ready = False
            await asyncio.sleep(0.2)  # let the /shutdown answer go out
        finally:
            await self.stack.__aexit__(None, None, None)
        _say("stack stopped")
        return 0


def _say(text: str) -> None:
    print(f"[stack service] {text}", file=sys.stderr, flush=True)


async def _serve(port: int, settings: StackSettings) -> int:
    service = StackService(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, service.stop.set)

    class _StdinWatch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            service.stop.set()  # Locust is gone

    with contextlib.suppress(OSError, ValueError):
        await loop.connect_read_pipe(_StdinWatch, sys.stdin)
    app = web.Application()
    app.add_routes(service.routes())
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        return await service.run()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    defaults = StackSettings()
    parser = argparse.ArgumentParser(description="The Locust profile's stack service")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-latency", default=defaults.model_latency)
    parser.add_argument("--model-failure-rate", type=float, default=defaults.model_failure_rate)
    parser.add_argument("--concurrent-tasks", type=int, default=defaults.concurrent_tasks)
    parser.add_argument("--answer-timeout", type=float, default=defaults.answer_timeout)
    parser.add_argument("--start-timeout", type=float, default=defaults.start_timeout)
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds)
    args = parser.parse_args(argv)
    settings = StackSettings(
        model_latency=args.model_latency,
        model_failure_rate=args.model_failure_rate,
        concurrent_tasks=args.concurrent_tasks,
        answer_timeout=args.answer_timeout,
        start_timeout=args.start_timeout,
        max_seconds=args.max_seconds,
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop handles it
    return asyncio.run(_serve(args.port, settings))


if __name__ == "__main__":
    sys.exit(main())
