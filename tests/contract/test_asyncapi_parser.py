"""contracts/asyncapi.yaml passes the official AsyncAPI parser, and the check can fail.

The parser is @asyncapi/parser (with the AsyncAPI ruleset), run through
contracts/node/scripts/asyncapi-validate.mjs, the script the Node team runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import contract_node
from harness.contract_files import CONTRACTS_DIR

pytestmark = pytest.mark.contract

DOCUMENT = CONTRACTS_DIR / "asyncapi.yaml"
# The document of version 1.0.0, which the parser refused (see the file's header).
KNOWN_BAD = Path(__file__).parent / "data" / "asyncapi-1.0.0-invalid.yaml"


# The AsyncAPI 3 rules report errors only; the version-2 rules of the same ruleset warn, which
# shows what a warning does to the verdict.
WARNINGS_ONLY = """\
asyncapi: 2.6.0
info:
  title: Warnings only
  version: 1.0.0
defaultContentType: application/json
channels: {}
"""


@pytest.fixture(scope="module")
def reports(
    node_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, contract_node.Validation]:
    warnings_only = tmp_path_factory.mktemp("asyncapi") / "warnings-only.yaml"
    warnings_only.write_text(WARNINGS_ONLY)
    # One Node process for all: starting the parser costs about a second.
    good, bad, warned = contract_node.validate(DOCUMENT, KNOWN_BAD, warnings_only)
    return {"good": good, "bad": bad, "warnings only": warned}


def _failing(report: contract_node.Validation) -> list[contract_node.Diagnostic]:
    return [d for d in report.diagnostics if d.severity in ("error", "warning")]


def test_generated_document_passes_the_official_parser(
    reports: dict[str, contract_node.Validation],
) -> None:
    report = reports["good"]
    assert report.valid, "the AsyncAPI parser refuses contracts/asyncapi.yaml:\n" + "\n".join(
        map(str, _failing(report))
    )
    assert _failing(report) == []


def test_the_known_bad_document_is_refused_with_the_parser_s_errors(
    reports: dict[str, contract_node.Validation],
) -> None:
    report = reports["bad"]
    assert not report.valid
    errors = {(d.path, d.message) for d in report.diagnostics if d.severity == "error"}
    assert errors == {
        (f"/components/messages/{m}/bindings/amqp{tail}", message)
        for m in ("AgentRequest", "AgentReply")
        for tail, message in [
            ("", '"amqp" property must match "then" schema'),
            ("/deliveryMode", 'Property "deliveryMode" is not expected to be here'),
        ]
    }


def test_warnings_fail_the_validation_too(reports: dict[str, contract_node.Validation]) -> None:
    report = reports["warnings only"]
    severities = {d.severity for d in report.diagnostics}
    assert "error" not in severities and "warning" in severities, report.diagnostics
    assert not report.valid
    assert any(d.code == "asyncapi-info-contact" for d in report.diagnostics)


def test_validate_script_prints_severity_and_path_and_exits_non_zero(node_project: Path) -> None:
    """The plain-text output, as `npm run asyncapi:validate` shows it."""
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "scripts/asyncapi-validate.mjs", str(KNOWN_BAD)],
        cwd=node_project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    bad = [line for line in lines if " error " in line and line.endswith("expected to be here")]
    assert len(bad) == 2, done.stdout
    # file:line: severity code path: message
    assert ":133: error asyncapi-document-resolved " in bad[0]
    assert "/components/messages/AgentRequest/bindings/amqp/deliveryMode: " in bad[0]
    assert lines[-1].endswith("INVALID (error: 4, warning: 0, info: 1, hint: 0)"), lines[-1]
