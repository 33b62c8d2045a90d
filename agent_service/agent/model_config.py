"""Choosing the model from configuration.

``build_model`` checks at start-up, without any network call, that a Gemini model has
credentials, so a misconfigured service fails at once instead of on its first message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from google.adk.models import BaseLlm

from agent_service.agent.options import DEFAULT_MODEL, ModelConfigError, ScriptedModelOptions
from agent_service.agent.scripted_model import SCRIPTED_MODEL_NAME, ScriptedModel

_API_KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
_TRUE = frozenset({"1", "true", "yes", "on"})


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
