"""A RabbitMQ container through testcontainers, where a Docker engine answers."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from typing import Any

from agent_service.lifecycle import Lifecycle
from harness.broker.base import BrokerError, amqp_url
from harness.broker.readiness import wait_until_ready

IMAGE = "rabbitmq:3.13-management"


def docker_available() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=2)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


class ContainerBroker(Lifecycle):
    kind = "container"

    def __init__(self, image: str = IMAGE, *, ready_timeout: float = 60.0) -> None:
        self.image = image
        self.ready_timeout = ready_timeout
        self._container: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise BrokerError("the container is not started")
        return self._url

    def describe(self) -> str:
        return f"testcontainers RabbitMQ ({self.image})"

    async def _start(self, stack: AsyncExitStack) -> None:
        try:
            from testcontainers.rabbitmq import RabbitMqContainer
        except ImportError as exc:
            raise BrokerError("install the 'docker' extra for the container backend") from exc
        stack.push_async_callback(self._stop)
        try:
            # The constructor already talks to Docker: it raises when no engine answers.
            self._container = RabbitMqContainer(self.image)
            await asyncio.to_thread(self._container.start)
            host = self._container.get_container_host_ip()
            port = int(self._container.get_exposed_port(5672))
            self._url = amqp_url(host, port)
            await wait_until_ready(self._url, timeout=self.ready_timeout, log_tail=self._logs)
        except Exception as exc:
            if isinstance(exc, BrokerError):
                raise
            raise BrokerError(f"could not start a RabbitMQ container: {exc}") from exc

    def _logs(self) -> str:
        try:
            out, _err = self._container.get_logs()
            return str((out or b"").decode(errors="replace")[-4000:])
        except Exception:
            return "(no container log)"

    async def _stop(self) -> None:
        if self._container is not None:
            container, self._container = self._container, None
            # A container that never started has nothing to stop.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.stop)
