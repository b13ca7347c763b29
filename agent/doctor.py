"""`edgetally doctor`: check the machine the agent runs on, and say what to fix.

Each check is a small function returning Findings; none changes anything.
What it looks for are the ways an unattended dock PC or Pi loses data or
stops reporting without anyone noticing: an outbox on tmpfs or a read-only
mount, a disk too small for the outbox cap, a clock that never synchronised,
scanners the service cannot open, a ledger it cannot reach or that does not know
the token as this agent's. A FAIL is anything that stops data flowing (the CLI
exits 1); a WARN is worth a look but does not.
"""

from __future__ import annotations

import grp
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from agent.clock import kernel_clock_synced_probe
from agent.config import Config, read_token
from agent.errors import EdgeTallyError
from agent.preflight import check_devices as check_preflight_devices
from agent.preflight import existing_parent, state_dir_problem
from agent.urls import endpoint, redacted

Level = Literal["ok", "warn", "fail"]
SCANNER_GROUP = "edgetally-scanners"
# Filesystems that lose everything at a power cut or never persist at all.
VOLATILE_FS = frozenset({"tmpfs", "ramfs", "overlay", "squashfs"})


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"\n        fix: {self.fix}" if self.fix else ""
        return f"{self.level.upper():4}  {self.check}: {self.message}{fix}"


@dataclass(frozen=True)
class Mount:
    point: Path
    fstype: str
    options: frozenset[str]


