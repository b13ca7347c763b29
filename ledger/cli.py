"""`edgetally ledger …`: serve the ledger, manage the fleet's tokens, see the fleet.

Imported by agent.cli for every command, so only click is imported up here;
the store and server load inside the command that needs them. Errors become
one line here (as in agent.cli, whose helper this module cannot import
without a cycle: agent.cli imports this module while it loads).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from agent.errors import EdgeTallyError
from ledger.valuation.cli import register as _register_valuation

if TYPE_CHECKING:
    from ledger.config import LedgerSettings
    from ledger.store import SqlStore

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeTallyError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _db_options(fn: F) -> F:
    fn = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        help="A ledger TOML config with a [ledger] table (db, password_file, …); "
        "options given here win.",
    )(fn)
    fn = click.option(
        "--password-file",
        type=click.Path(path_type=Path),
        help="File holding the PostgreSQL password (else libpq's PGPASSFILE or ~/.pgpass).",
    )(fn)
    fn = click.option(
        "--db",
        help="The ledger's SQLite file, or a postgresql:// URL without a password "
        "[default: ledger.db].",
    )(fn)
    return fn


def _settings(config_path: Path | None, **given: Any) -> LedgerSettings:
    """The config file's settings (or the defaults), with what the command line gave on top."""
    from dataclasses import replace

    from ledger.config import LedgerSettings, load_ledger_config

    base = load_ledger_config(config_path) if config_path else LedgerSettings()
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def _open(settings: LedgerSettings) -> SqlStore:
    from ledger.store import open_store

    pw = None if settings.password_file is None else Path(settings.password_file)
    return open_store(settings.db, pw, settings.pool_size)


def _store(config_path: Path | None, db: str | None, password_file: Path | None) -> SqlStore:
    """The store a command's ``--config``, ``--db`` and ``--password-file`` name."""
    return _open(_settings(config_path, db=db, password_file=_text(password_file)))


@click.group()
def ledger() -> None:
    """The reference central ledger."""


@ledger.command("serve")
@_db_options
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on [default: 8600].")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Ledger processes sharing the port (PostgreSQL only) [default: 1].",
)
@click.option(
    "--silent-after",
    "silent_after_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds without contact after which an agent is silent and alarmed [default: 900].",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path),
    help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.",
)
@click.option("--tls-key", type=click.Path(path_type=Path), help="The PEM key of --tls-cert.")
@click.option(
    "--valuation",
    help="Costing method for new streams: fifo or average (lifo is refused: IFRS) "
    "[default: the ledger's, else fifo].",
)
@click.option("--currency", help="The ledger's currency, ISO 4217 (EUR, USD, JPY…) [default: EUR].")
@click.option(
    "--alert-webhook",
    help="POST each low-stock alert (raised or cleared) to this URL, retried with backoff.",
)
@_user_errors
def ledger_serve(
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    silent_after_s: float | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    valuation: str | None,
    currency: str | None,
    alert_webhook: str | None,
) -> None:
    """Serve the ledger's HTTP API (/v1/movements, /v1/stock, /v1/entries, /v1/reports/…)."""
    from ledger import serve
    from ledger.valuation.settings import configure

    s = _settings(
        config_path,
        db=db,
        password_file=_text(password_file),
        host=host,
        port=port,
        workers=workers,
        silent_after_s=silent_after_s,
        tls_cert=_text(tls_cert),
        tls_key=_text(tls_key),
        valuation=valuation,
        currency=currency,
        alert_webhook=alert_webhook,
    )
    if s.alert_webhook is not None and not s.alert_webhook.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"expected an http:// or https:// URL, got {s.alert_webhook!r}",
            param_hint="--alert-webhook",
        )
    with _open(s) as store:
        store.write(lambda d: configure(d, s))
    serve(
        s.db,
        s.host,
        s.port,
        workers=s.workers,
        password_file=None if s.password_file is None else Path(s.password_file),
        silent_after_s=s.silent_after_s,
        pool_size=s.pool_size,
        tls_cert=None if s.tls_cert is None else Path(s.tls_cert),
        tls_key=None if s.tls_key is None else Path(s.tls_key),
        alert_webhook=s.alert_webhook,
    )


