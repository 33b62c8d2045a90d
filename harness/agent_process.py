"""Running the agent service for the harness: in this process, or as its own OS process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from agent_service.contract.topology import Topology
from agent_service.settings import Settings, load_settings
from harness.broker.private_node import free_port
from harness.waiting import WaitTimeout, wait_until


def service_env(amqp_url: str, topology: Topology, **overrides: Any) -> dict[str, str]:
    """The environment variables that point the service at ``topology`` on a broker."""
    env = {
        "RABBITMQ_URL": amqp_url,
        "AGENT_QUEUE": topology.agent_queue,
        "WEBHOOK_QUEUE": topology.webhook_queue,
        "DLX_AGENT": topology.dlx_agent,
        "DLX_WEBHOOK": topology.dlx_webhook,
        "MESSAGE_TTL": str(topology.agent_ttl_ms),
        "WEBHOOK_MESSAGE_TTL": str(topology.webhook_ttl_ms),
        "AGENT_MODEL": "scripted",
        # The harness's brokers are test brokers (a compose service, a container): guest/guest
        # is what they have.
        "RABBITMQ_ALLOW_DEFAULT_CREDENTIALS": "true",
        # A Gemini model is tried against the fake only: never a real key or Vertex AI.
        "GOOGLE_API_KEY": "",
        "GEMINI_API_KEY": "",
        "GOOGLE_GENAI_USE_VERTEXAI": "false",
        "GOOGLE_GEMINI_BASE_URL": "",
        "HEALTH_PORT": "-1",
        "LOG_LEVEL": "WARNING",
    }
    env["MAX_RETRIES"] = str(len(topology.agent_retry_delays_ms))
    env["RETRY_DELAYS"] = _seconds(topology.agent_retry_delays_ms)
    env["WEBHOOK_RETRY_DELAYS"] = _seconds(topology.webhook_retry_delays_ms)
    env |= {key.upper(): str(value) for key, value in overrides.items()}
    return env


def _seconds(delays_ms: tuple[int, ...]) -> str:
    return ",".join(str(ms / 1000) for ms in delays_ms)


def service_settings(amqp_url: str, topology: Topology, **overrides: Any) -> Settings:
    """Settings for an in-process service; keyword values win over the environment."""
    return load_settings(**service_env(amqp_url, topology, **overrides))


class AgentServiceProcess:
    """``python -m agent_service`` as a child process, ready when /readyz answers 200."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        *,
        log_path: Path | None = None,
        state_dir: Path | None = None,
        ready_timeout: float = 30.0,
        **overrides: Any,
    ) -> None:
        self.health_port = free_port()
        # The state a restart must find again (delivery counts) lives here: the same folder for
        # every start of this object, never the user's own ~/.local/state.
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="harness-agent-state-"))
        self.env = {
            **os.environ,
            **service_env(amqp_url, topology, **overrides),
            "HEALTH_PORT": str(self.health_port),
            "AGENT_STATE_DIR": str(self.state_dir),
        }
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.process: asyncio.subprocess.Process | None = None
        self._log: Any = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.kill()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.terminate()

    async def start(self, *, wait_ready: bool = True) -> None:
        """Start the process; with ``wait_ready``, return once /readyz answers 200."""
        self._log = self.log_path.open("ab") if self.log_path else asyncio.subprocess.DEVNULL
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent_service",
            env=self.env,
            stdout=self._log,
            stderr=self._log,
        )
        if wait_ready:
            await self._wait_ready()

    async def wait_exit(self, timeout: float) -> int:
        """The exit code once the process ends by itself (negative: killed by that signal)."""
        if self.process is None:
            raise RuntimeError("the agent service was never started")
        code = await asyncio.wait_for(self.process.wait(), timeout)
        self._close_log()
        return code

    async def _wait_ready(self) -> None:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                if self.process is None or self.process.returncode is not None:
                    raise RuntimeError(f"agent service exited at start: {self._log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                        return resp.status == 200
                return False

            try:
                await wait_until(ready, timeout=self.ready_timeout, what="/readyz", interval=0.1)
            except WaitTimeout as exc:
                raise RuntimeError(f"agent service not ready: {exc}: {self._log_tail()}") from None

    def _log_tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        return "(no log)"

    async def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait for the graceful shutdown (SIGKILL after ``timeout``)."""
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()
            return None
        finally:
            self._close_log()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log not in (None, asyncio.subprocess.DEVNULL):
            self._log.close()
        self._log = None
