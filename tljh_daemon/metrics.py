"""Prometheus metrics, served at /hub/metrics (names follow JupyterHub's where they exist)."""

from datetime import timedelta

from prometheus_client import CollectorRegistry, Gauge, Histogram

from . import timeutil
from .server_state import ServerState
from .server_store import ServerStore

class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.spawn_duration = Histogram(
            "jupyterhub_server_spawn_duration_seconds", "Time from a start request to the server being ready",
            ["status"], registry=self.registry,
            buckets=(0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120, float("inf")),
        )
        self.request_duration = Histogram(
            "jupyterhub_request_duration_seconds", "Hub request latency", ["method", "handler", "code"],
            registry=self.registry,
        )
        self.running_servers = Gauge("jupyterhub_running_servers", "Running user servers", registry=self.registry)
        self.total_users = Gauge("jupyterhub_total_users", "Users in the database", registry=self.registry)
        self.active_users = Gauge("jupyterhub_active_users", "Users active in the period", ["period"],
                                  registry=self.registry)

    async def refresh(self, db):
        """Gauges are computed at scrape time from the database."""
        self.running_servers.set(await ServerStore(db).count(ServerState.RUNNING))
        self.total_users.set((await db.one("SELECT COUNT(*) FROM users"))[0])
        now = timeutil.now()
        for period, delta in (("24h", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
            since = timeutil.isoformat(now - delta)
            self.active_users.labels(period).set(
                (await db.one("SELECT COUNT(*) FROM users WHERE last_activity >= ?", (since,)))[0])
