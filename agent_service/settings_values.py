"""The typed values of the settings that the environment gives as text, and their parsers.

A setting read from the environment is text; inside the service (and in the harness, which
builds settings in process) it is a typed value: a tuple of seconds, a latency distribution.
Each type below reads either, so nothing has to be written as text and read back.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer
from pydantic_settings import NoDecode

from agent_service.agent.options import Latency, ModelConfigError, parse_latency

# RabbitMQ holds x-message-ttl in 32 bits of milliseconds: a wait queue cannot wait longer.
MAX_DELAY_SECONDS = (2**32 - 1) / 1000


def _seconds_list(value: Any) -> tuple[float, ...]:
    """``"30,60,120"`` or a sequence of numbers, each a delay a wait queue can hold."""
    if isinstance(value, str):
        try:
            values = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("expected seconds separated by commas, e.g. 30,60,120") from None
    elif isinstance(value, int | float):
        values = [float(value)]  # one delay, read as a JSON number by pydantic-settings
    else:
        values = [float(v) for v in value]
    if not values:
        # Found in a review: "" and "," crashed with an IndexError.
        raise ValueError("expected at least one delay in seconds, e.g. 30,60,120")
    for seconds in values:
        # A queue TTL is whole milliseconds from 1 to 2^32-1: 0.0001 s would be a TTL of 0.
        if not (math.isfinite(seconds) and 0.001 <= seconds <= MAX_DELAY_SECONDS):
            raise ValueError(
                f"every delay must be from 0.001 to {MAX_DELAY_SECONDS:g} seconds, not {seconds:g}"
            )
    return tuple(values)


def _latency(value: Any) -> Latency:
    if isinstance(value, Latency):
        return value
    try:
        return parse_latency(str(value))
    except ModelConfigError as exc:
        raise ValueError(str(exc)) from None


def seconds_text(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


# NoDecode: pydantic-settings would read the variable as JSON; it is a comma-separated list.
Seconds = Annotated[
    tuple[float, ...],
    NoDecode,
    BeforeValidator(_seconds_list),
    PlainSerializer(seconds_text, return_type=str),
]
LatencySpec = Annotated[
    Latency,
    NoDecode,
    BeforeValidator(_latency),
    PlainSerializer(lambda latency: latency.spec(), return_type=str),
]


def ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/wa-agent``, else ``~/.local/state/wa-agent``; the temp folder if there
    is no home (a container without one)."""
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    if base:
        return Path(base) / "wa-agent"
    home = Path.home() if os.environ.get("HOME") else None
    if home is not None:
        return home / ".local" / "state" / "wa-agent"
    return Path(tempfile.gettempdir()) / f"wa-agent-{os.getuid()}"
