"""Start, clean up if the start fails half way, stop once: the lifecycle every part shares.

    class Part(Lifecycle):
        async def _start(self, stack: AsyncExitStack) -> None:
            self.conn = await connect()
            stack.push_async_callback(self.conn.close)   # undone on stop, or if a later step fails

    async with Part() as part:
        ...

``_start`` registers how to undo each step on ``stack`` as it takes it: a start that raises
unwinds what it did, and ``stop`` unwinds all of it in reverse order. ``start`` and ``stop`` are
idempotent. The service, its health server, the fakes and the harness's parts all use it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Self


class Lifecycle:
    """Base of every part with a start and a stop; see the module docstring."""

    _lifecycle: AsyncExitStack | None = None

    @property
    def running(self) -> bool:
        return self._lifecycle is not None

    async def _start(self, stack: AsyncExitStack) -> None:
        """Take each step of starting, registering its undoing on ``stack``."""
        raise NotImplementedError

    async def _before_stop(self) -> None:
        """Runs first on stop, before the steps are undone (e.g. stop taking new work)."""

    async def start(self) -> None:
        if self._lifecycle is not None:
            return
        stack = AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._lifecycle = stack

    async def stop(self) -> None:
        stack, self._lifecycle = self._lifecycle, None
        if stack is None:
            return
        try:
            await self._before_stop()
        finally:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
