"""Keyboard-wedge scanners through evdev: matched, grabbed, decoded in their own layout.

A wedge scanner is a USB or Bluetooth keyboard that types what it scans. We
open its /dev/input/event node, grab it (so scans never type into a console
or desktop), decode the keys with the scanner's layout (drivers/keymap.py)
and frame them into scans: a scan ends on the configured suffix key, or when
no key has come for ``inter_key_timeout_ms``.

Three layers, so tests can fake only what this machine lacks:

- ``ScanAssembler``: evdev events in, finished ``Scan``s out. Pure.
- ``InputSystem`` / ``EventDevice`` / ``Hotplug``: the small seams to udev and
  evdev (list devices, open one, hotplug changes). ``LinuxInput`` is the real
  one (pyudev + evdev); tests give fakes with real file descriptors.
- ``WedgeScanner``: the driver. It opens even when the scanner is absent
  (``present=False``) and follows udev: a scanner that appears is opened once
  its permissions settle, one that goes (ENODEV) is closed and waited for
  again, under the same device id, so a Bluetooth handheld that sleeps and
  wakes is the same device. No threads and no polling: the device and udev
  file descriptors are watched with ``loop.add_reader`` only while waiting.

Modules: ``settings`` (and matching), ``linux`` (the seams and
``LinuxInput``), ``assembler`` (``ScanAssembler``) and ``driver``
(``WedgeScanner``); the key decoder is ``drivers.keymap``.
"""

from __future__ import annotations

from drivers.wedge.assembler import (
    ScanAssembler,
    key_name,
)
from drivers.wedge.driver import (
    OPEN_ATTEMPTS,
    WedgeScanner,
)
from drivers.wedge.linux import (
    BY_ID,
    Change,
    EventDevice,
    Hotplug,
    InputSystem,
    LinuxInput,
    describe,
)
from drivers.wedge.settings import (
    WedgeSettings,
)

__all__ = [
    "BY_ID",
    "OPEN_ATTEMPTS",
    "Change",
    "EventDevice",
    "Hotplug",
    "InputSystem",
    "LinuxInput",
    "ScanAssembler",
    "WedgeScanner",
    "WedgeSettings",
    "describe",
    "key_name",
]
