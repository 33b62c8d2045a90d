"""What the pipeline needs of the agent: one typed answer per request, or an exception.

The ADK engine (``agent_service.agent.AgentEngine``) is the real implementation; unit tests of
the pipeline use a fake that returns answers or raises, with no model and no broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent_service.contract.messages import AgentRequest


@dataclass(frozen=True)
class AgentAnswer:
    """What the agent produced, as the reply reports it."""

    text: str
    tools_used: tuple[str, ...] = ()
    """Tool names in the order they were first called."""
    reasoning_steps: tuple[str, ...] = ()
    tokens_used: int = 0
    tool_failed: bool = False
    """A tool failed and the model answered anyway: a partial result."""
    model_calls: int = field(default=0, compare=False)
    truncated: bool = False
    """The model's token limit cut the answer: a partial result too."""

    @property
    def partial(self) -> bool:
        return self.tool_failed or self.truncated


class Engine(Protocol):
    @property
    def tool_names(self) -> frozenset[str]:
        """The tools the agent really has: metric labels come only from these."""
        ...

    async def run(self, request: AgentRequest) -> AgentAnswer:
        """Answer one request; raise on failure (the failure table classifies the error)."""
        ...
