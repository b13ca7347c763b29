"""The `edgetally` command. Errors become one clear line here, at the edge, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from agent.config import load_config, read_secrets, read_token
from agent.errors import EdgeTallyError
from ledger.cli import ledger as ledger_commands

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn our errors (bad input, bad config, bad files) into a message and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeTallyError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgetally")
def main() -> None:
    """EdgeTally: barcode and RFID reads to inventory movements, delivered exactly once."""


def config_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--config", "config_path", required=True, type=click.Path(path_type=Path), help=help
    )


@main.command()
@config_option("The agent's TOML config.")
@user_errors
def run(config_path: Path) -> None:
    """Run the agent daemon until SIGTERM or SIGINT."""
    # httpx imports its own command line (rich, pygments: ~2.6 MB resident) whenever
    # click and rich are installed; the daemon never uses it (encode/httpx#3547).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from agent import logs
    from agent.daemon import Daemon
    from agent.preflight import preflight

    config = load_config(config_path)
    token = read_token(config)
    for sink in config.sinks:  # every sink's secret, before anything starts
        if sink.where != "sync":
            read_secrets(config, sink)
    problems = preflight(config)
    if problems:
        raise problems[0]
    logs.setup(config.agent.log_level)
    asyncio.run(Daemon(config, token).run(handle_signals=True))


@main.command()
@config_option("The agent's TOML config (to find its outbox and its /status).")
@click.option("--once", is_flag=True, help="Print once and exit (default: a live view).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON once, for scripts.")
@user_errors
def status(config_path: Path, once: bool, as_json: bool) -> None:
    """Show stations, devices, outbox, sync and alarms; live until Ctrl+C."""
    import time

    from rich.console import Console
    from rich.live import Live

    from agent.status import agent_status, render

    config = load_config(config_path)
    if as_json:
        click.echo(json.dumps(agent_status(config), indent=2))
        return
    console = Console()
    if once:
        console.print(render(agent_status(config)))
        return
    previous: tuple[float, int] | None = None
    with Live(console=console, auto_refresh=False) as live:
        try:
            while True:
                report = agent_status(config)
                now, delivered = time.monotonic(), report["outbox"]["delivered"]
                if previous is not None:
                    report["rate_per_s"] = (delivered - previous[1]) / (now - previous[0])
                previous = (now, delivered)
                live.update(render(report), refresh=True)
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--forever", is_flag=True, help="Replay the dock session in a loop until Ctrl+C.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Replay speed; 0 replays as fast as possible.",
)
@click.option(
    "--sinks",
    default=None,
    metavar="LIST",
    help="Deliver to these sinks too: ledger,mqtt,epcis (mqtt starts a local mosquitto, "
    "epcis a second ledger), or all; per-sink counts at the end.",
)
@user_errors
def demo(forever: bool, speed: float, sinks: str | None) -> None:
    """Run a ledger, an agent and a simulated dock scanner, and show stock on hand change."""
    from agent.demo import run_demo

    kinds: tuple[str, ...] = ()
    if sinks is not None:
        from agent.demo.sinks import parse_sinks

        kinds = parse_sinks(sinks)
    sys.exit(asyncio.run(run_demo(forever=forever, speed=speed, echo=click.echo, sinks=kinds)))


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Match what is found against this agent config's [[devices]].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@user_errors
def devices(config_path: Path | None, as_json: bool) -> None:
    """List scanners and readers plugged in, with stable ids, and why each matches or not."""
    from agent.devices import render_lines, survey

    config = load_config(config_path) if config_path is not None else None
    result = survey(config)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    for line in render_lines(result, config):
        click.echo(line)


@main.command()
@config_option("The agent's TOML config.")
@click.option("--offline", is_flag=True, help="Skip the ledger and token checks.")
@user_errors
def doctor(config_path: Path, offline: bool) -> None:
    """Check the machine (storage, mounts, clock, scanner access, ledger) and say what to fix."""
    from agent.doctor import diagnose

    findings = diagnose(load_config(config_path), offline=offline)
    for finding in findings:
        click.echo(finding.line())
    failed = sum(f.level == "fail" for f in findings)
    warned = sum(f.level == "warn" for f in findings)
    click.echo(f"{failed} to fix, {warned} to look at, {len(findings) - failed - warned} ok")
    if failed:
        sys.exit(1)


@main.group()
def sim() -> None:
    """Simulated devices for demos and tests."""


@sim.command("llrp")
@click.option(
    "--scenario",
    default="portal-inbound",
    show_default=True,
    help="Scenario file (.toml/.json) or a bundled name: portal-inbound, portal-outbound, "
    "portal-crossread, portal-two-pallets, zone-shelf, zone-move, flood.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5084,
    show_default=True,
    help="TCP port (LLRP's is 5084).",
)
@click.option(
    "--quirks",
    default="",
    metavar="NAME,...",
    help="Answer like readers seen in the field (comma-separated, or all): events-unsupported, "
    "delete-all-refused, immediate-never-starts, tid-epcs, partial-frame-at-close. "
    "Added to the scenario's own quirks.",
)
@user_errors
def sim_llrp(scenario: str, host: str, port: int, quirks: str) -> None:
    """Run an LLRP reader emulator that sllurp and the LLRP driver connect to."""
    from agent.sim import sim_llrp_command

    sim_llrp_command(scenario, host, port, quirks)


@main.group()
def outbox() -> None:
    """List, export and retry what the agent's outbox holds."""


