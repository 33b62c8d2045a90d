"""What happened when during a run: fault spans and queue depths, on the ledger's clock.

The ledger records when each message was sent and answered (``time.monotonic``); a timeline
adds, on the same clock, when each fault began and ended and how deep the queues were, so
the HTML report can draw them on one time axis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class FaultSpan:
    """A fault from ``began`` until ``ended`` (None: it lasted to the end of the run)."""

    label: str
    began: float
    ended: float | None = None
    # The report gives the time from its end to the next reply (a network heal, say).
    measure_recovery: bool = False

    def end(self) -> None:
        if self.ended is None:
            self.ended = time.monotonic()


@dataclass(frozen=True)
class DepthSample:
    at: float
    depths: dict[str, int]


@dataclass
class Timeline:
    """Fault spans and depth samples of one run; ``began`` is the run's time zero."""

    began: float = field(default_factory=time.monotonic)
    faults: list[FaultSpan] = field(default_factory=list)
    depths: list[DepthSample] = field(default_factory=list)

    def fault(
        self, label: str, *, lasts: float | None = None, measure_recovery: bool = False
    ) -> FaultSpan:
        """A fault that begins now; it ends by ``end()``, or after ``lasts`` seconds when its
        end is a timer in the fake (an injected outage of fixed length). With
        ``measure_recovery`` the report says how long the first reply after its end took."""
        now = time.monotonic()
        span = FaultSpan(label, now, None if lasts is None else now + lasts, measure_recovery)
        self.faults.append(span)
        return span

    async def sample_depths(
        self, read: Callable[[], Awaitable[dict[str, int]]], interval: float = 0.5
    ) -> None:
        """Record ``read()`` every ``interval`` seconds until cancelled. A failed read (the
        broker restarting) is a gap in the chart, not an error of the run."""
        while True:
            with contextlib.suppress(Exception):
                self.depths.append(DepthSample(time.monotonic(), await read()))
            await asyncio.sleep(interval)
