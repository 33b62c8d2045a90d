"""The ADK agent layer: the engine that answers requests, its models, tools and demo data."""

from agent_service.agent.database import BusinessDatabase, open_demo_database
from agent_service.agent.engine import AgentEngine, AgentResult
from agent_service.agent.model_config import (
    DEFAULT_MODEL,
    ModelConfigError,
    build_model,
    parse_failure_rate,
    parse_latency,
    scripted_options,
)
from agent_service.agent.scripted_model import Latency, ScriptedModel, ScriptedModelOptions

__all__ = [
    "DEFAULT_MODEL",
    "AgentEngine",
    "AgentResult",
    "BusinessDatabase",
    "Latency",
    "ModelConfigError",
    "ScriptedModel",
    "ScriptedModelOptions",
    "build_model",
    "open_demo_database",
    "parse_failure_rate",
    "parse_latency",
    "scripted_options",
]
