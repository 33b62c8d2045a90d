"""The Locust side of the stack service: start it, ask it for turns, stop it.

Locust skips this file (its name starts with ``_``). It uses only the standard library (and
the stdlib-only ``harness.load.protocol`` and ``harness.waiting``): ``subprocess``, ``time``
and ``http.client`` are cooperative under gevent's patches, so a user waiting for its answer
blocks only its own greenlet. The stack itself runs in ``harness.load.stack_service``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
from typing import Any

from harness.load.protocol import HOST, StackServiceError, StackSettings, TurnResult
from harness.process_tools import dies_with_parent, free_port
from harness.waiting import WaitTimeout, wait_until_blocking


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


class StackProcess:
    """The stack service as a child process of Locust."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.broker = ""
        # An agent-only stack (--stack agent): its broker URL and queue names.
        self.agent: dict[str, str] | None = None

    def launch(self) -> None:
        """Start the service; it boots the stack in the background (see ``wait_ready``)."""
        command = [sys.executable, "-m", "harness.load.stack_service", f"--port={self.port}"]
        self.process = subprocess.Popen(
            command + self.settings.argv(),
            stdin=subprocess.PIPE,  # never written: its closing tells the service Locust is gone
            start_new_session=True,  # Ctrl-C in a terminal reaches Locust only; Locust stops it
            preexec_fn=dies_with_parent(signal.SIGTERM),  # it still stops its broker
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _ready(self) -> bool:
        if not self.running():
            code = None if self.process is None else self.process.returncode
            raise StackServiceError(f"the stack service exited with code {code} at start")
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            health = _request(self.port, "GET", "/health", None, timeout=2.0)
            if health.get("ready"):
                self.broker = str(health.get("broker", ""))
                agent = health.get("agent")
                if isinstance(agent, dict):
                    self.agent = {str(k): str(v) for k, v in agent.items()}
                return True
        return False

    def wait_ready(self) -> None:
        try:
            wait_until_blocking(
                self._ready,
                timeout=self.settings.start_timeout,
                what="the stack ready",
                interval=0.2,
            )
        except WaitTimeout as exc:
            self.kill()
            raise StackServiceError(str(exc)) from None

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
