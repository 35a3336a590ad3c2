"""Prometheus metrics at /hub/metrics (names follow JupyterHub's where they exist)."""

import time
from datetime import timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest

from . import timeutil
from .api.base import require

routes = web.RouteTableDef()


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

    def refresh(self, db):
        """Gauges are computed at scrape time from the database."""
        self.running_servers.set(db.one("SELECT COUNT(*) FROM servers WHERE state='running'")[0])
        self.total_users.set(db.one("SELECT COUNT(*) FROM users")[0])
        now = timeutil.now()
        for period, delta in (("24h", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
            since = timeutil.isoformat(now - delta)
            self.active_users.labels(period).set(
                db.one("SELECT COUNT(*) FROM users WHERE last_activity >= ?", (since,))[0])


def handler_name(request):
    """The route pattern (not the concrete path), so labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def measure(request, handler):
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        request.app["hub"].metrics.request_duration.labels(
            request.method, handler_name(request), str(status)).observe(time.perf_counter() - start)


@routes.get("/hub/metrics")
async def metrics(request):
    require(request, "read:metrics")
    hub = request.app["hub"]
    hub.metrics.refresh(hub.db)
    return web.Response(body=generate_latest(hub.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