def mounts(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[Mount]:
    """Mount points with their filesystem type and options (mount and superblock options)."""
    out = []
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(" "), right.split(" ")
        if not sep or len(fields) < 6 or len(rest) < 3:
            continue
        point = fields[4].replace("\\040", " ")
        options = set(fields[5].split(",")) | set(rest[2].split(","))
        out.append(Mount(Path(point), rest[0], frozenset(options)))
    return out


def mount_of(path: Path, table: list[Mount]) -> Mount | None:
    """The mount holding ``path``: the longest mount point that is a prefix of it."""
    path = path.resolve()
    best = None
    for m in table:
        if (path == m.point or m.point in path.parents) and (
            best is None or len(m.point.parts) > len(best.point.parts)
        ):
            best = m
    return best


def check_storage(config: Config, table: list[Mount]) -> Iterator[Finding]:
    state_dir = config.agent.state_dir
    where = existing_parent(state_dir)
    problem = state_dir_problem(state_dir)
    if problem is not None:
        yield Finding(
            "fail",
            "state_dir",
            problem,
            "create it for the service user (systemd's StateDirectory= does), or point "
            "agent.state_dir at a folder it can write",
        )
    elif where != state_dir:
        yield Finding("ok", "state_dir", f"{state_dir} does not exist yet; the agent can create it")
    else:
        yield Finding("ok", "state_dir", f"{state_dir} is writable")
    if not where.is_dir():
        return  # a file in the way: nothing to say of its mount or space yet
    mount = mount_of(where, table)
    if mount is not None:
        if "ro" in mount.options:
            yield Finding(
                "fail",
                "mount",
                f"{mount.point} ({mount.fstype}) is mounted read-only",
                "put agent.state_dir on a writable filesystem",
            )
        if mount.fstype in VOLATILE_FS:
            yield Finding(
                "fail",
                "mount",
                f"the outbox would be on {mount.fstype} at {mount.point}: lost at every power cut",
                "put agent.state_dir on persistent storage (the SD card or a disk)",
            )
        risky = sorted(mount.options & {"nobarrier", "barrier=0", "data=writeback"})
        if risky:
            yield Finding(
                "warn",
                "mount",
                f"{mount.point} is mounted with {', '.join(risky)}: a power cut can tear the outbox",
                "remount without it (defaults keep write barriers and ordered data)",
            )
        if not ({"ro"} & mount.options) and mount.fstype not in VOLATILE_FS and not risky:
            yield Finding("ok", "mount", f"{mount.point} ({mount.fstype}) keeps writes durably")
    free = shutil.disk_usage(where).free
    used = config.outbox_path.stat().st_size if config.outbox_path.exists() else 0
    cap = config.outbox.max_bytes
    if free + used < cap:
        yield Finding(
            "warn",
            "space",
            f"{free // 2**20} MiB free for an outbox capped at {cap // 2**20} MiB: the disk fills "
            "before the cap, and reads are then refused early",
            "lower outbox.max_bytes or free space",
        )
    else:
        yield Finding("ok", "space", f"{free // 2**20} MiB free; outbox cap {cap // 2**20} MiB")


def check_clock(synced: Callable[[], bool]) -> Iterator[Finding]:
    if synced():
        yield Finding("ok", "clock", "the kernel says the clock is synchronised (NTP)")
    else:
        yield Finding(
            "warn",
            "clock",
            "the clock is not synchronised: movements carry clock.synced = false",
            "enable time sync (timedatectl set-ntp true) and let it reach a time server; "
            "a Pi has no battery clock",
        )


def device_paths(config: Config) -> Iterator[tuple[str, Path]]:
    """The device nodes configured devices name (a wedge's path, a serial port)."""
    for dev in config.devices:
        for name in ("path", "port"):
            value = getattr(dev.options, name, None)
            if value is not None and str(value).startswith("/dev/"):
                yield dev.id, Path(str(value))


def check_devices(config: Config) -> Iterator[Finding]:
    try:
        group = grp.getgrnam(SCANNER_GROUP)
    except KeyError:
        if config.devices and any(d.driver != "simulated" for d in config.devices):
            yield Finding(
                "warn",
                "scanners",
                f"no group {SCANNER_GROUP}: the udev rules and the unit give scanners through it",
                f"groupadd --system {SCANNER_GROUP} (README: Installing on a dock PC or a Pi)",
            )
    else:
        if os.getuid() != 0 and group.gr_gid not in os.getgroups():
            yield Finding(
                "warn",
                "scanners",
                f"this user is not in {SCANNER_GROUP}; the service is (SupplementaryGroups=)",
            )
    for dev_id, path in device_paths(config):
        if not path.exists():
            yield Finding(
                "warn",
                "device",
                f"{dev_id}: {path} is not there (unplugged?); the agent waits for it",
                "plug it in; `edgetally devices --config ...` shows what is plugged in",
            )
        elif not os.access(path, os.R_OK | os.W_OK):
            yield Finding(
                "fail",
                "device",
                f"{dev_id}: {path} is there but this user cannot open it",
                "install systemd/99-edgetally-scanners.rules and replug, or add the scanner's "
                "vendor to it",
            )
        else:
            yield Finding("ok", "device", f"{dev_id}: {path} can be opened")


def check_ledger(config: Config, transport: httpx.BaseTransport | None = None) -> Iterator[Finding]:
    """Prove the ledger is there and the token is this agent's: ``GET /v1/whoami`` answers
    the token's agent, which must be ``agent.id`` (the ledger refuses every batch of
    another agent's with 403). Checks [sync]'s ledger; a config with [[sync.sink]]
    tables only has none to check here."""
    if config.sync.url is None:
        return
    try:
        token = read_token(config)
    except EdgeTallyError as exc:
        yield Finding("fail", "token", str(exc), "see README: Installing on a dock PC or a Pi")
        return
    url = redacted(config.sync.url.rstrip("/"))  # shown; requests go to the real one
    try:
        with httpx.Client(timeout=5, verify=config.sync.verify_tls, transport=transport) as client:
            health = client.get(endpoint(config.sync.url, "/healthz"))
            who = client.get(
                endpoint(config.sync.url, "/v1/whoami"),
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        detail = str(exc).replace(config.sync.url, url)
        yield Finding(
            "fail",
            "ledger",
            f"{url} did not answer ({type(exc).__name__}: {detail}); nothing is delivered "
            "until it does (reads are kept meanwhile)",
            "check sync.url, the network, the ledger and the unit's IPAddressAllow=",
        )
        return
    if health.status_code == 200:
        yield Finding("ok", "ledger", f"{redacted(str(health.url))} answered 200")
    else:
        yield Finding(
            "fail",
            "ledger",
            f"{redacted(str(health.url))} answered {health.status_code}",
            "check sync.url: the ledger's base URL, e.g. http://ledger:8600",
        )
    yield _token_finding(config, who)


def _token_finding(config: Config, who: httpx.Response) -> Finding:
    add = f"make a token for it with `edgetally ledger add-agent {config.agent.id}` and install it"
    if who.status_code in (401, 403):
        return Finding("fail", "token", f"the ledger refused the token ({who.status_code})", add)
    if who.status_code != 200:
        return Finding(
            "fail",
            "token",
            f"GET /v1/whoami answered {who.status_code}: cannot prove the ledger accepts this "
            "token (is sync.url an EdgeTally ledger, and as new as this agent?)",
            "check sync.url: the ledger's base URL, e.g. http://ledger:8600",
        )
    try:
        agent = who.json().get("agent")
    except (ValueError, AttributeError):
        agent = None
    if not isinstance(agent, str):
        return Finding(
            "fail", "token", "GET /v1/whoami answered 200 without an agent: not an EdgeTally ledger"
        )
    if agent != config.agent.id:
        return Finding(
            "fail",
            "token",
            f"the token belongs to agent {agent!r}, not {config.agent.id!r}: the ledger would "
            "refuse every batch (403)",
            add,
        )
    return Finding("ok", "token", f"the ledger knows this token as agent {agent!r}")


def check_preflight(config: Config) -> Iterator[Finding]:
    """What `run` refuses before its first read (a simulator's script), as in `config check`."""
    for problem in check_preflight_devices(config):
        yield Finding("fail", "config", str(problem))


def diagnose(
    config: Config,
    *,
    offline: bool = False,
    mountinfo: Path = Path("/proc/self/mountinfo"),
    synced: Callable[[], bool] | None = None,
) -> list[Finding]:
    table = mounts(mountinfo)
    findings = [*check_storage(config, table), *check_preflight(config)]
    findings += check_clock(synced or kernel_clock_synced_probe())
    findings += check_devices(config)
    if not offline:
        findings += check_ledger(config)
    return findings
