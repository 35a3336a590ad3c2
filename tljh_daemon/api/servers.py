"""Server endpoints: activity reports, start/stop, and the spawn progress event stream."""

import asyncio
import json
import logging
from datetime import timedelta

from aiohttp import web

from .. import server_store, timeutil, users
from ..hub import HUB
from ..profiles import ProfileRefused
from ..server_state import DOWN, ServerState
from ..server_store import InvalidDisplayName
from ..servers import NamedServerRefused, NoSuchServer, ServerBusy, ServerNameTaken, SpawnLimitReached
from .base import authenticated, json_body, user_row
from .models import server_model

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

KEEPALIVE_SECONDS = 15
FUTURE_ACTIVITY_SLACK = timedelta(minutes=59)


def _parse_time(value, key):
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text=f"{key} must be an ISO 8601 timestamp string")
    try:
        when = timeutil.parse(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{key} is not an ISO 8601 timestamp: {value!r}") from None
    # JupyterHub's rule: a clock may be a little ahead, a timestamp an hour ahead is wrong
    # (and would pin the user's activity in the future, so the culler never sees them idle).
    if when - timeutil.now() > FUTURE_ACTIVITY_SLACK:
        raise web.HTTPBadRequest(
            text=f"Rejecting activity from more than an hour in the future: {timeutil.isoformat(when)}")
    return when


@routes.post("/hub/api/users/{name}/activity")
async def activity(request):
    _, row = await user_row(request, "users:activity")
    hub = request.app[HUB]
    body = await json_body(request)
    name = row["name"]
    if "last_activity" in body:
        await hub.db.run(users.touch_activity, name, _parse_time(body["last_activity"], "last_activity"))
    servers = body.get("servers", {})
    if not isinstance(servers, dict):
        raise web.HTTPBadRequest(text="servers must be an object of server name to activity")
    for server_name, info in servers.items():
        if not isinstance(info, dict) or "last_activity" not in info:
            raise web.HTTPBadRequest(text=f"servers.{server_name} needs a last_activity")
        when = _parse_time(info["last_activity"], f"servers.{server_name}.last_activity")
        if await hub.servers.row(name, server_name) is None:
            raise web.HTTPBadRequest(text=f"No such server {server_name!r} for user {name}")
        await hub.servers.store.touch(name, timeutil.isoformat(when), name=server_name)
        await hub.db.run(users.touch_activity, name, when)
    return web.Response(status=200)  # JupyterHub's handler finishes with tornado's default 200, no body


def checked_display_name(value):
    """A display name from a request body (server_store.display_name); None when none is
    given; a 400 naming the problem."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text="display_name must be a string")
    try:
        return server_store.display_name(value)
    except InvalidDisplayName as e:
        raise web.HTTPBadRequest(text=f"Invalid display_name {value!r}: it {e}") from None


async def server_request(request):
    """JupyterHub 6's body of a start (POST) or create (PUT): (user_options, display_name).
    {"display_name": ..., "user_options": ...}; a body with neither key is the user_options
    themselves (before JupyterHub 6). user_options None (no body, null): the previous ones."""
    body = await json_body(request, required=False)
    if not body:
        return None, None
    if "user_options" not in body and "display_name" not in body:
        return body, None
    options = body.get("user_options")
    if options is not None and not isinstance(options, dict):
        raise web.HTTPBadRequest(text="user_options must be an object or null")
    return options, checked_display_name(body.get("display_name"))


def refused(e):
    """The HTTP error for a refused start, create or change of a server."""
    if isinstance(e, ProfileRefused):  # an unknown profile (400), or one outside the user's groups (403)
        return (web.HTTPForbidden if e.status == 403 else web.HTTPBadRequest)(text=str(e))
    if isinstance(e, SpawnLimitReached):
        return web.HTTPTooManyRequests(text=str(e), headers={"Retry-After": str(e.retry_after)})
    if isinstance(e, NoSuchServer):
        return web.HTTPNotFound(text=str(e))
    if isinstance(e, ServerNameTaken):
        return web.HTTPConflict(text=str(e))
    return web.HTTPBadRequest(text=str(e))  # NamedServerRefused, ServerBusy


REFUSALS = (NamedServerRefused, ProfileRefused, ServerBusy, SpawnLimitReached, NoSuchServer, ServerNameTaken)


def any_server(method, suffix=""):
    """Route `method` on a server's paths, the default one's and a named one's. JupyterHub's
    router takes an empty server name as the default server: /users/<name>/servers/ is
    /users/<name>/server (JupyterHub's start/stop example uses it)."""
    def register(handler):
        for path in ("server", "servers/", "servers/{server}"):
            routes.route(method, f"/hub/api/users/{{name}}/{path}{suffix}")(handler)
        return handler
    return register


async def target_server(request, scope):
    """(hub, users row, server name: '' the default) of the request's URL, `scope` checked on
    that server (so `!server=<user>/<server>` filters apply)."""
    server = request.match_info.get("server", "")
    _, row = await user_row(request, scope, server=server)
    return request.app[HUB], row, server


@any_server("POST")
async def start_server(request):
    hub, row, server = await target_server(request, "start:servers")
    user_options, display_name = await server_request(request)  # e.g. {"profile": "big"}
    if user_options is None:
        user_options = await hub.servers.previous_options(row["name"], server)
    try:
        await hub.servers.start(row, user_options, server, display_name if server else None)
    except REFUSALS as e:
        raise refused(e) from None
    return web.Response(status=202)


@routes.get("/hub/api/users/{name}/servers/{server}")
async def get_server(request):
    """JupyterHub 6: one server's model, stopped or not; 404 when there is no such server."""
    hub, row, server = await target_server(request, "read:servers")
    model = await server_model(hub, row["name"], include_stopped=True, server=server)
    if model is None:
        raise web.HTTPNotFound(text=f"{row['name']} has no server named '{server}'")
    return web.json_response(model)


@routes.put("/hub/api/users/{name}/servers/{server}")
async def create_server(request):
    """JupyterHub 6: make a named server without starting it (409 when it exists)."""
    hub, row, server = await target_server(request, "start:servers")
    options, display_name = await server_request(request)
    try:
        created = await hub.servers.create(row, server, options or None, display_name)
    except REFUSALS as e:
        raise refused(e) from None
    if not created:
        raise web.HTTPConflict(text=f"{row['name']} already has a server named '{server}'")
    model = await server_model(hub, row["name"], include_stopped=True, server=server)
    return web.json_response(model, status=201)


MODIFIABLE = ("name", "display_name", "user_options")


@any_server("PATCH")
async def modify_server(request):
    """JupyterHub 6: rename a stopped server, or set its display name or next user_options."""
    hub, row, server = await target_server(request, "start:servers")
    body = await json_body(request)
    if not body:
        raise web.HTTPBadRequest(text="Must specify at least one field to modify.")
    unexpected = sorted(set(body) - set(MODIFIABLE))
    if unexpected:
        raise web.HTTPBadRequest(text=f"Unexpected fields: {', '.join(unexpected)}; supported fields: "
                                      f"{', '.join(MODIFIABLE)}")
    new_name = body.get("name")
    if new_name is not None and not isinstance(new_name, str):
        raise web.HTTPBadRequest(text="name must be a string")
    options = body.get("user_options")
    if "user_options" in body and not isinstance(options, dict):
        raise web.HTTPBadRequest(text="user_options must be an object")
    try:
        await hub.servers.modify(row, server, new_name, checked_display_name(body.get("display_name")), options)
    except REFUSALS as e:
        raise refused(e) from None
    model = await server_model(hub, row["name"], include_stopped=True, server=new_name or server)
    return web.json_response(model)


@any_server("DELETE")
async def stop_server(request):
    """Stop a server; a named one with {"remove": true} is deleted too (JupyterHub's rules)."""
    hub, row, server = await target_server(request, "delete:servers")
    name = row["name"]
    remove = (await json_body(request, required=False)).get("remove", False)
    if not isinstance(remove, bool):
        raise web.HTTPBadRequest(text="remove must be true or false")
    if server:
        if not hub.servers.settings.named_servers:
            raise web.HTTPBadRequest(text="Named servers are not enabled.")
        if await hub.servers.row(name, server) is None:
            raise web.HTTPNotFound(text=f"{name} has no server named '{server}'")
    elif remove:
        raise web.HTTPBadRequest(text="Cannot delete the default server")
    if remove:
        task = asyncio.create_task(hub.servers.remove(name, server))
    elif await hub.servers.state(name, server) in DOWN:
        return web.Response(status=204)
    else:
        task = hub.servers.stop(name, server)
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=5)
    except asyncio.TimeoutError:
        return web.Response(status=202)
    return web.Response(status=204)


def _sse(event):
    return f"data: {json.dumps(event)}\n\n".encode()


@any_server("GET", "/progress")
async def progress(request):
    hub, row, server_name = await target_server(request, "read:servers")
    name = row["name"]
    server = await hub.servers.row(name, server_name)
    if server_name and server is None:
        raise web.HTTPNotFound(text=f"{name} has no server named '{server_name}'")
    state = await hub.servers.state(name, server_name)
    tracker = hub.servers.progress.get((name, server_name))
    ended = state in (ServerState.FAILED, ServerState.CANCELLED)
    if state == ServerState.STOPPED or (ended and tracker is None and not server.message):
        raise web.HTTPBadRequest(text=f"{name} is not running")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        await _stream_progress(hub, name, server, state, tracker, response)
    except ConnectionResetError:  # the client closed the page or stopped reading: nothing went wrong
        log.info("A client left the progress stream of %s's server", name)
    return response


async def _stream_progress(hub, name, server, state, tracker, response):
    if tracker is None:  # nothing in memory (e.g. after a restart): report the outcome only
        model = await server_model(hub, name, row=server, server=server.name)
        if state == ServerState.RUNNING:
            event = {"progress": 100, "ready": True, "message": f"Server ready at {model['url']}",
                     "url": model["url"]}
        elif state == ServerState.FAILED:
            event = {"progress": 100, "failed": True, "message": f"Spawn failed: {server.message}"}
        elif state == ServerState.CANCELLED:
            event = {"progress": 100, "failed": True, "cancelled": True, "message": "The start was cancelled"}
        else:
            event = {"progress": 0, "message": f"Server is {state}"}
        await response.write(_sse(event))
        return
    index = 0
    while True:
        batch = await tracker.events_after(index, KEEPALIVE_SECONDS)
        for event in batch:
            await response.write(_sse(event))
        index += len(batch)
        if tracker.finished and index >= len(tracker.events):
            return
        if not batch:
            await response.write(b":keepalive\n\n")


@routes.post("/hub/api/batchspawner")
async def batch_job_port(request):
    """A batch job's server reports the port it bound (JupyterHub's batchspawner protocol:
    `{"port": N}` with the server's own token). The node comes from the batch system."""
    identity = await authenticated(request)
    if identity.token is None or identity.token["kind"] != "server":
        raise web.HTTPForbidden(text="Only a server's own token may report its port")
    data = await json_body(request)
    port = data.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise web.HTTPBadRequest(text="port must be an integer from 1 to 65535")
    if not request.app[HUB].servers.report_port(identity.name, port, identity.token["client_id"]):
        raise web.HTTPBadRequest(text=f"No server of {identity.name} is waiting to report its port")
    return web.json_response({"message": f"port {port} recorded"}, status=201)
