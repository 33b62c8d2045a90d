"""The ADK agent layer: the engine that answers requests, its models, tools and demo data.

Names are imported on first use: importing ADK costs about 0.65 s and 64 MB, and the
settings (which read ``agent.options``) must not pay that just to check a latency string.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_service.agent.business.records import BusinessStore
    from agent_service.agent.business.sqlite_store import SqliteBusinessStore, open_demo_database
    from agent_service.agent.engine import AgentEngine
    from agent_service.agent.model_config import build_model
    from agent_service.agent.options import (
        DEFAULT_MODEL,
        Latency,
        ModelConfigError,
        ScriptedModelOptions,
        parse_failure_rate,
        parse_latency,
        scripted_options,
    )
    from agent_service.agent.scripted_model import ScriptedModel

_HOMES = {
    "BusinessStore": "business.records",
    "SqliteBusinessStore": "business.sqlite_store",
    "open_demo_database": "business.sqlite_store",
    "AgentEngine": "engine",
    "DEFAULT_MODEL": "options",
    "build_model": "model_config",
    "Latency": "options",
    "ModelConfigError": "options",
    "ScriptedModelOptions": "options",
    "parse_failure_rate": "options",
    "parse_latency": "options",
    "scripted_options": "options",
    "ScriptedModel": "scripted_model",
}

__all__ = [
    "DEFAULT_MODEL",
    "AgentEngine",
    "BusinessStore",
    "Latency",
    "ModelConfigError",
    "ScriptedModel",
    "ScriptedModelOptions",
    "SqliteBusinessStore",
    "build_model",
    "open_demo_database",
    "parse_failure_rate",
    "parse_latency",
    "scripted_options",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
