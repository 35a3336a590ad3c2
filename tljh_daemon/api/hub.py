"""/hub/api and /hub/api/info."""

import sys

from aiohttp import web

from .. import __version__
from ..hub import HUB
from .base import require

routes = web.RouteTableDef()


@routes.get("/hub/api")
@routes.get("/hub/api/")
async def api_root(request):
    return web.json_response({"version": request.app[HUB].jupyterhub_version})


@routes.get("/hub/api/info")
async def api_info(request):
    await require(request, "read:hub")
    hub = request.app[HUB]
    return web.json_response(
        {
            "version": hub.jupyterhub_version,
            "tljh_daemon_version": __version__,
            "python": sys.version,
            "sys_executable": sys.executable,
            "spawner": {"class": type(hub.servers.spawner).__name__, "version": __version__},
            "authenticator": {"class": type(hub.authenticator).__name__, "version": __version__},
        }
    )
