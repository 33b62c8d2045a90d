"""Choosing the model from configuration, and parsing the scripted model's options from strings.

``build_model`` checks at start-up, without any network call, that a Gemini model has
credentials, so a misconfigured service fails at once instead of on its first message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from google.adk.models import BaseLlm

from agent_service.agent.scripted_model import (
    SCRIPTED_MODEL_NAME,
    Latency,
    ScriptedModel,
    ScriptedModelOptions,
)

DEFAULT_MODEL = "gemini-2.5-flash"
_API_KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
_TRUE = frozenset({"1", "true", "yes", "on"})


class ModelConfigError(ValueError):
    """The model configuration cannot work; the message says what to set."""


def build_model(
    spec: str,
    options: ScriptedModelOptions | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> BaseLlm | str:
    """The model for ``Agent(model=...)``: a ``ScriptedModel``, or a Gemini model name.

    ``options`` only applies to the scripted model; ``environ`` defaults to ``os.environ``.
    """
    name = spec.strip()
    if name.lower() == SCRIPTED_MODEL_NAME:
        return ScriptedModel(options=options or ScriptedModelOptions())
    if name.lower().startswith("gemini"):
        check_gemini_credentials(name, os.environ if environ is None else environ)
        return name
    raise ModelConfigError(
        f"unknown model {spec!r}: use {SCRIPTED_MODEL_NAME!r} or a Gemini model name "
        f"such as {DEFAULT_MODEL!r}"
    )


def check_gemini_credentials(model: str, environ: Mapping[str, str]) -> None:
    """Raise ModelConfigError unless an API key or a Vertex AI project is configured."""
    if any(environ.get(var, "").strip() for var in _API_KEY_VARS):
        return
    vertex = environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in _TRUE
    if vertex and environ.get("GOOGLE_CLOUD_PROJECT", "").strip():
        return
    raise ModelConfigError(
        f"model {model!r} needs credentials: set GOOGLE_API_KEY (or GEMINI_API_KEY), or "
        "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION; "
        f"or use AGENT_MODEL={SCRIPTED_MODEL_NAME} for the offline scripted model"
    )


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
