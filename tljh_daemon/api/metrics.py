"""GET /hub/metrics: Prometheus metrics."""

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..hub import HUB
from .base import require

routes = web.RouteTableDef()


@routes.get("/hub/metrics")
async def metrics(request):
    await require(request, "read:metrics")
    hub = request.app[HUB]
    await hub.metrics.refresh(hub.db)
    return web.Response(body=generate_latest(hub.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
