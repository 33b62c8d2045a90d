"""Readiness by AMQP handshake, with a deadline and the broker's log in the error."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiormq

from harness.broker.base import BrokerError, redact
from harness.waiting import WaitTimeout, wait_until


async def handshake(
    url: str, timeout: float = 2.0, ssl_context: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """One full AMQP handshake; returns the server properties (cluster_name, version...).
    An ``amqps://`` URL is a TLS handshake first, with ``ssl_context`` if given."""
    # A bare TCP probe first: aiormq logs every refused connect as an error, which would bury
    # the node's own log under noise while it boots.
    await _tcp_probe(url, timeout)
    connection = await asyncio.wait_for(aiormq.connect(url, context=ssl_context), timeout)
    try:
        return dict(connection.server_properties or {})
    finally:
        await connection.close()


async def wait_until_ready(
    url: str,
    *,
    timeout: float,
    log_tail: Callable[[], str] = lambda: "",
    alive: Callable[[], bool] = lambda: True,
    expect_cluster_name: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """Retry the handshake until it succeeds or ``timeout`` passes.

    ``alive`` lets a node we started fail fast when its process died; ``expect_cluster_name``
    rejects another broker that happens to answer on the port.
    """
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}

    async def answered() -> bool:
        if not alive():
            raise BrokerError(f"broker process exited before it was ready\n{log_tail()}")
        try:
            left = deadline - time.monotonic()
            seen["props"] = await handshake(url, min(2.0, max(0.1, left)), ssl_context)
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            seen["error"] = exc
            return False
        return True

    try:
        await wait_until(
            answered,
            timeout=timeout,
            what=f"an AMQP handshake with {redact(url)}",
            state=lambda: repr(seen.get("error")),
            interval=0.2,
        )
    except WaitTimeout as exc:
        raise BrokerError(f"{exc}\n{log_tail()}") from None
    props: dict[str, Any] = seen["props"]
    name = _text(props.get("cluster_name"))
    if expect_cluster_name is not None and name != expect_cluster_name:
        raise BrokerError(
            f"{redact(url)} is answered by another broker (cluster_name {name!r}, "
            f"expected {expect_cluster_name!r})"
        )
    return props


async def _tcp_probe(url: str, timeout: float) -> None:
    parsed = urlsplit(url)
    default_port = 5671 if parsed.scheme == "amqps" else 5672
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(parsed.hostname or "127.0.0.1", parsed.port or default_port),
        timeout,
    )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)
