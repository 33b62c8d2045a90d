"""The mutation score per module from a finished ``mutmut run`` (``make mutation``).

mutmut 3 keeps its verdicts next to each mutated copy, in ``mutants/<module path>.meta`` (JSON,
``exit_code_by_key``: mutant name -> the exit code of the tests run against it). mutmut's own
summary is one total for the run; the bar in docs/mutation.md is per module (one weak module
must not hide behind strong ones), and every surviving mutant must be named there as
equivalent, with its reason. This reads the verdicts, prints a table, and exits 1 when a module
scores under the bar or a survivor is not named in the doc. The bar applies to the score without
the mutants the doc names as equivalent (no test can tell them from the original: ``LIMIT`` for
``limit`` in SQL, ``break`` for ``return`` at the end of a loop); the raw score is shown beside it.

    python -m harness.mutation_score [--mutants mutants] [--doc docs/mutation.md] [--bar 90]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py). A timeout is a kill: the mutant made the tests hang,
# and the tests noticed. "No tests" is no kill: nothing that could notice ran.
KILLED_CODES = frozenset({1, 3, 36, 24, -24, 152, 255, 37})
SURVIVED_CODES = frozenset({0})
NO_TESTS_CODES = frozenset({5, 33})
DEFAULT_BAR = 90.0
_MUTANT_NAME = re.compile(r"[A-Za-z_][\w.]*__mutmut_\d+")


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    unchecked: int = 0

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + len(self.untested)

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0

    def percent_without(self, equivalent: AbstractSet[str]) -> float:
        """The score once the mutants named ``equivalent`` are left out of the count."""
        counted = self.total - len(equivalent & {*self.survived, *self.untested})
        return 100.0 * self.killed / counted if counted else 100.0


def score_module(module: str, exit_codes: Mapping[str, int | None]) -> ModuleScore:
    """One module's verdicts; an exit code mutmut never set (None) is not counted."""
    score = ModuleScore(module)
    for name, code in sorted(exit_codes.items()):
        if code is None:
            score.unchecked += 1
        elif code in KILLED_CODES:
            score.killed += 1
        elif code in NO_TESTS_CODES:
            score.untested.append(name)
        else:  # survived, or "suspicious" (an exit code mutmut does not know): no kill
            score.survived.append(name)
    return score


def read_scores(mutants: Path) -> list[ModuleScore]:
    """Every module mutmut mutated under ``mutants``, by its dotted name."""
    scores = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        relative = meta.relative_to(mutants).with_suffix("").with_suffix("")
        data = json.loads(meta.read_text(encoding="utf-8"))
        scores.append(score_module(".".join(relative.parts), data["exit_code_by_key"]))
    return scores


def explained_names(doc_text: str) -> set[str]:
    """The mutant names the doc mentions: each survivor must be named, with its reason."""
    return set(_MUTANT_NAME.findall(doc_text))


def equivalent_names(doc_text: str) -> set[str]:
    """The mutant names under the doc's "## Equivalent ..." heading: only these leave the
    bar's count (a survivor named elsewhere is explained but still counts as not killed)."""
    names: set[str] = set()
    for section in re.split(r"^## ", doc_text, flags=re.M)[1:]:
        if section.startswith("Equivalent"):
            names |= explained_names(section)
    return names


def problems(
    scores: Iterable[ModuleScore],
    explained: set[str],
    bar: float,
    equivalent: AbstractSet[str] | None = None,
) -> list[str]:
    """Modules under the bar, and survivors the doc does not name. ``equivalent`` (default:
    every explained name) are left out of the bar's count."""
    equivalent = explained if equivalent is None else equivalent
    found = []
    for score in scores:
        percent = score.percent_without(equivalent)
        if percent < bar:
            found.append(f"{score.module}: {percent:.1f} % killed, under {bar:g} %")
        for name in score.survived + score.untested:
            if name not in explained:
                found.append(f"{name} survived and the doc does not explain it")
    return found


def render(scores: Sequence[ModuleScore], explained: AbstractSet[str] = frozenset()) -> str:
    lines = [
        "| module | mutants | killed | survived | no tests | equivalent | score | bar score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        equivalent = len(explained & {*s.survived, *s.untested})
        lines.append(
            f"| {s.module} | {s.total} | {s.killed} | {len(s.survived)} | {len(s.untested)}"
            f" | {equivalent} | {s.percent:.1f} % | {s.percent_without(explained):.1f} % |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutation_score", description=__doc__)
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--doc", type=Path, default=Path("docs/mutation.md"))
    parser.add_argument("--bar", type=float, default=DEFAULT_BAR, help="percent killed per module")
    args = parser.parse_args(argv)
    scores = read_scores(args.mutants)
    if not scores:
        print(f"no mutmut results under {args.mutants}: run `make mutation` first")
        return 2
    text = args.doc.read_text(encoding="utf-8") if args.doc.exists() else ""
    explained, equivalent = explained_names(text), equivalent_names(text)
    print(render(scores, equivalent))
    found = problems(scores, explained, args.bar, equivalent)
    print("\n".join(found) or f"every module at {args.bar:g} % or more, every survivor explained")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
