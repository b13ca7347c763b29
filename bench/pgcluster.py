"""A throwaway PostgreSQL cluster: initdb + pg_ctl in a temp dir, on a free loopback port.

For the tests (one per session) and bench.ledger. PostgreSQL refuses to run as
root, so as root the cluster belongs to the ``postgres`` user the Debian
package creates (or to a system user made here when there is none). The
client connects over TCP with a password kept in a libpq passfile, named in
the URL, so no password is ever on a command line.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from agent.demo.ports import free_port

ROLE = "edgetally"
_CLUSTER_USER = "postgres"


class ClusterError(RuntimeError):
    """The cluster could not be set up; the message says why and what to install."""


def pg_bindir() -> Path:
    """Where initdb lives: PATH, pg_config, or the Debian layout (newest version)."""
    if shutil.which("initdb"):
        return Path(shutil.which("initdb") or "").parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    raise ClusterError(
        "PostgreSQL's initdb was not found: install PostgreSQL "
        "(Debian: `sh scripts/system-deps --test`, which installs `postgresql`)"
    )


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


class PgCluster:
    """Start with `start`, stop with `stop`; `restart` keeps data and port."""

    def __init__(self, fsync: bool = False, max_connections: int = 300) -> None:
        self.bindir = pg_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="edgetally-pg-"))
        self.data = self.root / "data"
        self.secrets = Path(tempfile.mkdtemp(prefix="edgetally-pgpass-"))
        self.password = secrets.token_urlsafe(18)
        self.passfile = self.secrets / "pgpass"
        self.password_file = self.secrets / "password"
        self._fsync = fsync
        self._max_connections = max_connections
        self._user: str | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> PgCluster:
        self._user = _cluster_user()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self._user is not None:
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", ROLE, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
            "--no-instructions", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "on" if self._fsync else "off",
            "max_connections": str(self._max_connections),
            "shared_buffers": "'64MB'",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self.passfile.write_text(f"127.0.0.1:{self.port}:*:{ROLE}:{self.password}\n")
        self.passfile.chmod(0o600)
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o600)
        self.pg_start()
        return self

    def pg_start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def pg_stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(ClusterError):
            self.pg_stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.secrets, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run(
            [str(self.bindir / tool), *args],
            user=self._user,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise ClusterError(f"{tool} failed ({proc.returncode}): {tail}")

    # -- databases -------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL with no password in it: the password is in the passfile it names."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{dbname}?passfile={self.passfile}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (optionally a copy of ``template``); its URL."""
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(self.url(), autocommit=True) as conn:
                    conn.execute(sql.encode())
                return self.url(name)
            except psycopg.errors.ObjectInUse:
                # The template's last connection is still closing (pool shutdown).
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _cluster_user() -> str | None:
    """None when we are not root (the cluster runs as us); else a non-root system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_CLUSTER_USER)
        return _CLUSTER_USER
    except KeyError:
        pass
    name = "edgetally-pg"
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        return name
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"cannot create the user {name} to run PostgreSQL: {proc.stderr.strip()}"
        )
    return name
