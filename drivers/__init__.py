"""Device drivers, one module per kind of device, and the registry the config uses."""

from drivers.base import Driver, Found, ReadFactory
from drivers.simulated import SimulatedScanner

DRIVERS: dict[str, type[Driver]] = {
    "simulated": SimulatedScanner,
}

__all__ = ["DRIVERS", "Driver", "Found", "ReadFactory", "SimulatedScanner"]
