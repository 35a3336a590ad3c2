"""/hub/health, /hub/api/services[/<name>] and /hub/api/shutdown."""

import asyncio
import logging
import os
import signal

from aiohttp import web

from .. import scopes, systemd
from ..hub import HUB
from ..server_state import ServerState
from .base import authenticated, json_body, require

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


#: which fields of a service model each scope lets the holder read (as JupyterHub filters them)
SERVICE_MODEL_FIELDS = {
    "read:services": None,  # all
    "read:services:name": {"kind", "name"},
    "read:roles:services": {"kind", "name", "roles"},
}


def visible_service(identity, service):
    """`service`'s model with the fields `identity` may read about it (None: none at all)."""
    model = service.model()
    allowed = set()
    for scope, fields in SERVICE_MODEL_FIELDS.items():
        if identity.can(scope, service=service.name):
            if fields is None:
                return model
            allowed |= fields
    return {key: value for key, value in model.items() if key in allowed} if allowed else None


def _services(request):
    return request.app[HUB].service_manager.services


@routes.get("/hub/api/services")
async def list_services(request):
    """The services the caller may list (`list:services`, or `list:services!service=<name>`),
    each with the fields its read scopes allow, as JupyterHub answers (e.g. nbgrader's course
    list: `list:services` and `read:services!service=<course>`)."""
    identity = await authenticated(request)
    if not scopes.held_anywhere(identity.scopes, "list:services"):
        raise web.HTTPForbidden(text="Action is not authorized with current scopes; requires any of [list:services]")
    listed = identity.grant("list:services")
    models = {}
    for name, service in _services(request).items():
        if listed.allows(service=name):
            models[name] = visible_service(identity, service) or {"kind": "service", "name": name}
    return web.json_response(models)


@routes.get("/hub/api/services/{name}")
async def get_service(request):
    identity = await authenticated(request)
    name = request.match_info["name"]
    service = _services(request).get(name)
    model = visible_service(identity, service) if service is not None else None
    if model is None:
        if service is not None or not any(scopes.held_anywhere(identity.scopes, s) for s in SERVICE_MODEL_FIELDS):
            raise web.HTTPForbidden(text="Action is not authorized with current scopes; requires any of "
                                         "[read:services, read:services:name, read:roles:services]")
        raise web.HTTPNotFound(text=f"No such service: {name}")
    return web.json_response(model)


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
            await asyncio.gather(*(hub.servers.stop(r.user, r.name) for r in
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
