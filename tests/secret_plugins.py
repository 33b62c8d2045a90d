"""This repository's own detect-secrets plugin, named in .secrets.baseline (``plugins_used``).

detect-secrets' keyword list has ``password``, ``passwd``, ``pwd`` and ``db_pass`` but not a
bare ``_pass`` suffix, so ``RABBITMQ_PASS=...``, the spec's own variable, passed every built-in
plugin: measured with detect-secrets 1.5.0 on an env file, a YAML file, a shell export and a
Python assignment holding the spec's sample password (tests/unit/test_supply_chain.py keeps that
check). ``python -m tests.secret_plugins`` audits the baseline (``make secrets-baseline``).
"""

from __future__ import annotations

import re
import sys

from detect_secrets.plugins.base import RegexBasedDetector

_NAME = r"""(?<![\w-])["']?[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*[_-]pass["']?"""
# A quoted value anywhere, or an unquoted one that is the rest of the line (env files, YAML,
# shell). The second form skips code such as ``rabbitmq_pass: SecretStr = Field(...)`` and
# ``connect(rabbitmq_pass=settings.rabbitmq_pass)``: the value there is not a single token.
_VALUE = r"""(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"'#(),;]+)\s*(?:\#.*)?$)"""


class PassVariableDetector(RegexBasedDetector):
    """A literal value given to a variable whose name ends in ``_pass`` (``RABBITMQ_PASS``)."""

    secret_type = "Value of a *_PASS variable"
    denylist = (re.compile(_NAME + r"\s*[:=]\s*" + _VALUE, re.IGNORECASE),)


def audit(baseline_file: str) -> None:
    """`detect-secrets audit BASELINE`, which fails on the entries of a custom plugin (its issue
    611: the map from secret type to plugin is cached before the baseline naming this file is
    read). Load the baseline's settings, drop the stale map, then audit."""
    from detect_secrets.audit.audit import audit_baseline
    from detect_secrets.core import baseline
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    baseline.load(baseline.load_from_file(baseline_file), baseline_file)
    get_mapping_from_secret_type_to_class.cache_clear()
    audit_baseline(baseline_file)


if __name__ == "__main__":  # make secrets-baseline
    audit(sys.argv[1] if len(sys.argv) > 1 else ".secrets.baseline")
