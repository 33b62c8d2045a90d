"""``harness simulate``: its help explains every scenario, and a scenario that would stop or
kill the broker is refused before anything starts on a broker the harness does not own."""

from __future__ import annotations

import time

import pytest

from harness import cli
from harness.scenarios import SCENARIOS

pytestmark = pytest.mark.unit


def test_help_describes_every_scenario_and_the_exit_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for scenario in SCENARIOS.values():
        assert f"{scenario.name} {scenario.description}" in text
    assert "exit status: 0" in text and "--html PATH" in text


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS.values() if s.needs_private_node])
def test_a_broker_scenario_on_an_external_broker_is_refused_before_it_starts(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1: nothing listens there, so a run that started anything would fail differently.
    monkeypatch.setenv("HARNESS_BROKER", "external")
    monkeypatch.setenv("HARNESS_BROKER_URL", "amqp://127.0.0.1:1/")
    began = time.monotonic()
    code = cli.main(["simulate", "--scenario", name, "--messages", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"scenario '{name}'" in err and "HARNESS_BROKER=private" in err
    assert "Traceback" not in err
    assert time.monotonic() - began < 5


def test_scenarios_that_need_a_private_node_are_the_ones_that_control_the_broker() -> None:
    assert {s.name for s in SCENARIOS.values() if s.needs_private_node} == {
        "broker-restart",
        "broker-kill",
    }
