"""The lost-GS guard (agent/identify/separators.py): how often it flags a code that lost
nothing, and how often it catches a code that lost its GS, on random codes.

    python -m bench.guard [--codes 20000] [--seed 1] [--quick]

Prints one JSON object on stdout. Each generator makes ``--codes`` codes from
one seeded random stream, so two runs (two versions of the guard) judge the
same codes.

- ``valid``: codes that lost nothing; ``flagged`` is the share the guard
  warns about (a false flag; under the default policy the scan is refused).
  The headline is ``gtin_serial20``: GTIN + a random 20-character serial of
  upper-case letters and digits, the generator of the last round's note.
- ``lost``: the same kinds of code as printed (lot and serial, serial and lot,
  lot and an expiry), with the GS between them dropped, as a wedge that loses
  FNC1 sends them. ``caught`` is the share not read silently: the guard warns,
  or the code does not parse as GS1 at all. ``joined_full`` counts those whose
  joined value is exactly 20 characters, which nothing in the bytes tells from
  one full-length value.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from agent.identify import Identifier, IdentifySettings
from agent.model import Read
from bench.procs import bench_main

GS = "\x1d"
ALNUM = string.ascii_uppercase + string.digits
MIXED = string.ascii_letters + string.digits
Maker = Callable[[random.Random], tuple[str, bool]]  # (code, joined value is 20 long)


def log(message: str) -> None:
    print(f"bench.guard: {message}", file=sys.stderr, flush=True)


def gtin(r: random.Random) -> str:
    body = "".join(r.choice(string.digits) for _ in range(13))
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def text(r: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(r.randint(lo, hi)))


def date(r: random.Random) -> str:
    return f"{r.randint(24, 35):02d}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"


VALID: dict[str, Maker] = {
    "gtin_serial20": lambda r: (f"01{gtin(r)}21{text(r, ALNUM, 20, 20)}", False),
    "gtin_serial20_mixed_case": lambda r: (f"01{gtin(r)}21{text(r, MIXED, 20, 20)}", False),
    "gtin_serial_1_19": lambda r: (f"01{gtin(r)}21{text(r, ALNUM, 1, 19)}", False),
    "gtin_numeric_serial_12_16": lambda r: (
        f"01{gtin(r)}21{text(r, string.digits, 12, 16)}",
        False,
    ),
    "gtin_expiry_lot_gs_serial": lambda r: (
        f"01{gtin(r)}17{date(r)}10{text(r, ALNUM, 1, 20)}{GS}21{text(r, ALNUM, 1, 20)}",
        False,
    ),
}


def _joined(head: str, first: str, ai: str, second: str) -> tuple[str, bool]:
    return f"{head}{first}{ai}{second}", len(first) + len(ai) + len(second) == 20


LOST: dict[str, Maker] = {
    "lot_then_serial": lambda r: _joined(
        f"01{gtin(r)}10", text(r, ALNUM, 1, 20), "21", text(r, ALNUM, 1, 20)
    ),
    "serial_then_lot": lambda r: _joined(
        f"01{gtin(r)}21", text(r, ALNUM, 1, 20), "10", text(r, ALNUM, 1, 20)
    ),
    "lot_then_expiry": lambda r: _joined(f"01{gtin(r)}10", text(r, ALNUM, 1, 20), "17", date(r)),
    "expiry_lot_then_serial20": lambda r: _joined(
        f"01{gtin(r)}17{date(r)}10", text(r, ALNUM, 1, 20), "21", text(r, ALNUM, 20, 20)
    ),
}


def judge(identify: Callable[[Read], Any], code: str) -> tuple[bool, bool]:
    """(the guard warned, the code was refused or not GS1 at all)."""
    read = Read("0", "bench", "barcode", code.encode(), "2026-01-01T00:00:00Z", 0, "b")
    got = identify(read)
    return bool(got.warnings), got.kind != "gtin"


def run(args: argparse.Namespace) -> dict[str, Any]:
    identify = Identifier(IdentifySettings(missing_separator="accept")).identify
    valid: dict[str, Any] = {}
    for name, make in VALID.items():
        r = random.Random(f"{args.seed}:{name}")
        flagged = sum(judge(identify, make(r)[0])[0] for _ in range(args.codes))
        valid[name] = {"codes": args.codes, "flagged": round(flagged / args.codes, 5)}
        log(f"valid {name}: {flagged} of {args.codes} flagged")
    lost: dict[str, Any] = {}
    for name, make in LOST.items():
        r = random.Random(f"{args.seed}:{name}")
        caught = full = full_caught = 0
        for _ in range(args.codes):
            code, joined_full = make(r)
            warned, refused = judge(identify, code)
            hit = warned or refused
            caught += hit
            full += joined_full
            full_caught += hit and joined_full
        lost[name] = {
            "codes": args.codes,
            "caught": round(caught / args.codes, 5),
            "joined_full": full,
            "joined_full_caught": full_caught,
        }
        log(f"lost {name}: {caught} of {args.codes} caught")
    return {
        "false_flag_rate": valid["gtin_serial20"]["flagged"],
        "false_flag_bar": 0.001,
        "valid": valid,
        "lost": lost,
        "codes_per_generator": args.codes,
        "seed": args.seed,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.guard", description=__doc__.split("\n")[0])
    p.add_argument("--codes", type=int, default=20_000, help="codes per generator")
    p.add_argument("--seed", default="1", help="seed of the random codes")
    p.add_argument("--dir", type=Path, help="where the temp dir goes (default: the system's)")
    p.add_argument("--quick", action="store_true", help="a short run for the test suite")
    args = p.parse_args(argv)
    if args.quick:
        args.codes = 500
    if args.codes < 1:
        p.error("--codes >= 1")
    return args


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main(
        "guard",
        f"codes={args.codes:,} seed={args.seed}",
        lambda _tmp: run(args),
        say=log,
        parent=args.dir,
        stdout=stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
