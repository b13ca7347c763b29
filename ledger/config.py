"""The ledger's own TOML config (``ledger serve --config``): one ``[ledger]`` table.

```toml
[ledger]
db = "postgresql://edgetally@db.site.example/edgetally"
password_file = "/etc/edgetally-ledger/pg-password"   # never the password itself
host = "0.0.0.0"
port = 8600
workers = 2
silent_after_s = 900
pool_size = 8
tls_cert = "/etc/edgetally-ledger/cert.pem"   # HTTPS, with tls_key; else plain HTTP
tls_key = "/etc/edgetally-ledger/key.pem"
valuation = "fifo"        # or "average"; per item in the item list
alert_webhook = "https://hooks.site.example/low-stock"
currency = "EUR"
account_inventory = "1300"  # and account_grni, _cogs, _shrinkage, _writeoff, _variance
```

Unknown keys and wrong types are refused naming the file, the key and what
was expected; a password written in ``db`` is refused (it belongs in a file).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agent.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    db: str = "ledger.db"
    password_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 8600
    workers: int = 1
    silent_after_s: float = 900.0
    pool_size: int = 8
    tls_cert: str | None = None
    tls_key: str | None = None
    # Valuation (ledger.valuation): None keeps what the ledger's database holds.
    valuation: str | None = None
    alert_webhook: str | None = None
    currency: str | None = None
    account_inventory: str | None = None
    account_grni: str | None = None
    account_cogs: str | None = None
    account_shrinkage: str | None = None
    account_writeoff: str | None = None
    account_variance: str | None = None


_CHECKS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "db": (str, "a SQLite file path or a postgresql:// URL"),
    "password_file": (str, "a file path"),
    "host": (str, "an address"),
    "port": (int, "a port from 0 to 65535"),
    "workers": (int, "a number of processes, at least 1"),
    "silent_after_s": ((int, float), "seconds, more than 0"),
    "pool_size": (int, "connections per process, at least 1"),
    "tls_cert": (str, "a PEM certificate file"),
    "tls_key": (str, "a PEM key file"),
    "valuation": (str, "fifo or average (lifo is not allowed under IFRS)"),
    "alert_webhook": (str, "an http:// or https:// URL"),
    "currency": (str, "an ISO 4217 code such as EUR"),
    **{
        f"account_{name}": (str, "an account code")
        for name in ("inventory", "grni", "cogs", "shrinkage", "writeoff", "variance")
    },
}


def load_ledger_config(path: Path) -> LedgerSettings:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not TOML ({exc})") from exc
    extra = sorted(set(doc) - {"ledger"})
    if extra:
        raise ConfigError(str(path), extra[0], "unknown table or key; expected [ledger]")
    table = doc.get("ledger", {})
    if not isinstance(table, dict):
        raise ConfigError(str(path), "ledger", "expected a table")
    names = {f.name for f in fields(LedgerSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(
                str(path),
                f"ledger.{key}",
                f"unknown key; expected one of {', '.join(sorted(names))}",
            )
        kind, expected = _CHECKS[key]
        if isinstance(value, bool) or not isinstance(value, kind) or not _in_range(key, value):
            raise ConfigError(str(path), f"ledger.{key}", f"expected {expected}, got {value!r}")
        values[key] = value
    for key in ("password_file", "tls_cert", "tls_key"):
        if key in values:
            values[key] = str((path.parent / values[key]).resolve())
    return LedgerSettings(**values)


def _in_range(key: str, value: Any) -> bool:
    if key == "port":
        return bool(0 <= value <= 65535)
    if key in ("workers", "pool_size"):
        return bool(value >= 1)
    if key == "silent_after_s":
        return bool(value > 0)
    return bool(value) if isinstance(value, str) else True
