"""Model-based chaos over the whole system (a Hypothesis state machine) and its command."""

from harness.chaos.invariants import final_problems, settled_problems
from harness.chaos.model import ChaosWorld, broker_nodes, chaos_machine

__all__ = ["ChaosWorld", "broker_nodes", "chaos_machine", "final_problems", "settled_problems"]
