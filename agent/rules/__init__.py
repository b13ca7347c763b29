"""Stations and the engine that routes each read to its station (DESIGN §3)."""

from agent.rules.base import Context, Decision, Station
from agent.rules.engine import STATIONS, Rules, Ruling, Tick, identify_for

__all__ = ["STATIONS", "Context", "Decision", "Rules", "Ruling", "Station", "Tick", "identify_for"]