state_option = click.option(
    "--state",
    type=click.Choice(["pending", "delivered", "rejected", "cancelled"]),
    help="Only movements in this state.",
)


@outbox.command("list")
@config_option("The agent's TOML config (to find its outbox).")
@state_option
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="At most this many movements.",
)
@click.option("--since-seq", type=click.IntRange(0), default=0, help="Start after this seq.")
@click.option(
    "--oldest-first", is_flag=True, help="Oldest first (the table's default is newest first)."
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines in seq order, for scripts.")
@user_errors
def outbox_list(
    config_path: Path, state: Any, limit: int, since_seq: int, oldest_first: bool, as_json: bool
) -> None:
    """Movements with their state, time, PO/ASN ref and the ledger's reason; newest first."""
    from agent.outbox.tools import count_movements, list_movements, table_lines

    cfg = load_config(config_path)
    path, sinks = cfg.outbox_path, tuple(s.name for s in cfg.sinks)
    if as_json:
        for row in list_movements(path, state, limit, since_seq, sinks=sinks):
            click.echo(json.dumps(row))
        return
    rows = list_movements(path, state, limit, since_seq, newest_first=not oldest_first, sinks=sinks)
    if not rows:
        click.echo("no movements" + (f" in state {state}" if state else ""))
        return
    for line in table_lines(rows):
        click.echo(line)
    total = count_movements(path, state, since_seq)
    if total > len(rows):
        order = "oldest" if oldest_first else "newest"
        click.echo(f"{len(rows)} of {total} shown ({order} first); --limit {total} for all")


@outbox.command("export")
@config_option("The agent's TOML config (to find its outbox).")
@state_option
@click.option("--since-seq", type=click.IntRange(0), default=0, help="Start after this seq.")
@user_errors
def outbox_export(config_path: Path, state: Any, since_seq: int) -> None:
    """Every movement as JSON lines, as the ledger receives it, with its outbox state."""
    from agent.outbox.tools import export_movements

    for line in export_movements(load_config(config_path).outbox_path, state, since_seq):
        click.echo(line)


@outbox.command("retry")
@config_option("The agent's TOML config (to find its outbox).")
@click.argument("seqs", nargs=-1, type=click.IntRange(1))
@click.option("--all-rejected", is_flag=True, help="Every rejected movement.")
@user_errors
def outbox_retry(config_path: Path, seqs: tuple[int, ...], all_rejected: bool) -> None:
    """Send rejected movements again (after fixing the cause at the ledger); agent stopped."""
    from agent.outbox import Outbox
    from agent.outbox.tools import retry_rejected

    if bool(seqs) == all_rejected:
        raise click.UsageError("give the seqs to retry, or --all-rejected")
    cfg = load_config(config_path)
    box = Outbox.open(
        cfg.outbox_path, cfg.agent.id, cfg.outbox.max_bytes, sinks=tuple(s.name for s in cfg.sinks)
    )
    try:
        n = retry_rejected(box, list(seqs) if seqs else None)
    finally:
        box.close()
    click.echo(f"{n} rejected movement(s) set to pending; the agent sends them when it runs")


@main.group()
def config() -> None:
    """Check and show agent configs."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@user_errors
def config_check(file: Path) -> None:
    """Check a config file (keys, values, token file, state_dir, scripts) and say what is wrong."""
    import os

    from agent.preflight import preflight

    cfg = load_config(file)
    # Outside the service, a unit's config: systemd gives the secrets and makes state_dir.
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    secret_files = [str(p) for s in cfg.sinks for p in s.options.secret_files().values()]
    late = [f for f in secret_files if "${CREDENTIALS_DIRECTORY}" in f]
    for_systemd = bool(late) and not creds
    problems: list[EdgeTallyError] = [*preflight(cfg, systemd_creates=for_systemd)]
    token = (
        "token file readable and private"
        if len(secret_files) < 2
        else ("secret files readable and private")
    )
    if for_systemd:
        token = "secrets from systemd's LoadCredential at run time, not checked here"
        if len(late) == 1 and late[0] == str(cfg.sync.token_file):
            token = "token from systemd's LoadCredential at run time, not checked here"
    for sink in cfg.sinks:
        if for_systemd and any(
            "${CREDENTIALS_DIRECTORY}" in str(p) for p in sink.options.secret_files().values()
        ):
            continue
        try:
            if sink.where == "sync":
                read_token(cfg)
            else:
                read_secrets(cfg, sink)
        except EdgeTallyError as exc:
            problems.append(exc)
    for problem in problems[:-1]:
        click.echo(f"Error: {problem}", err=True)
    if problems:
        raise problems[-1]
    click.echo(
        f"{file}: ok (agent {cfg.agent.id}, {len(cfg.devices)} device(s), "
        f"{len(cfg.stations)} station(s), {len(cfg.sinks)} sink(s) "
        f"({', '.join(f'{s.name}: {s.type}' for s in cfg.sinks)}), outbox {cfg.outbox_path}; {token})"
    )


@config.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@user_errors
def config_show(file: Path) -> None:
    """Print the config in effect, defaults included, as JSON (the token is never shown)."""
    click.echo(json.dumps(load_config(file).shown(), indent=2))


main.add_command(ledger_commands)


@contextlib.contextmanager
def open_secret(path: Path) -> Iterator[TextIO]:
    """A new file (mode 0600 from its creation) beside ``path``, renamed onto ``path``
    once the secret is written; removed, and ``path`` untouched, if it never comes.

    Never opening ``path`` itself means an existing file's wider mode, its other
    hard links, a symlink it is, or a reader holding it open, never see the secret.
    """
    import os
    import secrets

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise click.ClickException(
            f"--token-file {path}: cannot write it ({exc.strerror})"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_secret(path: Path, secret: str) -> None:
    """``secret`` into ``path`` as a new 0600 file renamed into place (see `open_secret`)."""
    with open_secret(path) as f:
        f.write(secret + "\n")


if __name__ == "__main__":
    main()


@main.command("replay")
@click.argument("reads", type=click.Path(path_type=Path))
@config_option("The agent config whose stations and rules decide the reads.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help="JSON lines (one per read) or a table.",
)
@user_errors
def replay_command(reads: Path, config_path: Path, fmt: str) -> None:
    """Dry-run recorded reads (JSON lines) through identify and the rules: no outbox, no network."""
    from agent.replay import ReplayError, replay, table

    config = load_config(config_path)
    try:
        text = reads.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{reads}: cannot read the recording ({exc})") from exc
    notes: list[str] = []
    results = replay(config, text.splitlines(), str(reads), notes)
    if fmt == "json":
        for r in results:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        for note in notes:
            click.echo(f"note: {note}", err=True)
        return
    from rich.console import Console
    from rich.measure import Measurement

    # As wide as the table needs (a pipe gets 80 columns): GTINs and EPCs are never cut.
    console = Console()
    view = table(list(results))
    wide = Measurement.get(console, console.options.update(width=10_000), view).maximum
    Console(width=max(console.width, wide)).print(view)
    for note in notes:
        click.echo(f"note: {note}", err=True)
