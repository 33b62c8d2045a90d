"""A robust AMQP connection that knows several broker nodes (``RABBITMQ_URLS``).

aio-pika's ``RobustConnection`` reconnects, restores its channels and consumers, but only ever
to the one URL it was given: with the node dead, it would knock on that door until the node
came back. ``NodeListConnection`` gives each connection attempt the next node of the list, so
after its node dies the service lands on a live node of the cluster within one or two
``RABBITMQ_RECONNECT_INTERVAL``s, and its consumers resume there (a quorum queue is served
from whichever node a client reaches; the leader may be anywhere).

Written here because aio-pika has no such class (its issue #141 has been open since 2018, and
the round-robin pull request #680 was closed unmerged) and because the robust connection's
reconnect loop is private: it calls ``Connection.connect`` directly, which reads ``self.url``,
after clearing ``self.transport``. Clearing the transport is therefore the one observable
start of every attempt, and the place where the next URL is chosen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL


class NodeListConnection(aio_pika.RobustConnection):
    """A ``RobustConnection`` whose every (re)connect attempt goes to the next URL, round robin.

    Options in a URL's query string (``?heartbeat=...``) are read from the first URL only.
    """

    def __init__(
        self, urls: Sequence[str], loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
    ) -> None:
        if not urls:
            raise ValueError("no broker URL given")
        self._urls = [URL(u) for u in urls]
        self._attempts = 0
        self._rotating = False  # not while the base class initialises
        super().__init__(self._urls[0], loop=loop, **kwargs)
        self._rotating = True

    @property
    def urls(self) -> list[URL]:
        return list(self._urls)

    @property
    def transport(self) -> Any:
        return self._transport

    @transport.setter
    def transport(self, value: Any) -> None:
        # None starts an attempt (or closes): the next attempt goes to the next node.
        if value is None and self._rotating:
            self.url = self._urls[self._attempts % len(self._urls)]
            self._attempts += 1
        self._transport = value


async def connect_robust_any(
    urls: Sequence[str], *, timeout: float | None = None, **kwargs: Any
) -> AbstractRobustConnection:
    """``aio_pika.connect_robust`` over several nodes: the first that answers, and on every
    reconnect the next one. One URL behaves exactly like ``connect_robust``."""
    if len(urls) == 1:
        single: AbstractRobustConnection = await aio_pika.connect_robust(
            urls[0], timeout=timeout, **kwargs
        )
        return single
    # The first connect fails fast (a wrong address is an error, not a wait), so a node that
    # is down at start is skipped here: the list is tried from each node in turn.
    error: BaseException | None = None
    for start in range(len(urls)):
        connection = NodeListConnection([*urls[start:], *urls[:start]], **kwargs)
        try:
            await connection.connect(timeout=timeout)
        except CONNECTION_EXCEPTIONS as exc:
            error = exc
            await connection.close()
            continue
        return connection
    assert error is not None
    raise error
