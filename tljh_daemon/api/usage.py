"""Usage over time: /hub/api/users/{name}/usage (a user's server, ?server= a named one) and
/hub/api/usage (the machine).

Answers are downsampled by the history (at most `points` buckets), so they stay small for
any period. Times are seconds since the epoch (`t` is a bucket's start).
"""

from aiohttp import web

from ..hub import HUB
from ..server_store import describe
from ..usage_history import MAX_POINTS, UsageHistory
from .base import require, user_row

routes = web.RouteTableDef()

DEFAULT_PERIOD = 3600
DEFAULT_POINTS = 60
MIN_PERIOD = 60


def window(request):
    """(period, points) from the query, within the history's retention; a clear 400 otherwise."""
    retention = int(request.app[HUB].usage.history.retention)
    period = _integer(request, "period", DEFAULT_PERIOD, MIN_PERIOD, retention)
    points = _integer(request, "points", DEFAULT_POINTS, 1, MAX_POINTS)
    return period, points


def _integer(request, key, default, low, high):
    text = request.query.get(key)
    if text is None:
        return min(default, high)
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{key} must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{key} must be between {low} and {high}")
    return value


@routes.get("/hub/api/users/{name}/usage")
async def user_usage(request):
    """The CPU and memory of the user's server (`?server=` a named one) over the last `period`
    seconds."""
    server = request.query.get("server", "")
    _, row = await user_row(request, "read:servers", server=server)
    hub = request.app[HUB]
    if server and await hub.servers.row(row["name"], server) is None:
        raise web.HTTPNotFound(text=f"{row['name']} has no server named '{server}'")
    period, points = window(request)
    key = describe(row["name"], server)
    samples = (await hub.usage.read(UsageHistory.servers, [key], period, points))[key]
    body = {"name": row["name"], "server": server, "period": period, "points": points, "samples": samples}
    return web.json_response(body)


@routes.get("/hub/api/usage")
async def machine_usage(request):
    """The machine's CPU, memory and running servers, and the spawns, over the last `period` seconds."""
    await require(request, "read:metrics")
    period, points = window(request)
    return web.json_response({"period": period, "points": points,
                              **await request.app[HUB].usage.read(UsageHistory.machine, period, points)})
