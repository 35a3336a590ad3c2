"""/hub/health, /hub/api/services and /hub/api/shutdown."""

import asyncio
import logging
import os
import signal

from aiohttp import web

from .. import systemd
from ..hub import HUB
from ..server_state import ServerState
from .base import json_body, require

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/hub/health")
@routes.get("/hub/api/health")
async def health(request):
    """200 while the hub can serve and save state; 503 with the reason when it cannot
    (e.g. its disk is full), so monitors and load balancers notice."""
    problem = await request.app[HUB].storage.problem()
    if problem:
        return web.json_response(
            {"status": 503, "message": f"The hub cannot save changes: {problem}"}, status=503)
    return web.json_response({"status": "ok"})


@routes.get("/hub/api/services")
async def list_services(request):
    await require(request, "list:services")
    hub = request.app[HUB]
    services = hub.service_manager.services if hub.service_manager else {}
    return web.json_response({s.name: s.model() for s in services.values()})


@routes.post("/hub/api/shutdown")
async def shutdown(request):
    await require(request, "shutdown")
    hub = request.app[HUB]
    body = await json_body(request, required=False)
    stop_servers, stop_proxy = body.get("servers", False), body.get("proxy", True)
    if not isinstance(stop_servers, bool) or not isinstance(stop_proxy, bool):
        raise web.HTTPBadRequest(text="servers and proxy must be true or false")

    async def later():
        await asyncio.sleep(0.2)  # let the 202 reach the client
        if stop_servers:
            await asyncio.gather(*(hub.servers.stop(r.user) for r in
                                   await hub.servers.store.in_states(ServerState.PENDING, ServerState.RUNNING)))
        if stop_proxy:
            await hub.traefik.close()  # no more restarts
            if hub.mode == "systemd":
                await systemd.systemctl("stop", "tljh-traefik.service")
            else:
                await asyncio.to_thread(hub.traefik.stop)
        log.warning("Shutting down on request (servers stopped: %s, proxy stopped: %s)", stop_servers, stop_proxy)
        if hub.mode == "systemd":
            await systemd.systemctl("stop", "--no-block", "tljh-daemon.service")
        os.kill(os.getpid(), signal.SIGTERM)

    hub.background.append(asyncio.create_task(later()))
    return web.json_response({"status": 202, "message": "Shutting down"}, status=202)
