"""/hub/api/users/{name}/tokens: users' own API tokens (never wider than their owner)."""

import json
import time

from aiohttp import web

from .. import scopes, timeutil, tokens, users
from ..hub import HUB
from .base import json_body, user_row

routes = web.RouteTableDef()

#: tokens made through this API, and those OAuth clients (servers, services) were given at login
LISTED_KINDS = ("api", "oauth")


def token_model(row):
    expires = row["expires_at"]
    return {
        "kind": "api_token",
        "id": f"a{row['id']}",
        "user": row["user"],
        "note": row["note"] or "",
        "scopes": json.loads(row["scopes"]),
        "roles": [],
        "created": row["created"],
        "expires_at": timeutil.isoformat(timeutil.from_timestamp(expires)) if expires else None,
        "last_activity": row["last_activity"],
        "prefix": row["prefix"],
        "session_id": None,
        "oauth_client": row["client_id"] if row["kind"] == "oauth" else None,
    }


def _live_tokens(db, user):
    return db.all(
        f"SELECT * FROM api_tokens WHERE user=? AND kind IN ({','.join('?' * len(LISTED_KINDS))})"
        " AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
        (user, *LISTED_KINDS, time.time()),
    )


async def _token_row(request, name):
    token_id = request.match_info["token_id"]
    if not token_id.startswith("a") or not token_id[1:].isdigit():
        raise web.HTTPNotFound(text=f"No such token: {token_id}")
    for row in await request.app[HUB].db.run(_live_tokens, name):
        if row["id"] == int(token_id[1:]):
            return row
    raise web.HTTPNotFound(text=f"No such token: {token_id}")


@routes.get("/hub/api/users/{name}/tokens")
async def list_tokens(request):
    _, row = await user_row(request, "read:tokens")
    return web.json_response({"api_tokens": [token_model(t) for t in await request.app[HUB].db.run(_live_tokens, row["name"])]})


async def owner_scopes(hub, name):
    owner = await hub.db.run(users.user_model_row, name)
    return await hub.db.run(hub.roles.scopes_of_user, name, bool(owner["admin"]))


#: the longest expiry a token can ask for; a larger one overflowed the timestamps (a 500)
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


@routes.post("/hub/api/users/{name}/tokens")
async def create_token(request):
    identity, row = await user_row(request, "tokens")
    hub = request.app[HUB]
    body = await json_body(request, required=False)
    note = body.get("note") or ""
    expires_in = body.get("expires_in")
    requested = body.get("scopes")
    if not isinstance(note, str):
        raise web.HTTPBadRequest(text="note must be a string")
    if expires_in is not None and (not isinstance(expires_in, int) or isinstance(expires_in, bool)
                                   or not 0 < expires_in <= MAX_EXPIRES_IN):
        raise web.HTTPBadRequest(text=f"expires_in must be a whole number of seconds from 1 to {MAX_EXPIRES_IN} "
                                      f"(10 years); leave it out for a token that does not expire")
    owner = await owner_scopes(hub, row["name"])
    if requested is None:
        granted = owner
    else:
        if not isinstance(requested, list) or not all(isinstance(s, str) for s in requested):
            raise web.HTTPBadRequest(text="scopes must be a list of strings")
        bad = [s for s in requested if not scopes.valid(s)]
        if bad:
            raise web.HTTPBadRequest(text=f"Unknown scopes: {', '.join(bad)}")
        if not scopes.subset_of(requested, owner) or not scopes.subset_of(requested, identity.scopes):
            raise web.HTTPForbidden(text="A token cannot have scopes wider than its owner's or its creator's")
        granted = set(requested)
    if body.get("roles"):
        raise web.HTTPBadRequest(text="Roles on tokens are not supported; request scopes instead")
    secret = await hub.db.run(tokens.create, row["name"], "api", granted, note=note or "Requested via API",
                              expires_in=expires_in)
    created = await hub.db.run(tokens.lookup, secret)
    return web.json_response({**token_model(created), "token": secret}, status=201)


@routes.get("/hub/api/users/{name}/tokens/{token_id}")
async def get_token(request):
    _, row = await user_row(request, "read:tokens")
    return web.json_response(token_model(await _token_row(request, row["name"])))


@routes.delete("/hub/api/users/{name}/tokens/{token_id}")
async def delete_token(request):
    """Revoke a token; revoking an OAuth token revokes every token that client holds for the
    user (as in JupyterHub: the application loses its access)."""
    _, row = await user_row(request, "tokens")
    token = await _token_row(request, row["name"])
    if token["kind"] == "oauth" and token["client_id"]:
        await request.app[HUB].db.run(tokens.revoke, user=row["name"], kind="oauth", client_id=token["client_id"])
    else:
        await request.app[HUB].db.execute("DELETE FROM api_tokens WHERE id=?", (token["id"],))
    return web.Response(status=204)
