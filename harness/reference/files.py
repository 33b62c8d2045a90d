"""The generated operations files: ``docs/reference.md`` and ``deploy/agent-service.env.example``.

``generate`` writes them from the code (the settings model, the metrics registries, the error
codes and failure table, the exit codes, the harness's own argument parser); ``stale`` lists
the committed ones that no longer match, and ``problems`` adds what the code lacks (a setting
without a description). A test runs both, as for the contract files.
"""

from __future__ import annotations

import argparse
import functools
import textwrap
import typing
from collections.abc import Callable, Iterable
from pathlib import Path

from agent_service.__main__ import EXIT_CODES as SERVICE_EXIT_CODES
from agent_service.contract.messages import ReplyStatus, TaskType
from agent_service.pipeline.failures import FailureKind
from fakes.node_simulator.reply_consumer import SendKind
from harness.reference.errors_table import code_rows, kind_rows
from harness.reference.metrics_table import MetricRow, node_metric_rows, service_metric_rows
from harness.reference.settings_table import SettingRow, setting_rows, undocumented

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "docs/reference.md"
ENV_EXAMPLE = "deploy/agent-service.env.example"
HELP_WIDTH = 100

# Read by the Gemini client (google-genai) and checked at start (agent/model_config.py), not
# settings fields; a test keeps this list in step with that module.
MODEL_ENV = {
    "GOOGLE_API_KEY": "API key of the Gemini API (needed for a Gemini AGENT_MODEL)",
    "GEMINI_API_KEY": "another name of GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI": "true: use Vertex AI instead of an API key",
    "GOOGLE_CLOUD_PROJECT": "Vertex AI project",
    "GOOGLE_CLOUD_LOCATION": "Vertex AI region",
}
# The values a label takes, where the code fixes them (the agent service's labels).
LABEL_VALUES = {
    "task_type": ", ".join(t.value for t in TaskType),
    "status": ", ".join(s.value for s in ReplyStatus),
    "kind": ", ".join(k.value for k in FailureKind),
    "code": "an error code below",
    "reason": "an error code below",
    "level": "1 to MAX_RETRIES",
    "destination": "a queue name",
    "tool": "a tool name",
}