@ledger.command("add-agent")
@click.argument("agent_id")
@_db_options
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the new token (mode 0600); give this file to the agent.",
)
@click.option(
    "--locations",
    help="Comma-separated locations the agent may move stock from or to [default: any location].",
)
@_user_errors
def ledger_add_agent(
    agent_id: str,
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    token_file: Path,
    locations: str | None,
) -> None:
    """Create or replace an agent's token; the token goes to a file, never to the screen."""
    from agent.cli import open_secret
    from agent.config.loader import ID_RULE, valid_id

    if not valid_id(agent_id):
        raise click.BadParameter(
            f"expected the agent's agent.id: {ID_RULE}; got {agent_id!r}", param_hint="AGENT_ID"
        )
    # The token file is opened before the store changes: a path that cannot be written
    # must not leave the agent with a new token nobody holds.
    with open_secret(token_file) as out:
        with _store(config_path, db, password_file) as store:
            token = store.add_agent(agent_id, _location_list(locations))
        out.write(token + "\n")
    click.echo(f"agent {agent_id}: token written to {token_file}")


@ledger.command("set-locations")
@click.argument("agent_id")
@_db_options
@click.option(
    "--locations",
    help="Comma-separated locations the agent may move stock from or to.",
)
@click.option("--any", "anywhere", is_flag=True, help="Let the agent move stock anywhere.")
@_user_errors
def ledger_set_locations(
    agent_id: str,
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    locations: str | None,
    anywhere: bool,
) -> None:
    """Set where an agent may move stock; a movement elsewhere is rejected with a reason."""
    if anywhere == (locations is not None):
        raise click.UsageError("give either --locations A,B or --any")
    wanted = None if anywhere else _location_list(locations)
    with _store(config_path, db, password_file) as store:
        store.set_locations(agent_id, wanted)
    shown = "any location" if not wanted else ", ".join(wanted)
    click.echo(f"agent {agent_id}: may move stock at {shown}")


def _location_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    out = [part.strip() for part in text.split(",") if part.strip()]
    if not out:
        raise click.BadParameter(
            "expected location codes separated by commas", param_hint="--locations"
        )
    return out


@ledger.group("token")
def token() -> None:
    """The fleet's tokens: one agent each, stored hashed, shown once."""


def _token_file_option(fn: F) -> F:
    return click.option(
        "--token-file",
        type=click.Path(path_type=Path),
        help="Write the token to this file (mode 0600) instead of showing it once here.",
    )(fn)


def _reader_option(fn: F) -> F:
    return click.option(
        "--reader",
        is_flag=True,
        help="A reader's token (the name is the reader's, not an agent's): reads stock, "
        "every journal, the fleet and the alarms; posts nothing.",
    )(fn)


def _role(reader: bool) -> str:
    return "reader" if reader else "agent"


def _hand_over(agent_id: str, token_value: str, token_file: Path | None, what: str) -> None:
    from agent.cli import write_secret

    if token_file is not None:
        write_secret(token_file, token_value)
        click.echo(f"{agent_id}: {what}; token written to {token_file}")
        return
    click.echo(f"{agent_id}: {what}; the token (shown only now, kept only as a hash):")
    click.echo(token_value)


@token.command("create")
@click.argument("agent_id")
@_db_options
@_token_file_option
@_reader_option
@_user_errors
def token_create(
    agent_id: str,
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    token_file: Path | None,
    reader: bool,
) -> None:
    """Create the first token of a new agent (an agent that has one: use rotate)."""
    with _store(config_path, db, password_file) as store:
        value = store.create_token(agent_id, _role(reader))
    _hand_over(f"{_role(reader)} {agent_id}", value, token_file, "token created")


@token.command("rotate")
@click.argument("agent_id")
@_db_options
@_token_file_option
@_reader_option
@_user_errors
def token_rotate(
    agent_id: str,
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    token_file: Path | None,
    reader: bool,
) -> None:
    """Revoke the agent's tokens and issue a new one, in one transaction."""
    with _store(config_path, db, password_file) as store:
        value = store.rotate_token(agent_id, _role(reader))
    _hand_over(
        f"{_role(reader)} {agent_id}",
        value,
        token_file,
        "token rotated, the old one refused from now",
    )


