"""The scripted model's options, parsed from the settings' strings: no ADK import here, so
the settings can check SCRIPTED_LATENCY at start-up without loading the agent framework."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

# The production model (AGENT_MODEL's default), named once.
DEFAULT_MODEL = "gemini-2.5-flash"


class ModelConfigError(ValueError):
    """The model configuration cannot work; the message says what to set."""


@dataclass(frozen=True)
class Latency:
    """How long each model call takes: fixed, uniform or lognormal, in seconds.

    ``mean`` is the average; ``spread`` is the half-width for uniform and the sigma of the
    underlying normal distribution for lognormal (unused for fixed).
    """

    kind: Literal["fixed", "uniform", "lognormal"] = "fixed"
    mean: float = 0.0
    spread: float = 0.0

    def __post_init__(self) -> None:
        if self.mean < 0 or self.spread < 0 or not math.isfinite(self.mean + self.spread):
            raise ValueError("latency mean and spread must be finite and >= 0")
        if self.kind == "uniform" and self.spread > self.mean:
            raise ValueError("uniform latency would go below zero (spread > mean)")

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        return cls("fixed", seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        if high < low:
            raise ValueError("uniform latency needs low <= high")
        return cls("uniform", (low + high) / 2, (high - low) / 2)

    @classmethod
    def lognormal(cls, mean: float, sigma: float) -> Latency:
        return cls("lognormal", mean, sigma)

    def spec(self) -> str:
        """The text ``parse_latency`` reads back into this latency (SCRIPTED_LATENCY)."""
        if self.kind == "uniform":
            return f"uniform:{self.mean - self.spread:g}:{self.mean + self.spread:g}"
        if self.kind == "lognormal":
            return f"lognormal:{self.mean:g}:{self.spread:g}"
        return f"{self.mean:g}"

    def sample(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.mean - self.spread, self.mean + self.spread)
        if self.kind == "lognormal" and self.mean > 0:
            # Shift mu so that the distribution's mean, not its median, is ``mean``.
            mu = math.log(self.mean) - self.spread**2 / 2
            return rng.lognormvariate(mu, self.spread)
        return self.mean


@dataclass(frozen=True)
class ScriptedModelOptions:
    latency: Latency = field(default_factory=Latency)
    failure_rate: float = 0.0
    """Share of calls, from 0 to 1, that raise TransientAgentError (code MODEL_UNAVAILABLE)."""
    seed: int | None = None
    """Seeds the latency and failure draws, for reproducible runs."""
    markers: bool = True
    """Obey the fault markers in user text."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")


def parse_latency(spec: str) -> Latency:
    """``"0"`` or ``"1.5"`` (fixed seconds), ``"uniform:LOW:HIGH"``, ``"lognormal:MEAN:SIGMA"``."""
    text = spec.strip().lower()
    kind, _, rest = text.partition(":") if ":" in text else ("fixed", "", text)
    numbers = [_number(part, spec) for part in rest.split(":")] if rest else []
    try:
        if kind == "fixed" and len(numbers) == 1:
            return Latency.fixed(numbers[0])
        if kind == "uniform" and len(numbers) == 2:
            return Latency.uniform(numbers[0], numbers[1])
        if kind == "lognormal" and len(numbers) == 2:
            return Latency.lognormal(numbers[0], numbers[1])
    except ValueError as exc:
        raise ModelConfigError(f"bad latency {spec!r}: {exc}") from exc
    raise ModelConfigError(
        f"bad latency {spec!r}: use SECONDS, uniform:LOW:HIGH or lognormal:MEAN:SIGMA"
    )


def parse_failure_rate(value: str) -> float:
    """A share of failing calls, from ``"0"`` to ``"1"``."""
    rate = _number(value, value)
    if not 0.0 <= rate <= 1.0:
        raise ModelConfigError(f"bad failure rate {value!r}: must be between 0 and 1")
    return rate


def scripted_options(
    latency: str = "0", failure_rate: str = "0", seed: int | None = None
) -> ScriptedModelOptions:
    """Options from the SCRIPTED_LATENCY and SCRIPTED_FAILURE_RATE settings."""
    return ScriptedModelOptions(
        latency=parse_latency(latency), failure_rate=parse_failure_rate(failure_rate), seed=seed
    )


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ModelConfigError(f"bad number {text!r} in {spec!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ModelConfigError(f"bad number {text!r} in {spec!r}: must be finite and >= 0")
    return value
