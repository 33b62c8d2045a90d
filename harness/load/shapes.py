"""Load shapes as pure arithmetic: how many users at second ``t`` of a run (no Locust here).

loadtests/shapes.py hands one of these to Locust's ``LoadTestShape`` by LOCUST_SHAPE. Each
profile is scaled by its total length and peak user count (LOCUST_SHAPE_SECONDS,
LOCUST_SHAPE_USERS), so a test runs the same shape in seconds that a real run takes minutes for.
With OpenLoopContacts each user is an arrival stream, so users are the arrival rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PROFILES = ("step", "spike", "soak")
DEFAULT_SECONDS = {"step": 300.0, "spike": 180.0, "soak": 3600.0}


@dataclass(frozen=True)
class Stage:
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Shape:
    """``profile`` over ``seconds`` up to ``peak`` users."""

    profile: str
    seconds: float
    peak: int
    steps: int = 4  # step: the peak reached in this many equal steps

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(
                f"LOCUST_SHAPE must be one of {', '.join(PROFILES)}, not {self.profile!r}"
            )
        if self.seconds <= 0 or self.peak < 1:
            raise ValueError(
                f"a shape needs seconds > 0 and peak >= 1 (got {self.seconds}, {self.peak})"
            )

    def at(self, t: float) -> Stage | None:
        """The users (and how fast to get there) at second ``t``; None: the run is over."""
        if t >= self.seconds or t < 0:
            return None
        fraction = t / self.seconds
        fast = float(self.peak)  # change in about a second
        if self.profile == "step":
            step = min(self.steps, math.floor(fraction * self.steps) + 1)
            return Stage(max(1, round(self.peak * step / self.steps)), fast)
        base = max(1, round(self.peak / 5))
        if self.profile == "spike":
            # Base load, the peak in the middle fifth of the run, base load again: does the
            # backlog drain after a spike, and how fast?
            spiking = 0.4 <= fraction < 0.6
            return Stage(self.peak if spiking else base, fast)
        # soak: ramp over the first tenth, then hold the peak to the end.
        ramp = 0.1 * self.seconds
        return Stage(self.peak, self.peak / ramp if ramp else fast)


def shape_from_env(environ: dict[str, str]) -> Shape | None:
    profile = environ.get("LOCUST_SHAPE", "").strip()
    if not profile:
        return None
    seconds = float(environ.get("LOCUST_SHAPE_SECONDS", DEFAULT_SECONDS.get(profile, 300.0)))
    return Shape(profile, seconds, int(environ.get("LOCUST_SHAPE_USERS", "10")))