@token.command("revoke")
@click.argument("agent_id")
@_db_options
@_reader_option
@_user_errors
def token_revoke(
    agent_id: str,
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    reader: bool,
) -> None:
    """Revoke every token of the agent; every ledger process refuses it from the next request."""
    with _store(config_path, db, password_file) as store:
        n = store.revoke_token(agent_id, _role(reader))
    if n == 0:
        raise click.ClickException(f"{_role(reader)} {agent_id}: no active token to revoke")
    click.echo(f"{_role(reader)} {agent_id}: {n} token(s) revoked")


@token.command("list")
@_db_options
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@_user_errors
def token_list(
    db: str | None, password_file: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Every token: its agent, a fingerprint (never the token), created and revoked times."""
    from dataclasses import asdict

    with _store(config_path, db, password_file) as store:
        tokens = store.tokens()
    if as_json:
        for t in tokens:
            click.echo(json.dumps(asdict(t)))
        return
    rows = [
        (t.agent, t.role, t.fingerprint, t.created_at or "-", t.revoked_at or "active")
        for t in tokens
    ]
    _table(("name", "role", "fingerprint", "created", "revoked"), rows)


@ledger.command("agents")
@_db_options
@click.option(
    "--silent-after",
    "silent_after_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds without contact that make an agent silent [default: the config's, or 900].",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@_user_errors
def ledger_agents(
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    silent_after_s: float | None,
    as_json: bool,
) -> None:
    """The fleet: each agent's last contact, highest seq, seq gaps, last hour, last error."""
    s = _settings(
        config_path, db=db, password_file=_text(password_file), silent_after_s=silent_after_s
    )
    with _open(s) as store:
        agents = store.agents(s.silent_after_s)
    if as_json:
        for a in agents:
            click.echo(json.dumps(a.to_dict()))
        return
    rows = [
        (
            a.agent + (" SILENT" if a.silent else ""),
            a.last_contact or "never",
            "-" if a.highest_seq is None else str(a.highest_seq),
            _gaps_text(a.missing, a.gaps),
            _regressions_text(a.seq_regressions, a.last_regression),
            str(a.movements_last_hour),
            "any" if a.locations is None else ",".join(a.locations),
            a.last_error or "-",
        )
        for a in agents
    ]
    _table(
        (
            "agent", "last contact", "highest seq", "gaps", "seq regressions", "last hour",
            "locations", "last error",
        ),
        rows,
    )  # fmt: skip


def _regressions_text(count: int, last: str | None) -> str:
    return "none" if not count else f"{count}, last: {last}"


@ledger.group("user")
def user() -> None:
    """Site-dashboard users (the ledger's / page), with scrypt-hashed passwords."""


@user.command("add")
@click.argument("name")
@_db_options
@click.option(
    "--from-file",
    "secret_file",
    type=click.File("r", encoding="utf-8"),
    default="-",
    show_default=True,
    help="Read the user's password from this file ('-': standard input, or a prompt on a "
    "terminal); never from the command line.",
)
@_user_errors
def ledger_user_add(
    name: str,
    db: str | None,
    password_file: Path | None,
    config_path: Path | None,
    secret_file: Any,
) -> None:
    """Create a dashboard user, or set a new password (which logs the user out)."""
    if secret_file.isatty():
        import getpass

        secret = getpass.getpass(f"password for {name}: ")
    else:
        secret = secret_file.readline().rstrip("\r\n")
    with _store(config_path, db, password_file) as store:
        try:
            store.add_user(name, secret)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name}: password set; log in at the ledger's / page")


_register_valuation(ledger, _db_options, _user_errors, _store)


def _gaps_text(missing: int, gaps: list[list[int]]) -> str:
    if not missing:
        return "none"
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:5])
    return f"{missing} missing: {shown}{', …' if len(gaps) > 5 else ''}"


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    for line in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
