"""``agent-service`` / ``python -m agent_service``: run until SIGTERM or SIGINT.

``agent-service migrate`` creates or updates the PostgreSQL schemas of DATABASE_URL (the
business tables, seeded with the demo data when empty, and the request-state tables) and exits;
the service does the same at start, so this is for deployments that migrate before they roll.
"""

from __future__ import annotations

import logging
import ssl
import sys
from urllib.parse import urlsplit

from agent_service.event_loop import run
from agent_service.settings import Settings, SettingsError, load_settings

# What the exit status tells a supervisor (docs/reference.md lists these, generated from here).
EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_OS = 3
EXIT_TOPOLOGY = 4
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "stopped on SIGTERM or SIGINT after finishing or handing back in-flight work",
    EXIT_CONFIG: "a setting is invalid, or the model cannot be used (no API key): fix the"
    " configuration; restarting will not help",
    EXIT_OS: "the broker or PostgreSQL (DATABASE_URL) could not be reached or refused the"
    " connection at start (down, unknown host, wrong credentials, unknown vhost or database,"
    " TLS certificate not trusted), or another OS error; worth restarting with a back-off",
    EXIT_TOPOLOGY: "the broker has a queue or exchange of the topology with other arguments"
    " (406 PRECONDITION_FAILED): see `harness topology verify --from-env` and"
    " `harness topology migrate`",
}


async def _serve(settings: Settings) -> None:
    from agent_service.service import AgentService

    async with AgentService(settings) as service:
        await service.run_until_signal()


async def _migrate(settings: Settings) -> str:
    from contextlib import AsyncExitStack

    from agent_service.state.backends import open_pool

    async with AsyncExitStack() as stack:
        pool = await open_pool(settings, stack)
        if pool is None:
            raise ValueError("migrate needs DATABASE_URL (the embedded SQLite needs no migration)")
    return "PostgreSQL schemas are up to date"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["migrate"]):
        print("usage: agent-service [migrate]", file=sys.stderr)
        return EXIT_CONFIG
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agent-service: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from agent_service.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    from aiormq.exceptions import AMQPError, ChannelPreconditionFailed

    from agent_service.observability.tracing import start_tracing, stop_tracing

    tracing = start_tracing("agent-service") if not args else None
    try:
        if args == ["migrate"]:
            print(f"agent-service: {run(_migrate(settings), settings.event_loop)}")
        else:
            run(_serve(settings), settings.event_loop)
    except ValueError as exc:  # model configuration (no API key) and similar start-up errors
        logging.getLogger("agent_service").error("cannot start: %s", exc)
        print(f"agent-service: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"agent-service: cannot start: {_explain(exc, settings)}", file=sys.stderr)
        return EXIT_OS
    except ChannelPreconditionFailed as exc:
        # Declaring the topology met a queue made with other arguments (a changed TTL or retry
        # delay): a traceback here told operators nothing about what to do.
        print(f"agent-service: cannot start: {_explain_drift(exc)}", file=sys.stderr)
        return EXIT_TOPOLOGY
    except AMQPError as exc:
        # Found while writing the troubleshooting guide: an unknown vhost ended in a traceback.
        print(f"agent-service: cannot start: {_explain_refusal(exc, settings)}", file=sys.stderr)
        return EXIT_OS
    finally:
        stop_tracing(tracing)  # the spans still buffered go out before the process ends
    return EXIT_OK


def _explain_refusal(exc: Exception, settings: Settings) -> str:
    from urllib.parse import unquote

    from aiormq.exceptions import InvalidFrameError

    if isinstance(exc, InvalidFrameError) and "Connection.Close" in str(exc):
        path = urlsplit(settings.amqp_url()).path
        vhost = unquote(path[1:]) if len(path) > 1 else "/"
        return (
            f"the broker closed the connection when asked for virtual host {vhost!r}: it does"
            " not exist, or the user may not use it (RABBITMQ_VHOST or the path of"
            " RABBITMQ_URL; rabbitmqctl add_vhost, set_permissions)"
        )
    return f"the broker refused the connection: {exc!r}"


def _explain_drift(exc: Exception) -> str:
    return (
        f"the broker refused the topology ({exc}). A queue exists with other arguments than"
        " these settings give it. List every difference with `harness topology verify"
        " --from-env`; change a queue on a live broker with `harness topology migrate"
        " --from-env` (docs/operations.md, 'Changing a queue argument')"
    )


def _explain(exc: OSError, settings: Settings) -> str:
    """The start-up error in the words of the setting to fix. A TLS failure comes wrapped
    (aiormq's connection error around ssl's), and its raw text blames a 'self-signed
    certificate in certificate chain' when the broker's CA is simply not the one trusted."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, ssl.SSLCertVerificationError):
        return str(exc)
    where = urlsplit(settings.amqp_url())
    return (
        f"the broker at {where.hostname}:{where.port or 5671} presented a TLS certificate this"
        f" service does not trust ({cause.verify_message}); set RABBITMQ_CA_FILE to the CA that"
        " signed it, and use a host in RABBITMQ_URL/RABBITMQ_HOST that the certificate names"
    )


if __name__ == "__main__":
    sys.exit(main())
