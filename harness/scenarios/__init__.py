"""Scenarios: one library used by ``harness simulate``, pytest and Locust.

A scenario is a conversation mix (several contacts, all four task types, history building up)
plus, for the fault scenarios, something that goes wrong while it runs.
"""

from harness.scenarios.conversation import PlannedMessage, conversation_plan, run_conversations
from harness.scenarios.faults import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "PlannedMessage", "Scenario", "conversation_plan", "run_conversations"]
