"""The operations reference and the example .env are generated from the code and kept fresh:
stale files, undocumented settings and wrong metric labels fail here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field

from agent_service.agent import model_config
from agent_service.observability.metrics import ServiceMetrics
from agent_service.settings import Settings, load_settings
from harness import reference
from harness.reference.files import ENV_EXAMPLE, MODEL_ENV, REFERENCE, rendered
from harness.reference.metrics_table import MetricRow, service_metric_rows
from harness.reference.settings_table import setting_rows, undocumented

pytestmark = pytest.mark.unit


def test_the_committed_reference_is_up_to_date() -> None:
    assert reference.problems() == [], "run `make reference` (harness reference generate)"


def test_a_stale_or_missing_file_is_detected(tmp_path: Path) -> None:
    reference.generate(tmp_path)
    assert reference.stale(tmp_path) == []
    path = tmp_path / REFERENCE
    path.write_text(path.read_text().replace("`MAX_RETRIES` | - | integer, 0 to 10 | `3`", "x"))
    (tmp_path / ENV_EXAMPLE).unlink()
    assert reference.stale(tmp_path) == [REFERENCE, ENV_EXAMPLE]
    assert any(p.startswith(f"STALE {REFERENCE}") for p in reference.problems(tmp_path))


def test_a_setting_without_a_description_is_reported() -> None:
    class WithNewField(Settings):
        order_wait: float = Field(5.0, validation_alias="ORDER_WAIT")

    assert undocumented(WithNewField) == ["ORDER_WAIT"]
    assert undocumented() == []


def test_every_setting_is_in_the_reference_with_its_names_and_default() -> None:
    text = rendered()[REFERENCE]
    for row in setting_rows():
        line = next(x for x in text.splitlines() if x.startswith(f"| `{row.variable}` |"))
        assert f"`{row.default}`" in line and all(f"`{a}`" in line for a in row.aliases)
    assert "| `MESSAGE_TTL` | `AGENT_MESSAGE_TTL` | integer, > 0 | `300000` |" in text


def test_the_env_example_holds_no_secret_and_its_values_are_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = rendered()[ENV_EXAMPLE]
    assigned = dict(re.findall(r"^# ([A-Z][A-Z0-9_]+)=(\S*)$", text, re.M))
    secrets = {row.variable for row in setting_rows() if row.secret}
    assert secrets and all(assigned[name] == "" for name in secrets)
    assert all(assigned[name] == "" for name in MODEL_ENV)
    for name, value in assigned.items():
        monkeypatch.delenv(name, raising=False)
        if value and name not in MODEL_ENV:
            monkeypatch.setenv(name, value)
    # Every value written in the example is read back as exactly the default.
    assert load_settings() == Settings()


def test_the_model_variables_are_the_ones_the_model_check_reads() -> None:
    source = inspect.getsource(model_config)
    assert [name for name in MODEL_ENV if name not in source] == []


def _exercised(metrics: ServiceMetrics) -> str:
    for metric in vars(metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        labelled = metric.labels(*["x"] * len(metric._labelnames)) if metric._labelnames else metric
        for method in ("inc", "observe", "set"):
            if hasattr(labelled, method):
                getattr(labelled, method)(1)
                break
    return generate_latest(metrics.registry).decode()


def test_metric_names_types_and_labels_are_what_a_scrape_shows() -> None:
    scraped: dict[str, tuple[str, set[str]]] = {}
    for family in text_string_to_metric_families(_exercised(ServiceMetrics(CollectorRegistry()))):
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                labels = set(sample.labels) - {"le"}
                scraped[sample.name] = (family.type, labels)
    rows: list[MetricRow] = service_metric_rows()
    assert {name for row in rows for name in row.exported} == set(scraped)
    for row in rows:
        for name in row.exported:
            assert scraped[name] == (row.type, set(row.labels)), name
