"""The service's settings, read from the environment with the spec's variable names.

Every field is documented once, here. A bad value stops the service at start with a message
naming the variable (``load_settings``).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote, unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent_service.agent.options import DEFAULT_MODEL, Latency
from agent_service.contract.topology import Topology
from agent_service.settings_values import (
    MAX_DELAY_SECONDS,
    LatencySpec,
    Seconds,
    default_state_dir,
    ms,
)

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, frozen=True
    )

    # --- RabbitMQ connection -------------------------------------------------------------
    rabbitmq_url: SecretStr | None = Field(
        None,
        validation_alias=_env("RABBITMQ_URL", "AMQP_URL"),
        description="One AMQP URL (amqp:// or amqps://); overrides the five settings below",
    )
    rabbitmq_urls: SecretStr | None = Field(
        None,
        validation_alias="RABBITMQ_URLS",
        description="Several AMQP URLs, comma-separated: the nodes of a cluster. The service"
        " connects to the first that answers and, when its node dies, to the next; overrides"
        " RABBITMQ_URL and the five settings below",
    )
    rabbitmq_host: str = Field(
        "localhost", validation_alias="RABBITMQ_HOST", description="Broker host name or address"
    )
    rabbitmq_port: int = Field(
        5672,
        ge=1,
        le=65535,
        validation_alias="RABBITMQ_PORT",
        description="Broker AMQP port (5671 is the usual amqps port)",
    )
    rabbitmq_user: str = Field("guest", validation_alias="RABBITMQ_USER", description="Broker user")
    # Only the local broker's well-known guest password has a default; set it in production.
    rabbitmq_pass: SecretStr = Field(
        SecretStr("guest"),
        validation_alias="RABBITMQ_PASS",
        description="Broker password (guest only works for a broker on this machine)",
    )
    rabbitmq_allow_default_credentials: bool = Field(
        False,
        validation_alias="RABBITMQ_ALLOW_DEFAULT_CREDENTIALS",
        description="Allow guest/guest for a broker that is not on this machine (RabbitMQ"
        " itself refuses guest from other hosts unless configured to)",
    )
    rabbitmq_vhost: str = Field(
        "/", validation_alias="RABBITMQ_VHOST", description="Broker virtual host of every queue"
    )
    rabbitmq_tls: bool = Field(
        False,
        validation_alias="RABBITMQ_TLS",
        description="Connect with TLS (amqps); with RABBITMQ_URL, that URL must be amqps://",
    )
    rabbitmq_ca_file: Path | None = Field(
        None,
        validation_alias="RABBITMQ_CA_FILE",
        description="PEM file of the CA that signed the broker's certificate (default: the"
        " system's trusted CAs)",
    )
    rabbitmq_cert_file: Path | None = Field(
        None,
        validation_alias="RABBITMQ_CERT_FILE",
        description="PEM client certificate, for a broker that asks for one",
    )
    rabbitmq_key_file: Path | None = Field(
        None,
        validation_alias="RABBITMQ_KEY_FILE",
        description="PEM private key of RABBITMQ_CERT_FILE (if not inside that file)",
    )
    rabbitmq_heartbeat: int = Field(
        30,
        ge=0,
        validation_alias="RABBITMQ_HEARTBEAT",
        description="AMQP heartbeat in seconds: a silent broker link is dropped and"
        " reconnected after about two intervals (0: no heartbeats)",
    )
    reconnect_interval: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias="RABBITMQ_RECONNECT_INTERVAL",
        description="Seconds between reconnect attempts after the broker link is lost",
    )

    # --- Queues --------------------------------------------------------------------------
    agent_queue: str = Field(
        "ag_queue",
        min_length=1,
        validation_alias="AGENT_QUEUE",
        description="Queue of AI requests (consumed); its wait queues are named after it",
    )
    webhook_queue: str = Field(
        "wb_queue",
        min_length=1,
        validation_alias="WEBHOOK_QUEUE",
        description="Queue of replies (published to); its wait and parking queues are named"
        " after it",
    )
    dlx_agent: str = Field(
        "dlx_agent",
        min_length=1,
        validation_alias="DLX_AGENT",
        description="Dead-letter exchange of AGENT_QUEUE, and the queue bound to it",
    )
    dlx_webhook: str = Field(
        "dlx_webhook",
        min_length=1,
        validation_alias="DLX_WEBHOOK",
        description="Dead-letter exchange of WEBHOOK_QUEUE, and the queue bound to it",
    )
    agent_message_ttl: int = Field(
        300_000,
        gt=0,
        validation_alias=_env("MESSAGE_TTL", "AGENT_MESSAGE_TTL"),
        description="Milliseconds a request may wait in AGENT_QUEUE before it expires to"
        " DLX_AGENT (x-message-ttl)",
    )
    webhook_message_ttl: int = Field(
        60_000,
        gt=0,
        validation_alias="WEBHOOK_MESSAGE_TTL",
        description="Milliseconds a reply may wait in WEBHOOK_QUEUE before it expires to"
        " DLX_WEBHOOK (x-message-ttl)",
    )
    topology_profile: Literal["classic", "quorum"] = Field(
        "classic",
        validation_alias="TOPOLOGY_PROFILE",
        description="classic: classic queues (one broker node); quorum: replicated quorum queues"
        " for a cluster, with x-delivery-limit and at-least-once dead-lettering. The Node side"
        " must declare the same profile, or the broker refuses the declare (406)",
    )
    quorum_delivery_limit: int = Field(
        10,
        ge=1,
        le=1000,
        validation_alias="QUORUM_DELIVERY_LIMIT",
        description="Quorum profile: deliveries of one message before the broker dead-letters"
        " it (x-delivery-limit); a hand-back counts too. Keep it above MAX_DELIVERIES",
    )
    agent_queue_prefetch: int = Field(
        1,
        ge=1,
        le=1000,
        validation_alias="AGENT_QUEUE_PREFETCH",
        description="Unacked requests per consumer channel; the service opens"
        " ceil(CONCURRENT_TASKS / AGENT_QUEUE_PREFETCH) consumers",
    )

    # --- Processing ----------------------------------------------------------------------
    concurrent_tasks: int = Field(
        5,
        ge=1,
        le=1000,
        validation_alias="CONCURRENT_TASKS",
        description="Requests processed at once by this process (its unacked deliveries)",
    )
    max_processing_time: float = Field(
        300.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias="MAX_PROCESSING_TIME",
        description="Seconds one try of a request may take; then it is cancelled and retried"
        " as a transient failure (PROCESSING_TIMEOUT)",
    )
    max_message_bytes: int = Field(
        262_144,
        ge=1024,
        validation_alias="MAX_MESSAGE_BYTES",
        description="Largest request body in bytes; a larger one is dead-lettered"
        " (INVALID_MESSAGE) unread",
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        validation_alias="MAX_RETRIES",
        description="Retries of a transient failure before the error reply; a request's"
        " metadata.maxRetries can only lower it. Also the number of wait queues",
    )
    retry_delay: float = Field(
        30.0,
        ge=0.001,
        le=MAX_DELAY_SECONDS,
        allow_inf_nan=False,
        validation_alias="RETRY_DELAY",
        description="Seconds before the first retry",
    )
    retry_backoff_multiplier: float = Field(
        2.0,
        ge=1,
        allow_inf_nan=False,
        validation_alias=_env("RETRY_BACKOFF_MULTIPLIER", "BACKOFF_MULTIPLIER"),
        description="Each retry waits this many times longer than the one before",
    )
    retry_delays_list: Seconds | None = Field(
        None,
        validation_alias="RETRY_DELAYS",
        description="Seconds, comma-separated; overrides RETRY_DELAY and the multiplier",
    )
    webhook_retry_delays: Seconds | None = Field(
        None,
        validation_alias="WEBHOOK_RETRY_DELAYS",
        description="Seconds, comma-separated: the Node side's wait queues (default: as ours)",
    )
    max_deliveries: int = Field(
        5,
        ge=1,
        le=1000,
        validation_alias="MAX_DELIVERIES",
        description="Deliveries of one request that may end unsettled (a crash, a hang) before"
        " it is dead-lettered with reason MAX_DELIVERIES",
    )
    state_dir: Path = Field(
        default_factory=lambda: default_state_dir(),
        validation_alias="AGENT_STATE_DIR",
        description="Folder of the state that must survive a restart (delivery counts, an"
        " SQLite file); replicas on one host share it. Default $XDG_STATE_HOME/wa-agent, else"
        " ~/.local/state/wa-agent (the image: /var/lib/wa-agent, a volume)",
    )
    shutdown_grace: float = Field(
        30.0,
        ge=0,
        allow_inf_nan=False,
        validation_alias="SHUTDOWN_GRACE",
        description="Seconds that in-flight requests get to finish after SIGTERM; the rest"
        " are cancelled and return to the queue",
    )
    dedup_ttl: float = Field(
        900.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias="DEDUP_TTL",
        description="Seconds a messageId is remembered",
    )
    dedup_max_entries: int = Field(
        100_000,
        ge=100,
        validation_alias="DEDUP_MAX_ENTRIES",
        description="Most messageIds remembered at once; the oldest are forgotten first",
    )
    error_include_stack: bool = Field(
        False,
        validation_alias="ERROR_INCLUDE_STACK",
        description="Put the Python stack trace into error.stack of error replies on"
        " WEBHOOK_QUEUE (it then leaves the service; logs never carry one either way)",
    )

    # --- The agent -----------------------------------------------------------------------
    agent_model: str = Field(
        DEFAULT_MODEL,
        min_length=1,
        validation_alias="AGENT_MODEL",
        description="A Gemini model name, or 'scripted' (offline, deterministic)",
    )
    scripted_latency: LatencySpec = Field(
        default_factory=Latency,
        validation_alias="SCRIPTED_LATENCY",
        description="Latency of each scripted-model call, in seconds: 0, 1.0,"
        " uniform:LOW:HIGH or lognormal:MEAN:SIGMA",
    )
    scripted_failure_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        validation_alias="SCRIPTED_FAILURE_RATE",
        description="Share of scripted-model calls that fail transiently (load and chaos runs)",
    )
    agent_db_path: Path | None = Field(
        None,
        validation_alias="AGENT_DB_PATH",
        description="The SQLite file of the business data without DATABASE_URL (default:"
        " business.sqlite3 in AGENT_STATE_DIR, seeded with the demo data on first use)",
    )

    # --- Shared state (several replicas) -------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL (a libpq URL: postgresql://HOST/DB, user and password in it or in"
        " PGUSER/PGPASSWORD): the business data and the"
        " request states every replica shares. Unset: an SQLite file and in-process"
        " deduplication, for one replica on one host",
    )
    database_pool_size: int = Field(
        10,
        ge=1,
        le=200,
        validation_alias="DATABASE_POOL_SIZE",
        description="PostgreSQL connections per replica at most",
    )
    request_lease: float = Field(
        10.0,
        ge=0.5,
        le=600,
        allow_inf_nan=False,
        validation_alias="REQUEST_LEASE",
        description="Seconds a replica's claim on a request lasts unless renewed (every third of"
        " it): how long a redelivery waits before taking over from a replica whose host"
        " vanished (a replica that died is seen at once, by its lost liveness lock)",
    )
    order_wait: float = Field(
        60.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        validation_alias="ORDER_WAIT",
        description="Seconds a built reply waits at most for the contact's earlier requests"
        " to settle, so replies keep the order of the messages; 0: no ordering",
    )
    order_grace: float = Field(
        2.0,
        ge=0,
        le=600,
        allow_inf_nan=False,
        validation_alias="ORDER_GRACE",
        description="Seconds a reply waits for a metadata.previousMessageId no replica has"
        " seen yet (with DATABASE_URL), before it goes without it",
    )

    # --- Observability -------------------------------------------------------------------
    health_port: int = Field(
        8080,
        ge=-1,
        le=65535,
        validation_alias="HEALTH_PORT",
        description="Port of /healthz, /readyz and /metrics (0: any free port, -1: no"
        " health server)",
    )
    health_host: str = Field(
        "127.0.0.1",
        validation_alias="HEALTH_HOST",
        description="Interface of the health server: 0.0.0.0 for probes from outside the"
        " host or container (the image sets it)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="LOG_LEVEL", description="Lowest level logged (any case)"
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        validation_alias="LOG_FORMAT",
        description="json: one JSON object a line; text: for a person at a terminal",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        validation_alias="EVENT_LOOP",
        description="uvloop (the default: the service's own work per request in C) or asyncio"
        " (the standard library's loop)",
    )
    log_message_text: bool = Field(
        False,
        validation_alias="LOG_MESSAGE_TEXT",
        description="Put the user's message text in the consumed-request log line (off: what"
        " people write is personal data)",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.rabbitmq_urls is not None:
            urls = _split_urls(self.rabbitmq_urls.get_secret_value())
            if not urls:
                raise ValueError("RABBITMQ_URLS: no URL in it (comma-separated amqp:// URLs)")
            for each in urls:
                if not each.startswith(("amqp://", "amqps://")):
                    raise ValueError(
                        f"RABBITMQ_URLS: {redact_url(each)!r} is not an amqp:// or amqps:// URL"
                    )
            if len({u.startswith("amqps://") for u in urls}) > 1:
                raise ValueError("RABBITMQ_URLS: mixes amqp:// and amqps:// URLs")
        url: str | None = self.rabbitmq_url.get_secret_value() if self.rabbitmq_url else None
        if self.rabbitmq_urls is not None:
            url = self.amqp_url()
        if self.rabbitmq_tls and url is not None and not url.startswith("amqps://"):
            # Found in a review: the connection silently stayed plaintext.
            raise ValueError(
                "RABBITMQ_TLS=true needs an amqps:// RABBITMQ_URL (it is amqp://): use amqps://"
                " or unset RABBITMQ_TLS"
            )
        self._check_credentials()
        if self.retry_delays_list is None:
            for level, delay in enumerate(self.retry_delays(), start=1):
                if not delay <= MAX_DELAY_SECONDS:
                    raise ValueError(
                        f"RETRY_DELAY x RETRY_BACKOFF_MULTIPLIER: retry {level} would wait"
                        f" {delay:g} s; a wait queue holds at most {MAX_DELAY_SECONDS:g} s"
                    )
        return self

    def amqp_urls(self) -> list[str]:
        """Every broker node to try: RABBITMQ_URLS, or the one URL of the other settings."""
        if self.rabbitmq_urls is not None:
            return _split_urls(self.rabbitmq_urls.get_secret_value())
        return [self.amqp_url()]

    def amqp_url(self) -> str:
        """The (first) broker URL."""
        if self.rabbitmq_urls is not None:
            return _split_urls(self.rabbitmq_urls.get_secret_value())[0]
        if self.rabbitmq_url is not None:
            return self.rabbitmq_url.get_secret_value()
        scheme = "amqps" if self.rabbitmq_tls else "amqp"
        user = quote(self.rabbitmq_user, safe="")
        password = quote(self.rabbitmq_pass.get_secret_value(), safe="")
        vhost = quote(self.rabbitmq_vhost, safe="")
        return f"{scheme}://{user}:{password}@{self.rabbitmq_host}:{self.rabbitmq_port}/{vhost}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not (self.rabbitmq_tls or self.amqp_url().startswith("amqps://")):
            return None
        context = ssl.create_default_context(cafile=self.rabbitmq_ca_file)
        if self.rabbitmq_cert_file:
            context.load_cert_chain(self.rabbitmq_cert_file, self.rabbitmq_key_file)
        return context

    def retry_delays(self) -> tuple[float, ...]:
        """Seconds to wait before retry 1, 2, ... (30, 60, 120 by default)."""
        if self.retry_delays_list is not None:
            listed = self.retry_delays_list
            return tuple(listed[min(i, len(listed) - 1)] for i in range(self.max_retries))
        delays, delay = [], self.retry_delay
        for _ in range(self.max_retries):
            delays.append(delay)
            delay *= self.retry_backoff_multiplier  # inf past the largest float, not an error
        return tuple(delays)

    def _check_credentials(self) -> None:
        if self.rabbitmq_allow_default_credentials:
            return
        for url in self.amqp_urls():
            self._check_url_credentials(url)

    def _check_url_credentials(self, url: str) -> None:
        parts = urlsplit(url)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        host = (parts.hostname or "").lower()
        if (user, password) == ("guest", "guest") and host not in _LOCAL_HOSTS:
            # Found in a review: guest/guest was the default even for a remote broker.
            raise ValueError(
                f"RABBITMQ_USER/RABBITMQ_PASS: the default guest/guest for the broker at {host}"
                " (not this machine): set real credentials, or"
                " RABBITMQ_ALLOW_DEFAULT_CREDENTIALS=true"
            )

    def deliveries_path(self) -> Path:
        return self.state_dir / "deliveries.sqlite3"

    def business_path(self) -> Path:
        """The embedded business data: one file every replica on the host shares."""
        return self.agent_db_path or self.state_dir / "business.sqlite3"

    def database_dsn(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def topology(self) -> Topology:
        delays_ms = tuple(ms(d) for d in self.retry_delays())
        webhook_ms = delays_ms
        if self.webhook_retry_delays is not None:
            webhook_ms = tuple(ms(d) for d in self.webhook_retry_delays)
        return Topology(
            agent_queue=self.agent_queue,
            webhook_queue=self.webhook_queue,
            dlx_agent=self.dlx_agent,
            dlx_webhook=self.dlx_webhook,
            agent_ttl_ms=self.agent_message_ttl,
            webhook_ttl_ms=self.webhook_message_ttl,
            agent_retry_delays_ms=delays_ms,
            webhook_retry_delays_ms=webhook_ms,
            agent_prefetch=self.agent_queue_prefetch,
            profile=self.topology_profile,
            delivery_limit=self.quorum_delivery_limit,
        )


def _split_urls(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def redact_url(url: str) -> str:
    """A URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def env_name(field: str) -> str:
    """The environment variable of a settings field (its first name, if it has several)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``overrides`` by field name), or a SettingsError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [_problem(err["loc"], err["msg"]) for err in exc.errors()]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    if not loc:  # a rule across several settings: the message names them itself
        return message
    return f"{env_name(str(loc[0]))}: {message}"
