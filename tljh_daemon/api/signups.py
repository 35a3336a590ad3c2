"""Sign-up requests (NativeAuthenticator), for admins: list, approve or refuse, discard.

Our own endpoint (JupyterHub has none): `admin:users` is required, as for creating users.
"""

from aiohttp import web

from ..auth.native import STATUSES, SignupNotFound, SignupRefused, signups_of
from ..hub import HUB
from .base import json_body, require


def native(request):
    """The hub's NativeAuthenticator; 404 under another one."""
    return signups_of(request.app[HUB].authenticator)


routes = web.RouteTableDef()


@routes.get("/hub/api/signups")
async def list_signups(request):
    await require(request, "admin:users")
    auth = native(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise web.HTTPBadRequest(text=f"status must be one of: {', '.join(STATUSES)}")
    return web.json_response(await auth.list_signups(status))


@routes.get("/hub/api/signups/{name}")
async def get_signup(request):
    await require(request, "admin:users")
    model = await native(request).signup_model(request.match_info["name"])
    if model is None:
        raise web.HTTPNotFound(text=f"No sign-up for {request.match_info['name']}")
    return web.json_response(model)


@routes.patch("/hub/api/signups/{name}")
async def decide_signup(request):
    identity = await require(request, "admin:users")
    auth = native(request)
    body = await json_body(request)
    unknown = sorted(set(body) - {"status"})
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown key {unknown[0]!r} (only status can be changed)")
    if body.get("status") not in ("approved", "refused"):
        raise web.HTTPBadRequest(text="status must be \"approved\" or \"refused\"")
    name = request.match_info["name"]
    try:
        model = await auth.decide(name, body["status"], identity.name)
    except SignupNotFound:
        raise web.HTTPNotFound(text=f"No sign-up for {name}") from None
    except SignupRefused as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    return web.json_response(model)


@routes.delete("/hub/api/signups/{name}")
async def discard_signup(request):
    await require(request, "admin:users")
    auth = native(request)
    name = request.match_info["name"]
    try:
        await auth.discard(name)
    except SignupNotFound:
        raise web.HTTPNotFound(text=f"No sign-up for {name}") from None
    except SignupRefused as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    return web.Response(status=204)
