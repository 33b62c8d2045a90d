"""What the Locust process and its stack service share: the settings, the answers, the paths.

Standard library only: the Locust side (gevent-patched) imports this module, and so does the
stack service (plain asyncio). Each setting is written once, in ``OPTIONS``: the Locust command
line, the service's command line and ``StackSettings`` are all made from it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Any

HOST = "127.0.0.1"
OUTCOMES = ("reply", "fallback", "parked", "missing")


@dataclass(frozen=True)
class StackSettings:
    """What the stack service runs with; Locust's custom arguments fill it."""

    # "full": the whole SimulationStack; "agent": a broker and the agent service alone, for
    # Locust users that talk AMQP to ag_queue themselves (loadtests/agent_queue.py).
    stack: str = "full"
    model: str = "scripted"  # or "gemini-fake": the production model path
    model_latency: str = "uniform:0.05:0.3"
    model_failure_rate: float = 0.0
    concurrent_tasks: int = 10
    answer_timeout: float = 30.0  # seconds a user waits for its outcome before "missing"
    start_timeout: float = 120.0  # seconds the stack may take to start
    max_seconds: float = 3600.0  # the service stops its stack after this, whatever happens

    def argv(self) -> list[str]:
        """The stack service's command line for these settings."""
        return [f"--{f.name.replace('_', '-')}={getattr(self, f.name)}" for f in fields(self)]

    @classmethod
    def from_namespace(cls, options: Any, *, prefix: str = "") -> StackSettings:
        """Settings from parsed options named ``prefix + field`` (Locust's, or the service's)."""
        return cls(**{f.name: getattr(options, prefix + f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Option:
    """One setting on the Locust command line: its name there, its variable, its help."""

    field: str
    flag: str
    env_var: str
    help: str
    in_web_ui: bool = True


STACKS = ("full", "agent")

OPTIONS = (
    Option(
        "stack",
        "--stack",
        "LOCUST_STACK",
        "full: fake WhatsApp, Node simulator, broker, agent, fake Wasender; agent: a broker and"
        " the agent service alone (for AgentQueueUser)",
    ),
    Option(
        "model",
        "--model",
        "LOCUST_MODEL",
        "scripted, or gemini-fake: ADK's Gemini model over HTTP to a fake Gemini API",
    ),
    Option(
        "model_latency",
        "--model-latency",
        "LOCUST_MODEL_LATENCY",
        "model latency: SECONDS, uniform:LOW:HIGH or lognormal:MEAN:SIGMA",
    ),
    Option(
        "model_failure_rate",
        "--model-failure-rate",
        "LOCUST_MODEL_FAILURE_RATE",
        "share of model calls that fail",
    ),
    Option(
        "concurrent_tasks",
        "--concurrent-tasks",
        "LOCUST_CONCURRENT_TASKS",
        "the agent service's CONCURRENT_TASKS",
    ),
    Option(
        "answer_timeout",
        "--answer-timeout",
        "LOCUST_ANSWER_TIMEOUT",
        "seconds a contact waits before its message counts as missing",
    ),
    Option(
        "start_timeout",
        "--stack-start-timeout",
        "LOCUST_STACK_START_TIMEOUT",
        "seconds the stack may take to start",
        in_web_ui=False,
    ),
    Option(
        "max_seconds",
        "--stack-max-seconds",
        "LOCUST_STACK_MAX_SECONDS",
        "the stack stops after this long whatever happens",
        in_web_ui=False,
    ),
)


def _types() -> dict[str, type]:
    defaults = StackSettings()
    return {f.name: type(getattr(defaults, f.name)) for f in fields(StackSettings)}


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """The stack service's own command line: ``--FIELD`` for each setting."""
    defaults = StackSettings()
    for name, kind in _types().items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name)
        )


def add_locust_arguments(parser: Any) -> None:
    """Locust's command line (its parser takes ``env_var`` and ``include_in_web_ui``)."""
    defaults, types = StackSettings(), _types()
    for option in OPTIONS:
        parser.add_argument(
            option.flag,
            dest=f"stack_{option.field}",
            type=types[option.field],
            default=getattr(defaults, option.field),
            env_var=option.env_var,
            include_in_web_ui=option.in_web_ui,
            help=f"{option.help} (default %(default)s)",
        )


@dataclass(frozen=True)
class TurnResult:
    """What became of one message, as the stack service saw it."""

    accepted: bool
    outcome: str  # reply | fallback | parked | missing ("refused" when not accepted)
    latency_ms: float  # webhook post to outcome; the time waited when missing
    reply_length: int


class StackServiceError(RuntimeError):
    """The stack service could not be started or reached, or answered in an unexpected way."""
