"""The service's settings: defaults pinned, every way a value is read, and a bad value stopping
the service at start with a message that names the variable."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from agent_service.settings import (
    MAX_DELAY_SECONDS,
    Settings,
    SettingsError,
    default_state_dir,
    load_settings,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("RABBITMQ_", "AGENT_", "RETRY_", "WEBHOOK_", "SCRIPTED_", "MAX_")):
            monkeypatch.delenv(name)


def test_defaults_are_the_specs_values() -> None:
    s = load_settings()
    assert (s.agent_queue, s.webhook_queue, s.dlx_agent, s.dlx_webhook) == (
        "ag_queue",
        "wb_queue",
        "dlx_agent",
        "dlx_webhook",
    )
    assert (s.agent_message_ttl, s.webhook_message_ttl, s.agent_queue_prefetch) == (
        300_000,
        60_000,
        1,
    )
    assert (s.concurrent_tasks, s.max_processing_time, s.max_retries) == (5, 300.0, 3)
    assert s.retry_delays() == (30.0, 60.0, 120.0)
    assert (s.max_deliveries, s.dedup_ttl, s.shutdown_grace) == (5, 900.0, 30.0)
    assert s.agent_model == "gemini-2.5-flash" and not s.error_include_stack
    assert s.amqp_url() == "amqp://guest:guest@localhost:5672/%2F"
    assert s.ssl_context() is None
    t = s.topology()
    assert t.agent_retry_delays_ms == (30_000, 60_000, 120_000) == t.webhook_retry_delays_ms


def test_the_url_is_built_from_the_five_parts_with_quoting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_HOST", "rabbit.internal")
    monkeypatch.setenv("RABBITMQ_PORT", "5671")
    monkeypatch.setenv("RABBITMQ_USER", "agent@team")
    monkeypatch.setenv("RABBITMQ_PASS", "p/ss:w@rd")
    monkeypatch.setenv("RABBITMQ_VHOST", "prod")
    monkeypatch.setenv("RABBITMQ_TLS", "true")
    assert (
        load_settings().amqp_url()
        == "amqps://agent%40team:p%2Fss%3Aw%40rd@rabbit.internal:5671/prod"
    )


def test_one_url_wins_over_the_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", "amqp://u:p@h:1/v")
    monkeypatch.setenv("RABBITMQ_HOST", "ignored")
    assert load_settings().amqp_url() == "amqp://u:p@h:1/v"


def test_tls_gives_a_context_that_checks_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", "amqps://u:p@h:5671/")
    context = load_settings().ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_the_retry_ladder_from_delay_and_multiplier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAY", "2")
    monkeypatch.setenv("RETRY_BACKOFF_MULTIPLIER", "3")
    monkeypatch.setenv("MAX_RETRIES", "4")
    assert load_settings().retry_delays() == (2.0, 6.0, 18.0, 54.0)


def test_a_listed_ladder_repeats_its_last_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAYS", "1, 2.5")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", "0.5")
    s = load_settings()
    assert s.retry_delays() == (1.0, 2.5, 2.5)
    assert s.topology().agent_retry_delays_ms == (1000, 2500, 2500)
    assert s.topology().webhook_retry_delays_ms == (500,)


def test_the_state_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "wa-agent"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / ".local" / "state" / "wa-agent"
    monkeypatch.setenv("AGENT_STATE_DIR", str(tmp_path / "here"))
    assert load_settings().deliveries_path() == tmp_path / "here" / "deliveries.sqlite3"


# Each case found in a review crashed (IndexError, OverflowError), made a 0 ms queue TTL,
# named nothing, or silently stayed plaintext.
BAD = [
    ({"RETRY_DELAYS": ""}, "RETRY_DELAYS: expected at least one delay"),
    ({"RETRY_DELAYS": ","}, "RETRY_DELAYS: expected at least one delay"),
    ({"RETRY_DELAYS": "30,x"}, "RETRY_DELAYS: expected seconds separated by commas"),
    ({"RETRY_DELAYS": "30,inf"}, "RETRY_DELAYS: every delay must be from 0.001"),
    ({"RETRY_DELAY": "inf"}, "RETRY_DELAY: Input should be a finite number"),
    ({"RETRY_DELAY": "0"}, "RETRY_DELAY: Input should be greater than or equal to 0.001"),
    ({"RETRY_BACKOFF_MULTIPLIER": "1e200"}, "RETRY_DELAY x RETRY_BACKOFF_MULTIPLIER: retry 2"),
    ({"WEBHOOK_RETRY_DELAYS": "0.0001"}, "WEBHOOK_RETRY_DELAYS: every delay must be from 0.001"),
    ({"SCRIPTED_LATENCY": "fast"}, "SCRIPTED_LATENCY: bad number 'fast'"),
    ({"SCRIPTED_LATENCY": "uniform:2:1"}, "SCRIPTED_LATENCY: bad latency 'uniform:2:1'"),
    (
        {"RABBITMQ_TLS": "true", "RABBITMQ_URL": "amqp://u:p@h:5672/"},
        "RABBITMQ_TLS=true needs an amqps:// RABBITMQ_URL",
    ),
    ({"CONCURRENT_TASKS": "0"}, "CONCURRENT_TASKS: Input should be greater than or equal to 1"),
    ({"MAX_DELIVERIES": "0"}, "MAX_DELIVERIES: Input should be greater than or equal to 1"),
    ({"MAX_PROCESSING_TIME": "nan"}, "MAX_PROCESSING_TIME: Input should be a finite number"),
    ({"RABBITMQ_PORT": "70000"}, "RABBITMQ_PORT: Input should be less than or equal to 65535"),
    ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ({"RABBITMQ_HOST": "rabbit.prod"}, "the default guest/guest for the broker at rabbit.prod"),
    (
        {"RABBITMQ_URL": "amqp://guest:guest@10.1.2.3:5672/"},
        "RABBITMQ_USER/RABBITMQ_PASS: the default guest/guest for the broker at 10.1.2.3",
    ),
]


@pytest.mark.parametrize(("env", "message"), BAD, ids=[next(iter(e)) for e, _ in BAD])
def test_a_bad_value_is_refused_naming_the_variable(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)


@pytest.mark.parametrize(("env", "message"), BAD[:11], ids=[next(iter(e)) for e, _ in BAD[:11]])
def test_the_service_stops_at_start_with_that_message(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "RETRY_"))}
    done = subprocess.run(
        [sys.executable, "-m", "agent_service"],
        env={**clean, **env, "AGENT_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"RABBITMQ_HOST": "rabbit.prod", "RABBITMQ_PASS": "a-real-one"},
        {"RABBITMQ_HOST": "rabbit.prod", "RABBITMQ_ALLOW_DEFAULT_CREDENTIALS": "true"},
        {"RABBITMQ_HOST": "::1"},
        {"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/"},
    ],
)
def test_guest_is_fine_locally_or_when_allowed(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings()


def test_the_largest_delay_a_queue_can_hold_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAYS", str(MAX_DELAY_SECONDS))
    assert load_settings().topology().agent_retry_delays_ms[0] == 2**32 - 1


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValueError, match="frozen"):
        s.concurrent_tasks = 9  # type: ignore[misc]


def test_the_topology_is_built_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AGENT_QUEUE": "ag2",
        "WEBHOOK_QUEUE": "wb2",
        "DLX_AGENT": "dlx_a2",
        "DLX_WEBHOOK": "dlx_w2",
        "MESSAGE_TTL": "1234",
        "WEBHOOK_MESSAGE_TTL": "5678",
        "AGENT_QUEUE_PREFETCH": "7",
        "RETRY_DELAYS": "1,2",
        "MAX_RETRIES": "2",
    }.items():
        monkeypatch.setenv(name, value)
    t = load_settings().topology()
    assert (t.agent_queue, t.webhook_queue, t.dlx_agent, t.dlx_webhook) == (
        "ag2",
        "wb2",
        "dlx_a2",
        "dlx_w2",
    )
    assert (t.agent_ttl_ms, t.webhook_ttl_ms, t.agent_prefetch) == (1234, 5678, 7)
    assert t.agent_retry_delays_ms == (1000, 2000) == t.webhook_retry_delays_ms


def test_a_slash_in_the_user_is_quoted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_USER", "team/agent")
    assert load_settings().amqp_url() == "amqp://team%2Fagent:guest@localhost:5672/%2F"


def test_the_paths_and_the_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENT_STATE_DIR", str(tmp_path))
    s = load_settings()
    assert s.business_path() == tmp_path / "business.sqlite3" and s.database_dsn() is None
    monkeypatch.setenv("AGENT_DB_PATH", str(tmp_path / "mine.db"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/agent")
    s = load_settings()
    assert s.business_path() == tmp_path / "mine.db"
    assert s.database_dsn() == "postgresql://127.0.0.1/agent"


def test_env_name_is_the_first_variable_of_a_field() -> None:
    from agent_service.settings import env_name

    assert env_name("rabbitmq_host") == "RABBITMQ_HOST"
    assert env_name("agent_message_ttl") == "MESSAGE_TTL"  # the spec's name before ours
    assert env_name("not_a_setting") == "NOT_A_SETTING"


def test_every_problem_is_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCURRENT_TASKS", "0")
    monkeypatch.setenv("MAX_DELIVERIES", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid settings: CONCURRENT_TASKS: Input should be greater than or equal to 1;"
        " MAX_DELIVERIES: Input should be greater than or equal to 1"
    )


def test_the_remote_guest_message_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_HOST", "Rabbit.Prod")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid settings: RABBITMQ_USER/RABBITMQ_PASS: the default guest/guest for the broker"
        " at rabbit.prod (not this machine): set real credentials, or"
        " RABBITMQ_ALLOW_DEFAULT_CREDENTIALS=true"
    )


def test_the_delay_limit_is_inclusive_at_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAYS", "0.001")
    assert load_settings().topology().agent_retry_delays_ms[0] == 1


def test_a_delay_read_as_one_number_or_a_sequence() -> None:
    assert load_settings(retry_delays_list=5).retry_delays() == (5.0, 5.0, 5.0)
    assert load_settings(retry_delays_list=[1, 2]).retry_delays() == (1.0, 2.0, 2.0)


def test_the_state_folder_without_a_home_is_in_the_temp_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    assert default_state_dir() == Path(tempfile.gettempdir()) / f"wa-agent-{os.getuid()}"


def test_the_dedup_defaults() -> None:
    s = load_settings()
    assert (s.dedup_ttl, s.dedup_max_entries, s.order_wait) == (900.0, 100_000, 60.0)


def test_delays_are_written_back_as_the_text_they_are_read_from() -> None:
    dumped = load_settings(retry_delays_list=[1, 2.5]).model_dump(mode="json")
    assert dumped["retry_delays_list"] == "1,2.5"


def test_tls_trusts_the_given_ca_and_presents_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from harness.broker.tls import CertificateAuthority

    client = CertificateAuthority(tmp_path, "settings test CA").issue("client", client=True)
    monkeypatch.setenv("RABBITMQ_URL", "amqps://u:p@127.0.0.1:5671/")
    monkeypatch.setenv("RABBITMQ_CA_FILE", str(client.ca_file))
    monkeypatch.setenv("RABBITMQ_CERT_FILE", str(client.cert_file))
    monkeypatch.setenv("RABBITMQ_KEY_FILE", str(client.key_file))
    context = load_settings().ssl_context()
    assert context is not None
    issuers = [dict(pair[0] for pair in ca["subject"]) for ca in context.get_ca_certs()]
    assert issuers == [{"commonName": "settings test CA"}]  # that CA only, not the system's
