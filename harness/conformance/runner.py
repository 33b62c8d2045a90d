"""Running the checks, and their results as a table, JSON and JUnit XML."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from harness.conformance.checks import CHECKS, Check
from harness.conformance.target import CheckFailed, CheckSkipped, Target

Outcome = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    outcome: Outcome
    evidence: str
    seconds: float


def select(names: Iterable[str] | None) -> list[Check]:
    """The checks named (all when None); an unknown name is a ValueError listing the known."""
    if not names:
        return list(CHECKS)
    known = {c.name: c for c in CHECKS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


async def run_check(target: Target, check: Check) -> CheckResult:
    began = time.monotonic()
    outcome: Outcome = "pass"
    try:
        # Bounded as a whole: a check waits at most ``patience`` per step, a few steps each.
        async with asyncio.timeout(target.patience * 4 + 30):
            evidence = await check.run(target)
    except CheckFailed as exc:
        outcome, evidence = "fail", str(exc)
    except CheckSkipped as exc:
        outcome, evidence = "skip", str(exc)
    except Exception as exc:  # an unexpected error is a failure with its evidence, not a crash
        outcome, evidence = "fail", f"{type(exc).__name__}: {exc}"
    return CheckResult(check.name, check.description, outcome, evidence, time.monotonic() - began)


async def run_checks(target: Target, checks: Iterable[Check]) -> list[CheckResult]:
    return [await run_check(target, check) for check in checks]


def failures(results: Iterable[CheckResult]) -> int:
    return sum(r.outcome == "fail" for r in results)


def render(results: list[CheckResult], title: str) -> str:
    width = max(len(r.name) for r in results)
    lines = [title, ""]
    for r in results:
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[r.outcome]
        lines.append(f"  {mark}  {r.name:<{width}}  {r.seconds:5.1f} s  {r.evidence}")
    passed = sum(r.outcome == "pass" for r in results)
    lines += ["", f"{passed} passed, {failures(results)} failed, "
              f"{sum(r.outcome == 'skip' for r in results)} skipped"]  # fmt: skip
    return "\n".join(lines)


def to_json(results: list[CheckResult], target: str) -> str:
    return json.dumps(
        {"target": target, "failures": failures(results), "checks": [asdict(r) for r in results]},
        indent=2,
    )


def to_junit(results: list[CheckResult], target: str) -> str:
    suite = ET.Element(
        "testsuite",
        name="harness conformance",
        tests=str(len(results)),
        failures=str(failures(results)),
        skipped=str(sum(r.outcome == "skip" for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="target", value=target)
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname="conformance", name=r.name, time=f"{r.seconds:.3f}"
        )
        if r.outcome == "fail":
            ET.SubElement(case, "failure", message=r.evidence[:500]).text = r.evidence
        elif r.outcome == "skip":
            ET.SubElement(case, "skipped", message=r.evidence)
        else:
            ET.SubElement(case, "system-out").text = r.evidence
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
