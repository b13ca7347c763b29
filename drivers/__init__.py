"""Device drivers, one module per kind of device, and the registry the config uses.

The registry names every driver but imports one only when it is first asked
for: a driver module pulls in its library (evdev and xkbcommon, pyserial,
pyusb and pyudev, sllurp), several MB each, and a daemon should pay only for
the drivers its config names (DESIGN §8, memory). Every name is listed all
the same, for the config loader's errors, the settings table and
``edgetally devices``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping

from drivers.base import Driver, Found, ReadFactory
from drivers.simulated import SimulatedScanner

# name -> "module:Class", imported on first use
BUILTIN: dict[str, str] = {
    "simulated": "drivers.simulated:SimulatedScanner",
    "wedge": "drivers.wedge.driver:WedgeScanner",
    "hidpos": "drivers.hidpos.driver:HidPosScanner",
    "serial": "drivers.serial_scanner.driver:SerialScanner",
    "llrp": "drivers.llrp:LlrpReader",
}


class DriverRegistry(MutableMapping[str, type[Driver]]):
    """Driver name -> class, each imported from its "module:Class" the first time it is looked up.

    A mapping like the dict it replaces: ``in``, iteration and ``sorted()`` see
    every name without importing anything; ``[name]`` imports that one driver.
    Tests may set or delete entries (``monkeypatch.setitem``) to put in a fake.
    """

    def __init__(self, specs: Mapping[str, str]) -> None:
        self._entries: dict[str, type[Driver] | str] = dict(specs)

    def __getitem__(self, name: str) -> type[Driver]:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = _load(name, entry)
        return entry

    def __setitem__(self, name: str, driver: type[Driver]) -> None:
        self._entries[name] = driver

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def loaded(self) -> list[str]:
        """The names whose class has been imported so far (what this process paid for)."""
        return [name for name, entry in self._entries.items() if not isinstance(entry, str)]


def _load(name: str, spec: str) -> type[Driver]:
    module_name, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise TypeError(f"driver {name!r}: {spec} is not a Driver class")
    return cls


DRIVERS = DriverRegistry(BUILTIN)

__all__ = [
    "BUILTIN",
    "DRIVERS",
    "Driver",
    "DriverRegistry",
    "Found",
    "ReadFactory",
    "SimulatedScanner",
]
