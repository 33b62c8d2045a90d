"""docker-compose.test.yml and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from agent_service.settings import Settings
from tests.conftest import NO_DOCKER_COMPOSE

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.test.yml"
DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    found: dict[str, Any] = data["services"]
    return found


def _service_env_names() -> set[str]:
    """Every environment variable the agent service reads (settings.py's aliases)."""
    names: set[str] = set()
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def test_the_four_services(services: dict[str, Any]) -> None:
    assert set(services) == {"rabbitmq", "postgres", "agent-service", "tests"}


def test_two_replicas_share_their_state_in_the_compose_postgres(services: dict[str, Any]) -> None:
    agent = services["agent-service"]
    assert agent["deploy"]["replicas"] == 2
    assert agent["environment"]["DATABASE_URL"] == "postgresql://postgres@postgres:5432/postgres"
    assert agent["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    tests_env = services["tests"]["environment"]
    assert tests_env["HARNESS_POSTGRES_URL"] == "postgresql://postgres@postgres:5432/postgres"


def test_rabbitmq_has_a_healthcheck_and_the_amqp_port(services: dict[str, Any]) -> None:
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"] == "rabbitmq:3.13-management"
    assert any(str(port).endswith("5672:5672") for port in rabbitmq["ports"])
    test = rabbitmq["healthcheck"]["test"]
    assert "rabbitmq-diagnostics" in test and "ping" in test


def test_agent_service_uses_the_spec_names_and_the_scripted_model(
    services: dict[str, Any],
) -> None:
    agent = services["agent-service"]
    assert agent["build"]["context"] == "."
    env = agent["environment"]
    assert env["AGENT_MODEL"] == "scripted"
    for name in ("RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS"):
        assert name in env
    assert env["RABBITMQ_HOST"] == "rabbitmq"
    for name in ("AGENT_QUEUE", "WEBHOOK_QUEUE", "MAX_PROCESSING_TIME", "CONCURRENT_TASKS"):
        assert name in env
    unknown = set(env) - _service_env_names()
    assert not unknown, f"variables the service does not read: {sorted(unknown)}"
    assert agent["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(agent["healthcheck"]["test"])


def test_tests_run_e2e_against_the_compose_broker(services: dict[str, Any]) -> None:
    tests = services["tests"]
    env = tests["environment"]
    assert env["HARNESS_BROKER"] == "external"
    assert env["HARNESS_BROKER_URL"] == "amqp://guest:guest@rabbitmq:5672/"
    command = tests["command"]
    assert command[0] == "pytest" and command[command.index("-m") + 1] == "e2e"
    assert tests["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_build_targets_exist_in_the_dockerfile(services: dict[str, Any]) -> None:
    text = DOCKERFILE.read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.M))
    assert re.search(r"^FROM python:3\.11-slim AS base$", text, re.M)
    for name in ("agent-service", "tests"):
        assert services[name]["build"]["target"] in stages
    last_from = text[text.rindex("\nFROM ") :]
    assert 'CMD ["agent-service"]' in last_from  # `docker build .` gives the service image


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip(NO_DOCKER_COMPOSE)
    done = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _runtime_stage() -> str:
    text = DOCKERFILE.read_text()
    return text[text.index("AS runtime") :]


def test_the_image_health_server_is_reachable_and_checked() -> None:
    # Found in a review: HEALTH_HOST defaulted to 127.0.0.1 while the image exposed 8080 with no
    # HEALTHCHECK, so a probe from outside the container failed.
    stage = _runtime_stage()
    env = dict(re.findall(r"(HEALTH_HOST|HEALTH_PORT)=(\S+)", stage))
    assert env == {"HEALTH_HOST": "0.0.0.0", "HEALTH_PORT": "8080"}
    assert re.search(r"^EXPOSE 8080$", stage, re.M)
    check = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", stage, re.M)
    assert check is not None and "http://127.0.0.1:8080/healthz" in check.group(1)
    assert Settings.model_fields["health_host"].default == "127.0.0.1"  # outside a container


def test_the_image_keeps_the_delivery_counts_on_a_volume() -> None:
    stage = _runtime_stage()
    assert "AGENT_STATE_DIR=/var/lib/wa-agent" in stage
    assert re.search(r"^VOLUME /var/lib/wa-agent$", stage, re.M)