NODE_LABEL_VALUES = {
    "status": ", ".join(s.value for s in ReplyStatus) + ", invalid",
    "kind": ", ".join(typing.get_args(SendKind)),
}


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def _table(head: list[str], rows: Iterable[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _code(text: str) -> str:
    return f"`{text}`"


def _settings_section(rows: list[SettingRow]) -> list[str]:
    table = _table(
        ["variable", "also read as", "type", "default", "meaning"],
        (
            [
                _code(r.variable),
                ", ".join(map(_code, r.aliases)),
                r.type,
                _code(r.default),
                r.meaning,
            ]
            for r in rows
        ),
    )
    return [
        "## Settings of `agent-service`",
        "",
        "Environment variables, read once at start (`agent_service/settings.py`). A bad value",
        "stops the service with exit status 2 and a message naming the variable.",
        "",
        *table,
        "Read by the Gemini client, not by the settings model:",
        "",
        *_table(["variable", "meaning"], ([_code(k), v] for k, v in MODEL_ENV.items())),
    ]


def _labels(row: MetricRow, values: dict[str, str]) -> str:
    return "; ".join(f"`{n}` ({values[n]})" if n in values else f"`{n}`" for n in row.labels)


def _metrics_rows(rows: list[MetricRow], values: dict[str, str]) -> list[str]:
    return _table(
        ["metric", "type", "labels", "meaning"],
        ([", ".join(map(_code, r.exported)), r.type, _labels(r, values), r.meaning] for r in rows),
    )


def _metrics_section() -> list[str]:
    return [
        "## Metrics",
        "",
        "`agent-service` serves these on `http://HEALTH_HOST:HEALTH_PORT/metrics` (Prometheus",
        "text format), from `agent_service/observability/metrics.py`:",
        "",
        *_metrics_rows(service_metric_rows(), LABEL_VALUES),
        "The Node side, as its reference behaviour (the Node simulator, `fakes/node_simulator/`)",
        "exports them; `deploy/grafana-dashboard.json` and `deploy/prometheus-alerts.yml` use",
        "these names, and RabbitMQ's own `rabbitmq_queue_*` metrics (plugin",
        "`rabbitmq_prometheus`):",
        "",
        *_metrics_rows(node_metric_rows(), NODE_LABEL_VALUES),
    ]


def _errors_section() -> list[str]:
    return [
        "## Error codes",
        "",
        "The `error.code` of a reply with `status: error`, and the value of the",
        "`x-agent-dead-letter-reason` header of a request dead-lettered to `DLX_AGENT`",
        "(`agent_service/errors.py`):",
        "",
        *_table(["code", "meaning"], ([_code(r.code), r.meaning] for r in code_rows())),
        "What becomes of a request, by the kind of failure (`agent_service/pipeline/failures.py`;",
        "retries left means `metadata.retryCount` below the lower of `metadata.maxRetries` and",
        "`MAX_RETRIES`):",
        "",
        *_table(
            ["failure kind", "with retries left", "retries used up"],
            ([_code(r.kind), r.with_retries_left, r.retries_used_up] for r in kind_rows()),
        ),
    ]


def _exit_section(harness_codes: dict[int, str]) -> list[str]:
    return [
        "## Exit status",
        "",
        "`agent-service` (`agent_service/__main__.py`):",
        "",
        *_table(["status", "meaning"], ([code, text] for code, text in SERVICE_EXIT_CODES.items())),
        "`harness` (every command, `harness/cli.py`):",
        "",
        *_table(["status", "meaning"], ([code, text] for code, text in harness_codes.items())),
    ]


def _parsers(
    parser: argparse.ArgumentParser, path: str
) -> Iterable[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    # argparse keeps its subcommands in a private action type: the only way to walk them.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _help_section() -> list[str]:
    from harness.cli import parser

    lines = ["## `harness` commands", "", "The output of `--help` of each command.", ""]
    for path, p in _parsers(parser(), "harness"):
        # A fixed width, or the text would follow the terminal of whoever regenerates it.
        p.formatter_class = functools.partial(p.formatter_class, width=HELP_WIDTH)  # type: ignore[call-arg]
        p.prog = path
        lines += [f"### `{path}`", "", "```", p.format_help().rstrip(), "```", ""]
    return lines


def reference_text() -> str:
    from harness.cli import EXIT_CODES

    lines = [
        "# Operations reference",
        "",
        "Generated from the code by `harness reference generate` (`make reference`): do not edit",
        "by hand. A test fails while this file is stale. How to deploy and what to do when",
        "something goes wrong: `docs/operations.md`.",
        "",
        *_settings_section(setting_rows()),
        *_metrics_section(),
        *_errors_section(),
        *_exit_section(EXIT_CODES),
        *_help_section(),
    ]
    return "\n".join(lines).rstrip() + "\n"


def env_example_text() -> str:
    lines = [
        "# agent-service settings: every variable, commented out at its default.",
        "# Generated by `harness reference generate` from agent_service/settings.py; meanings",
        "# and types in docs/reference.md. Copy it to .env (never commit that one), uncomment what",
        "# you change. Production sets at least RABBITMQ_URL (or RABBITMQ_HOST, RABBITMQ_USER,",
        "# RABBITMQ_PASS), AGENT_MODEL and GOOGLE_API_KEY. Secrets are left empty here.",
        "",
    ]
    for row in setting_rows():
        value = "" if row.secret or row.default in ("unset", "computed at start") else row.default
        comment = f"{_cell(row.meaning)} ({row.type}; default {row.default})"
        lines += ["# " + line for line in textwrap.wrap(comment, HELP_WIDTH - 2)]
        lines += [f"# {row.variable}={value}", ""]
    lines += ["# Read by the Gemini client (not settings of the service):", ""]
    for name, meaning in MODEL_ENV.items():
        lines += [f"# {meaning}", f"# {name}=", ""]
    return "\n".join(lines).rstrip() + "\n"


def rendered() -> dict[str, str]:
    """Path relative to the repository -> the file's expected text."""
    files: dict[str, Callable[[], str]] = {REFERENCE: reference_text, ENV_EXAMPLE: env_example_text}
    return {path: make() for path, make in files.items()}


def generate(root: Path = REPO) -> list[Path]:
    written = []
    for rel, text in rendered().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def stale(root: Path = REPO) -> list[str]:
    """Committed files that differ from what ``generate`` would write (or are missing)."""
    return [rel for rel, text in rendered().items()
            if not (root / rel).exists() or (root / rel).read_text() != text]  # fmt: skip


def problems(root: Path = REPO) -> list[str]:
    """Everything that fails ``harness reference check``."""
    found = [f"UNDOCUMENTED setting {v}: give its Field a description" for v in undocumented()]
    found += [f"STALE {rel}: run `harness reference generate` and commit it" for rel in stale(root)]
    return found
