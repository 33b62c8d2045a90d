"""What happened when during a run: fault spans and queue depths, on the ledger's clock.

The ledger records when each message was sent and answered (``time.monotonic``); a timeline
adds, on the same clock, when each fault began and ended and how deep the queues were, so
the HTML report can draw them on one time axis.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class FaultSpan:
    """A fault from ``began`` until ``ended`` (None: it lasted to the end of the run)."""

    label: str
    began: float
    ended: float | None = None
    # A broker node lost at ``began``: the report measures the gap in replies around it.
    failover: bool = False
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
        self,
        label: str,
        *,
        lasts: float | None = None,
        failover: bool = False,
        measure_recovery: bool = False,
    ) -> FaultSpan:
        """A fault that begins now; it ends by ``end()``, or after ``lasts`` seconds when its
        end is a timer in the fake (an injected outage of fixed length). ``failover``: it takes
        a broker node away, and the report gives the failover time around it. With
        ``measure_recovery`` the report says how long the first reply after its end took."""
        now = time.monotonic()
        span = FaultSpan(
            label, now, None if lasts is None else now + lasts, failover, measure_recovery
        )
        self.faults.append(span)
        return span

    def failover_seconds(self, reply_times: list[float], window: float = 60.0) -> list[float]:
        """For each node lost: the longest pause in replies that ends within ``window`` seconds
        after the loss (including the pause the loss fell into), i.e. from the last reply
        before the stall to the first after it. Replies already under way when the node died
        still leave at once, so the first reply after the loss alone would say 'no failover at
        all'. A loss with no reply before or after it is left out."""
        times = sorted(reply_times)
        gaps = []
        for span in self.faults:
            if not span.failover:
                continue
            pairs = [
                (a, b)
                for a, b in itertools.pairwise(times)
                if span.began < b <= span.began + window
            ]
            if pairs and times[0] <= span.began:
                gaps.append(round(max(b - a for a, b in pairs), 3))
        return gaps

    async def sample_depths(
        self, read: Callable[[], Awaitable[dict[str, int]]], interval: float = 0.5
    ) -> None:
        """Record ``read()`` every ``interval`` seconds until cancelled. A failed read (the
        broker restarting) is a gap in the chart, not an error of the run."""
        while True:
            with contextlib.suppress(Exception):
                self.depths.append(DepthSample(time.monotonic(), await read()))
            await asyncio.sleep(interval)
