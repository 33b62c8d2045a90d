"""``harness conformance``: the Node side's behaviours from the spec as named checks.

Run against our Node simulator, a deliberately broken variant of it, or the Node team's service
by URL (docs/conformance.md).
"""

from harness.conformance.checks import CHECKS, Check
from harness.conformance.rig import PartyOptions, parties, simulator
from harness.conformance.runner import CheckResult, render, run_check, run_checks, select
from harness.conformance.target import CheckFailed, CheckSkipped, Target
from harness.conformance.variants import Variant, variants

__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "PartyOptions",
    "Target",
    "Variant",
    "parties",
    "render",
    "run_check",
    "run_checks",
    "select",
    "simulator",
    "variants",
]
