"""The driver registry: every name listed, each driver imported only when first looked up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drivers import BUILTIN, DRIVERS, Driver, DriverRegistry, SimulatedScanner

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("evdev", "xkbcommon", "usb", "pyudev", "serial", "sllurp")

PROBE = """
import json, sys
from pathlib import Path
from agent.config import load_config
import drivers
heavy = {heavy!r}
def loaded():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
out = {{"names": sorted(drivers.DRIVERS), "at_import": loaded()}}
load_config(Path(sys.argv[1]))
out["after_config"] = loaded()
out["registry_loaded"] = drivers.DRIVERS.loaded()
drivers.DRIVERS["llrp"]
out["after_llrp"] = loaded()
print(json.dumps(out))
"""


def test_a_daemon_imports_only_the_drivers_its_config_names(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t\n")
    config = tmp_path / "agent.toml"
    script = tmp_path / "s.jsonl"
    script.write_text('{"data": "x"}\n')
    config.write_text(
        f'[agent]\nid = "a"\nstate_dir = "{tmp_path}"\n'
        f'[sync]\nurl = "http://127.0.0.1:1"\ntoken_file = "{token}"\n'
        f'[[devices]]\nid = "s1"\ndriver = "simulated"\nscript = "{script}"\n'
    )
    done = subprocess.run(  # a fresh interpreter: this one has imported every driver already
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["names"] == ["hidpos", "llrp", "serial", "simulated", "wedge"]
    assert out["at_import"] == [] and out["after_config"] == []
    assert out["registry_loaded"] == ["simulated"]
    assert out["after_llrp"] == ["sllurp"]


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_name_loads_its_driver_class_once(name: str) -> None:
    cls = DRIVERS[name]
    assert isinstance(cls, type) and issubclass(cls, Driver)
    assert DRIVERS[name] is cls
    assert name in DRIVERS.loaded()
    assert cls.__name__ == BUILTIN[name].partition(":")[2]


def test_a_fake_can_be_put_in_and_taken_out(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fake(SimulatedScanner):
        pass

    monkeypatch.setitem(DRIVERS, "fake", Fake)
    assert DRIVERS["fake"] is Fake and "fake" in DRIVERS and "fake" in sorted(DRIVERS)
    monkeypatch.undo()
    assert "fake" not in DRIVERS and len(DRIVERS) == len(BUILTIN)


def test_a_name_that_is_not_a_driver_class_is_an_error_naming_it() -> None:
    registry = DriverRegistry({"broken": "drivers.framing:finish"})
    with pytest.raises(
        TypeError, match=re.escape("driver 'broken': drivers.framing:finish is not a Driver")
    ):
        registry["broken"]
    with pytest.raises(KeyError):
        registry["nothing"]
