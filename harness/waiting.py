"""Waiting for a condition: the one polling loop of the harness.

    await wait_until(lambda: depth_is_zero(), timeout=10, what="ag_queue drained",
                     state=lambda: f"depth {depth}")

Things outside this process (a broker's queue depth, a child's health endpoint, a fake's
request log) cannot wake us with an event, so they are polled. On timeout the error says what
was awaited and, when ``state`` is given, what was seen last, so a failing test explains itself.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool | Awaitable[bool]]
State = Callable[[], object | Awaitable[object]]


class WaitTimeout(TimeoutError):
    """``wait_until`` gave up; the message names the condition and the last state seen."""


async def _value(check: Callable[[], object | Awaitable[object]]) -> object:
    result = check()
    return await result if inspect.isawaitable(result) else result


async def wait_until(
    condition: Condition,
    *,
    timeout: float,
    what: str,
    state: State | None = None,
    interval: float = 0.05,
) -> None:
    """Return once ``condition()`` (sync or async) is true; raise WaitTimeout after
    ``timeout`` seconds. Errors raised by the condition propagate at once."""
    deadline = time.monotonic() + timeout
    while True:
        if await _value(condition):
            return
        if time.monotonic() >= deadline:
            seen = f"; last seen: {await _value(state)}" if state is not None else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{seen}")
        await asyncio.sleep(interval)
