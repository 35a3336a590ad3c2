"""The accept-share page: a share code link turns into a share for whoever opens it and accepts."""

import json

from aiohttp import web

from .. import sharing, xsrf
from ..hub import HUB
from ..server_state import ServerState
from .pages import render, require_user

routes = web.RouteTableDef()


@routes.get("/hub/accept-share")
async def accept_share_page(request):
    identity = await require_user(request)
    code = request.query.get("code", "")
    row = await request.app[HUB].db.run(sharing.find_code, code) if code else None
    error = None
    if row is None:
        error = "This share link is unknown or has expired. Ask its owner for a new one."
    elif row["owner"] == identity.name:
        error = "This is a share link for your own server: send it to the people you want to share it with."
    return await render(request, "accept_share.html", {
        "code": code, "error": error,
        "owner": row["owner"] if row else None, "server": row["server"] if row else None,
        "scopes": json.loads(row["scopes"]) if row else [],
    }, status=200 if error is None else 404)


@routes.post("/hub/accept-share")
async def accept_share(request):
    identity = await require_user(request)
    form = await xsrf.checked_form(request)
    hub = request.app[HUB]
    try:
        share, code = await hub.db.transaction(sharing.accept_code, str(form.get("code", "")), identity.name)
    except sharing.ShareError as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    owner, server = share["owner"], share["server"]
    state = await hub.db.one("SELECT state FROM servers WHERE user=? AND name=?", (owner, server))
    if state is not None and state["state"] == ServerState.RUNNING.value:
        raise web.HTTPFound(hub.server_url(owner) + (f"{server}/" if server else ""))
    raise web.HTTPFound(hub.url("/hub/home"))
