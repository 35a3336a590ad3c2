"""Pages for named servers (named_servers.enabled): start, progress,
stop and delete of one named server from a browser form (JupyterHub's /hub/spawn/<user>/<server>
and /hub/spawn-pending/<user>/<server>)."""

from urllib.parse import urlencode

from aiohttp import web

from .. import server_store, xsrf
from ..hub import HUB
from ..profiles import ProfileRefused
from ..server_state import ServerState
from ..server_store import InvalidDisplayName, server_name_for
from ..servers import NamedServerRefused, ServerBusy, SpawnLimitReached
from ..urls import url_name
from .pages import raw_redirect, render, require_user, safe_next, target_user

routes = web.RouteTableDef()


async def _server_of(request):
    identity = await require_user(request)
    row = await target_user(request, identity)
    return identity, row, request.match_info["server"]


async def _start(request, row, server, next_url="", options=None, display_name=None):
    hub = request.app[HUB]
    name = row["name"]
    if await hub.servers.state(name, server) != ServerState.RUNNING:
        if options is None:  # a start again: the profile it had
            options = await hub.servers.previous_options(name, server)
        try:
            await hub.servers.start(row, options, server, display_name)
        except (NamedServerRefused, ProfileRefused) as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        except ServerBusy:
            pass  # already starting: show its progress
        except SpawnLimitReached as e:
            raise web.HTTPTooManyRequests(text=str(e), headers={"Retry-After": str(e.retry_after)}) from None
    query = "?" + urlencode({"next": next_url}) if next_url else ""
    raise web.HTTPFound(hub.url(f"/hub/spawn-pending/{url_name(name)}/{url_name(server)}{query}"))


@routes.get("/hub/spawn/{name}/{server}")
async def spawn_named_get(request):
    """As JupyterHub's GET /hub/spawn/<user>/<server>: open it when it runs, else start it
    (a link to a stopped named server lands here, with `next` where it pointed)."""
    _, row, server = await _server_of(request)
    hub = request.app[HUB]
    next_url = safe_next(request.query.get("next", ""), "")
    if await hub.servers.state(row["name"], server) == ServerState.RUNNING:
        raise raw_redirect(next_url or hub.server_url(row["name"], server))
    await _start(request, row, server, next_url)


@routes.post("/hub/spawn/{name}/{server}")
async def spawn_named(request):
    _, row, server = await _server_of(request)
    await xsrf.checked_form(request)
    await _start(request, row, server)


@routes.post("/hub/named-servers")
async def new_named(request):
    """The home page's name field: start (creating) the named server it names. As on
    JupyterHub 6's home page, any display name will do: the server's name is made from it."""
    identity = await require_user(request)
    form = await xsrf.checked_form(request)
    typed = " ".join((form.get("server_name") or "").split())
    if not typed:
        raise web.HTTPBadRequest(text="Give the new server a name")
    try:
        text = server_store.display_name(typed)
    except InvalidDisplayName as e:
        raise web.HTTPBadRequest(text=f"Invalid server name {typed!r}: it {e}") from None
    server = server_name_for(text)
    profile = form.get("profile")
    await _start(request, await target_user(request, identity), server,
                 options={"profile": profile} if profile else None, display_name=None if text == server else text)


@routes.get("/hub/spawn-pending/{name}/{server}")
async def spawn_pending_named(request):
    _, row, server = await _server_of(request)
    hub = request.app[HUB]
    name = row["name"]
    state = await hub.servers.state(name, server)
    next_url = safe_next(request.query.get("next", ""), hub.server_url(name, server))
    if state == ServerState.RUNNING:
        raise raw_redirect(next_url)
    if state != ServerState.PENDING:  # failed, stopped or gone: the home page says which
        raise web.HTTPFound(hub.url("/hub/home"))
    return await render(request, "spawn_pending.html", {
        "name": name,
        "progress_url": hub.url(f"/hub/api/users/{url_name(name)}/servers/{url_name(server)}/progress"),
        "next": next_url,
    })


@routes.post("/hub/stop/{name}/{server}")
async def stop_named(request):
    _, row, server = await _server_of(request)
    await xsrf.checked_form(request)
    await request.app[HUB].servers.stop(row["name"], server)
    raise web.HTTPFound(request.app[HUB].url("/hub/home"))


@routes.post("/hub/delete/{name}/{server}")
async def delete_named(request):
    _, row, server = await _server_of(request)
    await xsrf.checked_form(request)
    hub = request.app[HUB]
    if await hub.servers.row(row["name"], server) is None:
        raise web.HTTPNotFound(text=f"{row['name']} has no server named '{server}'")
    await hub.servers.remove(row["name"], server)
    raise web.HTTPFound(hub.url("/hub/home"))
