"""The dock page: a live, read-only board of the agent on its health listener."""

from agent.dock.recent import RecentScans, Scan, scan_of

__all__ = ["RecentScans", "Scan", "scan_of"]
