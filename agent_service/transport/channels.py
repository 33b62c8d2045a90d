"""The one publishing channel of a client, opened again when it can no longer be trusted.

A robust channel that failed to come back after a reconnect stays closed for good. A channel
whose publish was nacked may be as bad: RabbitMQ 3.10 gives a channel its quorum-queue client
once, from the queue record, which can still name a leader that just died, and that channel's
publishes to the queue are then nacked for good (seen after a cluster node's kill: every reply
nacked for 60 s on the reconnected channel, while a new channel published at once). Both get a
fresh channel at the next publish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiormq
from aio_pika.abc import AbstractChannel

OpenChannel = Callable[[], Awaitable[AbstractChannel]]


class PublishChannel:
    def __init__(self, open_channel: OpenChannel, *, close_timeout: float = 15.0) -> None:
        self._open_channel = open_channel
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._close_timeout = close_timeout

    @property
    def usable(self) -> bool:
        """Open, or dropped after a nack (the next ``get`` opens a fresh one at once); not
        while a robust channel is closed waiting for its connection to come back."""
        return self._channel is None or not self._channel.is_closed

    async def get(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._open_channel()
            return self._channel

    @contextlib.asynccontextmanager
    async def using(self) -> AsyncIterator[AbstractChannel]:
        """The channel for one publish; a nack raised inside drops it (the exception goes on).
        A returned message (``PublishError``) is no nack: the channel is fine."""
        channel = await self.get()
        try:
            yield channel
        except aiormq.exceptions.PublishError:
            raise
        except aiormq.exceptions.DeliveryError:
            await self._drop(channel)
            raise

    async def _drop(self, channel: AbstractChannel) -> None:
        # The next ``get`` opens a fresh one; this one is closed, bounded.
        async with self._lock:
            if self._channel is channel:
                self._channel = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(channel.close(), self._close_timeout)
