"""Waiting for a condition: the one waiting loop of the harness, its fakes and its tests.

    await wait_until(lambda: depth_is_zero(), timeout=10, what="ag_queue drained",
                     state=lambda: f"depth {depth}")
    await wait_until(lambda: len(sends) >= 2, timeout=5, what="2 sends", changed=event)

Things outside this process (a broker's queue depth, a child's health endpoint) cannot wake
us, so they are polled every ``interval``; things in this process that set an
``asyncio.Event`` when they change (a fake's request log, a reply collector) pass it as
``changed`` and are checked only when it fires. On timeout the error says what was awaited
and, when ``state`` is given, what was seen last, so a failing test explains itself.
``wait_until_blocking`` is the same loop for plain threads (the Locust side).

A leaf module on purpose (standard library only): the fakes and the Locust process import it.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def _timed_out(timeout: float, what: str, seen: object | None) -> WaitTimeout:
    last = "" if seen is None else f"; last seen: {seen}"
    return WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{last}")


async def wait_until(
    condition: Condition,
    *,
    timeout: float,
    what: str,
    state: State | None = None,
    interval: float = 0.05,
    changed: asyncio.Event | None = None,
) -> None:
    """Return once ``condition()`` (sync or async) is true; raise WaitTimeout after
    ``timeout`` seconds. Errors raised by the condition propagate at once."""
    deadline = time.monotonic() + timeout
    while True:
        if changed is not None:
            # Cleared before the check: a change after it sets the event again, so none is
            # missed between the check and the wait.
            changed.clear()
        if await _value(condition):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(timeout, what, await _value(state) if state else None)
        if changed is None:
            await asyncio.sleep(min(interval, remaining))
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)


def wait_until_blocking(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    state: Callable[[], object] | None = None,
    interval: float = 0.1,
) -> None:
    """``wait_until`` for code without an event loop: the same contract, blocking sleeps."""
    deadline = time.monotonic() + timeout
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(timeout, what, state() if state else None)
        time.sleep(min(interval, remaining))
