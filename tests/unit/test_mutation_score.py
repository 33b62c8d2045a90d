"""The per-module mutation score read from mutmut's verdicts (what `make mutation` gates on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.mutation_score import (
    equivalent_names,
    explained_names,
    main,
    problems,
    read_scores,
    render,
    score_module,
)

pytestmark = pytest.mark.unit

PIPE = "agent_service.pipeline.failures"


def write_meta(root: Path, relative: str, codes: dict[str, int | None]) -> None:
    meta = root / f"{relative}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}))


def test_kills_timeouts_survivors_and_untested_mutants_are_told_apart() -> None:
    codes = {f"{PIPE}.x_a__mutmut_{i}": code for i, code in enumerate([1, 3, 36, 0, 33, 5, None])}
    score = score_module(PIPE, codes)
    assert score.killed == 3  # a timeout is a kill: the tests noticed the mutant
    assert score.survived == [f"{PIPE}.x_a__mutmut_3"]
    assert score.untested == [f"{PIPE}.x_a__mutmut_4", f"{PIPE}.x_a__mutmut_5"]
    assert (score.unchecked, score.total, round(score.percent, 1)) == (1, 6, 50.0)


def test_an_unknown_exit_code_is_no_kill() -> None:
    assert score_module(PIPE, {"m__mutmut_1": 99}).survived == ["m__mutmut_1"]


def test_scores_are_per_module_by_dotted_name(tmp_path: Path) -> None:
    write_meta(tmp_path, "agent_service/pipeline/failures.py", {"a__mutmut_1": 1})
    write_meta(tmp_path, "harness/ledger.py", {"b__mutmut_1": 0, "b__mutmut_2": 1})
    scores = {s.module: s.percent for s in read_scores(tmp_path)}
    assert scores == {PIPE: 100.0, "harness.ledger": 50.0}


def test_a_module_under_the_bar_or_an_unexplained_survivor_is_a_problem() -> None:
    survivor = f"{PIPE}.xǁSettlerǁsettle__mutmut_7"
    scores = [score_module(PIPE, {survivor: 0, **{f"k__mutmut_{i}": 1 for i in range(9)}})]
    assert problems(scores, set(), 90) == [f"{survivor} survived and the doc does not explain it"]
    assert problems(scores, explained_names(f"- `{survivor}`: equivalent because"), 90) == []
    assert f"{PIPE}: 90.0 % killed, under 95 %" in problems(scores, set(), 95)
    assert problems(scores, {survivor}, 95) == []  # an equivalent mutant is not counted


def test_main_fails_under_the_bar_and_passes_at_it(tmp_path: Path) -> None:
    mutants, doc = tmp_path / "mutants", tmp_path / "mutation.md"
    write_meta(mutants, "harness/report.py", {"harness.report.x_f__mutmut_1": 0})
    doc.write_text("## Equivalent survivors\n`harness.report.x_f__mutmut_1`: the same value\n")
    args = ["--mutants", str(mutants), "--doc", str(doc)]
    write_meta(mutants, "harness/ledger.py", {"harness.ledger.x_g__mutmut_1": 0})
    assert main(args) == 1  # the ledger's survivor is not explained
    doc.write_text(
        "## Equivalent survivors\n`harness.report.x_f__mutmut_1`: same\n"
        "## Not killed\n`harness.ledger.x_g__mutmut_1`: only a broker shows it\n"
    )
    assert main(args) == 1  # explained, but a real survivor still counts: 0 % for the ledger
    assert main([*args, "--bar", "0"]) == 0
    doc.write_text(
        "## Equivalent survivors\n`harness.report.x_f__mutmut_1`, `harness.ledger.x_g__mutmut_1`"
    )
    assert main(args) == 0  # equivalent mutants are left out of the bar's count
    assert main([*args, "--bar", "101"]) == 1
    assert main(["--mutants", str(tmp_path / "none")]) == 2


def test_equivalent_mutants_leave_the_count_of_the_bar() -> None:
    score = score_module(PIPE, {"a__mutmut_1": 1, "a__mutmut_2": 0, "a__mutmut_3": 33})
    assert round(score.percent, 1) == 33.3
    assert score.percent_without({"a__mutmut_2"}) == 50.0
    assert score.percent_without({"a__mutmut_2", "a__mutmut_3", "other__mutmut_1"}) == 100.0
    assert "| 2 | 33.3 % | 100.0 % |" in render([score], {"a__mutmut_2", "a__mutmut_3"})


def test_only_the_equivalent_section_leaves_the_count() -> None:
    doc = "## Equivalent survivors\n- `m.x_a__mutmut_1`\n## Not killed\n- `m.x_b__mutmut_2`\n"
    assert equivalent_names(doc) == {"m.x_a__mutmut_1"}
    assert explained_names(doc) == {"m.x_a__mutmut_1", "m.x_b__mutmut_2"}
