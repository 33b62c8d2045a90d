"""Running the agent service for the harness: in this process, or as its own OS process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Self

import aiohttp

from agent_service.agent.options import Latency
from agent_service.contract.topology import Topology
from agent_service.settings import Settings, env_name, load_settings
from agent_service.settings_values import seconds_text
from harness.process_tools import free_port
from harness.waiting import WaitTimeout, wait_until

# What the harness never passes on from its own environment: a Gemini model is tried against
# the fake only, never with a real key or Vertex AI.
_MODEL_ENV = {
    "GOOGLE_API_KEY": "",
    "GEMINI_API_KEY": "",
    "GOOGLE_GENAI_USE_VERTEXAI": "false",
    "GOOGLE_GEMINI_BASE_URL": "",
}


def service_fields(amqp_url: str, topology: Topology, **overrides: Any) -> dict[str, Any]:
    """The service's settings, by field name and as typed values, that point it at
    ``topology`` on a broker; ``overrides`` (field names too) win."""
    fields: dict[str, Any] = {
        "rabbitmq_url": amqp_url,
        "agent_queue": topology.agent_queue,
        "webhook_queue": topology.webhook_queue,
        "dlx_agent": topology.dlx_agent,
        "dlx_webhook": topology.dlx_webhook,
        "agent_message_ttl": topology.agent_ttl_ms,
        "webhook_message_ttl": topology.webhook_ttl_ms,
        "max_retries": len(topology.agent_retry_delays_ms),
        "retry_delays_list": tuple(ms / 1000 for ms in topology.agent_retry_delays_ms),
        "webhook_retry_delays": tuple(ms / 1000 for ms in topology.webhook_retry_delays_ms),
        "topology_profile": topology.profile,
        "quorum_delivery_limit": topology.delivery_limit,
        "agent_model": "scripted",
        # The harness's brokers are test brokers (a compose service, a container): guest/guest
        # is what they have.
        "rabbitmq_allow_default_credentials": True,
        "health_port": -1,
        "log_level": "WARNING",
    }
    return {**fields, **{_field_of(k): v for k, v in overrides.items()}}


def _field_of(key: str) -> str:
    """A settings field by its name or by its variable's name in any case (``agent_state_dir``
    is ``state_dir``); any other key is kept as it is (an environment variable of its own)."""
    if key in Settings.model_fields:
        return key
    by_env = {env_name(name).lower(): name for name in Settings.model_fields}
    return by_env.get(key.lower(), key)


def service_settings(amqp_url: str, topology: Topology, **overrides: Any) -> Settings:
    """Settings for an in-process service, built from typed values (no text in between)."""
    values = service_fields(amqp_url, topology, **overrides)
    unknown = sorted(k for k in values if k not in Settings.model_fields)
    if unknown:
        raise TypeError(f"not settings of the agent service: {', '.join(unknown)}")
    return load_settings(**values)


def service_env(amqp_url: str, topology: Topology, **overrides: Any) -> dict[str, str]:
    """The same settings as environment variables, for the service as its own process. A key
    that is no settings field (``google_api_key``) becomes a variable of its own name."""
    values = service_fields(amqp_url, topology, **overrides)
    return {**_MODEL_ENV, **{env_name(k): _env_text(v) for k, v in values.items()}}


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return seconds_text(value)
    if isinstance(value, Latency):
        return value.spec()
    return str(value)


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

    async def __aexit__(self, *exc_info: object) -> None:
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

    async def metrics_text(self) -> str:
        """The process's /metrics page ('' when it does not answer)."""
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return await response.text()
        return ""

    async def in_flight(self) -> float:
        """Requests it is working on now (its ``agent_in_flight`` gauge; 0 if unknown)."""
        for line in (await self.metrics_text()).splitlines():
            if line.startswith("agent_in_flight "):
                return float(line.split()[1])
        return 0.0

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
