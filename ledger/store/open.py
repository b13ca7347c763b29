"""Which backend ``--db`` names: a ``postgresql://`` URL, or a SQLite file path."""

from __future__ import annotations

from pathlib import Path

from ledger.schema import LedgerError
from ledger.store.base import SqlStore
from ledger.store.sqlite import LedgerStore


def is_postgres_url(db: str | Path) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_store(db: str | Path, password_file: Path | None = None, pool_size: int = 8) -> SqlStore:
    """Open (and migrate) the store ``db`` names.

    A PostgreSQL password is never taken from the URL (it would sit in the
    process list and shell history): it comes from ``password_file``, or libpq
    finds it through PGPASSFILE / ~/.pgpass.
    """
    if not is_postgres_url(db):
        return LedgerStore(Path(db))
    from ledger.store.postgres import PgStore, has_password

    url = str(db)
    if has_password(url):
        raise LedgerError(
            "--db: the PostgreSQL URL holds a password; put it in a file "
            "(--password-file, or [ledger] password_file) or in PGPASSFILE instead"
        )
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LedgerError(f"password file {password_file}: {exc.strerror}") from exc
        if not password:
            raise LedgerError(f"password file {password_file}: empty")
    return PgStore(url, password=password, pool_size=pool_size)
