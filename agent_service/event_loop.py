"""The event loop the service runs on: uvloop by default, asyncio's own on request.

uvloop (libuv under asyncio's interface) does the service's part of each request (socket
reads and writes to the broker, callbacks, timers) in C: `harness bench --only overhead` shows
what it saves beside the engine alone. `EVENT_LOOP=asyncio` falls back to the standard loop,
for a platform uvloop does not support or to rule it out when hunting a bug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
EventLoopName = Literal["uvloop", "asyncio"]


def loop_factory(name: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], name: EventLoopName = "uvloop") -> T:
    """``asyncio.run`` on the named loop."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)
