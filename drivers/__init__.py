"""Device drivers, one module per kind of device, and the registry the config uses."""

from drivers.base import Driver, Found, ReadFactory
from drivers.hidpos import HidPosScanner
from drivers.llrp import LlrpReader
from drivers.serial_scanner import SerialScanner
from drivers.simulated import SimulatedScanner
from drivers.wedge import WedgeScanner

DRIVERS: dict[str, type[Driver]] = {
    "simulated": SimulatedScanner,
    "wedge": WedgeScanner,
    "hidpos": HidPosScanner,
    "serial": SerialScanner,
    "llrp": LlrpReader,
}

__all__ = ["DRIVERS", "Driver", "Found", "ReadFactory", "SimulatedScanner"]
