"""One interface for every way the harness gets a real RabbitMQ broker."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, runtime_checkable
from urllib.parse import quote


class BrokerError(RuntimeError):
    """The broker could not be had (not found, failed to boot, not ready in time)."""


class NotControllable(BrokerError):
    """Process control was asked of a broker the harness did not start."""


@runtime_checkable
class Broker(Protocol):
    """A RabbitMQ broker for the harness. Entering makes it ready; leaving releases it.

    Only brokers the harness started are ever stopped, killed or changed.
    """

    kind: str

    @property
    def url(self) -> str:
        """The AMQP URL of the default vhost."""
        ...

    def describe(self) -> str: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class ControllableBroker(Broker, Protocol):
    """A broker whose process the harness owns: it may stop, start, restart and kill it."""

    async def stop(self) -> None: ...

    async def start(self) -> None: ...

    async def restart(self) -> None: ...

    async def kill(self) -> None: ...


def broker_urls(broker: Broker) -> list[str]:
    """Every node's URL of a cluster (``urls``), or the one URL of a single broker."""
    urls = getattr(broker, "urls", None)
    return list(urls) if urls else [broker.url]


def amqp_url(
    host: str,
    port: int,
    user: str = "guest",
    password: str = "guest",
    vhost: str = "/",
    *,
    scheme: str = "amqp",
) -> str:
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{credentials}@{host}:{port}/{quote(vhost, safe='')}"


def redact(url: str) -> str:
    """A URL safe to print: the password is replaced."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
