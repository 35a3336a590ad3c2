"""/hub/api/shares, /hub/api/share-codes and /hub/api/{users,groups}/{name}/shared: JupyterHub 5's
sharing endpoints, with its request shapes, models and status codes (storage: sharing.py)."""

import json

from aiohttp import web

from .. import groups, scopes, sharing, timeutil
from ..hub import HUB
from ..server_state import ServerState
from .base import json_body, require
from .users import PAGE_DEFAULT_LIMIT, paginated_response, pagination

routes = web.RouteTableDef()

SERVER = "{server:[^/]*}"  # the default server is the empty name: /shares/alice/


def _target(request):
    return request.match_info["owner"], request.match_info["server"]


def _page(request):
    offset, limit, _ = pagination(request)
    return offset, limit if "limit" in request.query else min(limit, PAGE_DEFAULT_LIMIT)


def _server_model(hub, db, owner, server):
    row = db.one("SELECT state FROM servers WHERE user=? AND name=?", (owner, server))
    return {"user": {"name": owner}, "name": server, "url": hub.server_url(owner) + (f"{server}/" if server else ""),
            "full_url": None, "ready": row is not None and row["state"] == ServerState.RUNNING.value}


def share_model(hub, db, row):
    return {"server": _server_model(hub, db, row["owner"], row["server"]), "scopes": json.loads(row["scopes"]),
            "user": {"name": row["user"]} if row["user"] is not None else None,
            "group": {"name": row["group_name"]} if row["group_name"] is not None else None,
            "kind": "group" if row["group_name"] is not None else "user", "created_at": row["created"]}


def code_model(hub, db, row, code=None):
    model = {"server": _server_model(hub, db, row["owner"], row["server"]), "scopes": json.loads(row["scopes"]),
             "id": f"sc_{row['id']}", "created_at": row["created"],
             "expires_at": timeutil.isoformat(timeutil.from_timestamp(row["expires_at"])),
             "exchange_count": row["exchange_count"], "last_exchanged_at": row["last_exchanged"]}
    if code is not None:
        model["code"] = code
        model["accept_url"] = hub.url(f"/hub/accept-share?code={code}")
        model["full_accept_url"] = None
    return model


async def _list(request, fn, *args, model=share_model):
    """A paginated list (always: JupyterHub's share lists are) of `fn(db, *args, offset, limit)`."""
    hub = request.app[HUB]
    offset, limit = _page(request)

    def read(db):
        rows, total = fn(db, *args, offset=offset, limit=limit)
        return [model(hub, db, r) for r in rows], total

    items, total = await hub.db.run(read)
    return paginated_response(request, items, offset, limit, total, True)


async def _require_server(request, owner, server):
    if not await request.app[HUB].db.run(sharing.server_exists, owner, server):
        raise web.HTTPNotFound(text=f"No such server: {owner}/{server}")


def _request(body, *, allowed, who=True):
    """The body's fields checked as JupyterHub's pydantic models check them (400 otherwise)."""
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise web.HTTPBadRequest(text=f"Unexpected fields: {', '.join(extra)} (allowed: {', '.join(allowed)})")
    requested = body.get("scopes")
    if requested is not None and (not isinstance(requested, list) or not all(isinstance(s, str) for s in requested)):
        raise web.HTTPBadRequest(text="scopes must be a list of strings")
    if who:
        user, group = body.get("user"), body.get("group")
        for key, value in (("user", user), ("group", group)):
            if value is not None and (not isinstance(value, str) or not value):
                raise web.HTTPBadRequest(text=f"{key} must be a name (a non-empty string)")
        if user and group:
            raise web.HTTPBadRequest(text="Expected exactly one of `user` or `group`, not both.")
        if user is None and group is None:
            raise web.HTTPBadRequest(text="Specify exactly one of `user` or `group`")
    return requested or None


def _filtered(requested, owner, server, identity):
    try:
        granted = sharing.filtered(requested, owner, server)
    except sharing.ShareError as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    for scope in granted:
        if not scopes.subset_of([scope], identity.scopes):
            raise web.HTTPForbidden(text=f"Do not have permission to grant share with scope {scope}")
    return granted


@routes.get("/hub/api/shares/{owner}")
async def list_owner_shares(request):
    owner = request.match_info["owner"]
    await require(request, "read:shares", user=owner)
    if not await request.app[HUB].db.one("SELECT 1 FROM users WHERE name=?", (owner,)):
        raise web.HTTPNotFound(text=f"No such user: {owner}")
    return await _list(request, sharing.shares_of_owner, owner, None)


@routes.get(f"/hub/api/shares/{{owner}}/{SERVER}")
async def list_server_shares(request):
    owner, server = _target(request)
    await require(request, "read:shares", user=owner, server=server)
    await _require_server(request, owner, server)
    return await _list(request, sharing.shares_of_owner, owner, server)


@routes.post(f"/hub/api/shares/{{owner}}/{SERVER}")
async def grant_share(request):
    owner, server = _target(request)
    identity = await require(request, "shares", user=owner, server=server)
    body = await json_body(request)
    requested = _request(body, allowed=("scopes", "user", "group"))
    granted = _filtered(requested, owner, server, identity)
    await _require_server(request, owner, server)
    user, group = body.get("user"), body.get("group")
    if user and not identity.can("read:users:name", user=user):
        raise web.HTTPForbidden(text="Need scope 'read:users:name' to share with users by name")
    if group and not identity.can("read:groups:name", group=group):
        raise web.HTTPForbidden(text="Need scope 'read:groups:name' to share with groups by name")
    hub = request.app[HUB]

    def grant(db):
        if user and db.one("SELECT 1 FROM users WHERE name=?", (user,)) is None:
            raise web.HTTPBadRequest(text=f"No such user: {user}")
        if group and groups.get(db, group) is None:
            raise web.HTTPBadRequest(text=f"No such group: {group}")
        if user == owner:
            raise web.HTTPBadRequest(text="A server cannot be shared with its owner")
        return share_model(hub, db, sharing.grant(db, owner, server, granted, user=user or None, group=group or None))

    return web.json_response(await hub.db.transaction(grant))


@routes.patch(f"/hub/api/shares/{{owner}}/{SERVER}")
async def revoke_share(request):
    owner, server = _target(request)
    await require(request, "shares", user=owner, server=server)
    body = await json_body(request)
    requested = _request(body, allowed=("scopes", "user", "group"))
    revoked = None
    if requested:
        try:
            revoked = sharing.filtered(requested, owner, server)
        except sharing.ShareError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
    await _require_server(request, owner, server)
    hub = request.app[HUB]

    def revoke(db):
        row = sharing.revoke(db, owner, server, revoked, user=body.get("user") or None,
                             group=body.get("group") or None)
        return share_model(hub, db, row) if row is not None else {}

    return web.json_response(await hub.db.transaction(revoke))


@routes.delete(f"/hub/api/shares/{{owner}}/{SERVER}")
async def revoke_all_shares(request):
    owner, server = _target(request)
    await require(request, "shares", user=owner, server=server)
    await _require_server(request, owner, server)
    await request.app[HUB].db.execute("DELETE FROM shares WHERE owner=? AND server=?", (owner, server))
    return web.Response(status=204)


# -- what is shared with a user or a group


async def _user_exists(request, name):
    if not await request.app[HUB].db.one("SELECT 1 FROM users WHERE name=?", (name,)):
        raise web.HTTPNotFound(text=f"No such user: {name}")


@routes.get("/hub/api/users/{name}/shared")
async def shared_with_user(request):
    name = request.match_info["name"]
    await require(request, "read:users:shares", user=name)
    await _user_exists(request, name)
    return await _list(request, sharing.shares_with_user, name)


async def _one_share(request, scope, *, kind):
    name, owner, server = request.match_info["name"], request.match_info["owner"], request.match_info["server"]
    if kind == "user":
        await require(request, scope, user=name)
    else:
        await require(request, scope, group=name)
    row = await request.app[HUB].db.run(sharing.find, owner, server, **{kind: name})
    if row is None:
        raise web.HTTPNotFound(text=f"No such share for {kind} {name} on {owner}/{server}")
    return row


@routes.get(f"/hub/api/users/{{name}}/shared/{{owner}}/{SERVER}")
async def get_user_share(request):
    row = await _one_share(request, "read:users:shares", kind="user")
    hub = request.app[HUB]
    return web.json_response(await hub.db.run(lambda db: share_model(hub, db, row)))


@routes.delete(f"/hub/api/users/{{name}}/shared/{{owner}}/{SERVER}")
async def leave_user_share(request):
    row = await _one_share(request, "users:shares", kind="user")
    await request.app[HUB].db.execute("DELETE FROM shares WHERE id=?", (row["id"],))
    return web.Response(status=204)


@routes.get("/hub/api/groups/{name}/shared")
async def shared_with_group(request):
    name = request.match_info["name"]
    await require(request, "read:groups:shares", group=name)
    if await request.app[HUB].db.run(groups.get, name) is None:
        raise web.HTTPNotFound(text=f"No such group: {name}")
    return await _list(request, sharing.shares_with_group, name)


@routes.get(f"/hub/api/groups/{{name}}/shared/{{owner}}/{SERVER}")
async def get_group_share(request):
    row = await _one_share(request, "read:groups:shares", kind="group")
    hub = request.app[HUB]
    return web.json_response(await hub.db.run(lambda db: share_model(hub, db, row)))


@routes.delete(f"/hub/api/groups/{{name}}/shared/{{owner}}/{SERVER}")
async def leave_group_share(request):
    row = await _one_share(request, "groups:shares", kind="group")
    await request.app[HUB].db.execute("DELETE FROM shares WHERE id=?", (row["id"],))
    return web.Response(status=204)


# -- share codes


@routes.get("/hub/api/share-codes/{owner}")
async def list_owner_codes(request):
    owner = request.match_info["owner"]
    await require(request, "read:shares", user=owner)
    await _user_exists(request, owner)
    return await _list(request, sharing.codes_of_owner, owner, None, model=code_model)


@routes.get(f"/hub/api/share-codes/{{owner}}/{SERVER}")
async def list_server_codes(request):
    owner, server = _target(request)
    await require(request, "read:shares", user=owner, server=server)
    await _require_server(request, owner, server)
    return await _list(request, sharing.codes_of_owner, owner, server, model=code_model)


def _expires_in(body):
    value = body.get("expires_in", sharing.CODE_DEFAULT_EXPIRES)
    if value is None:
        return sharing.CODE_DEFAULT_EXPIRES
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise web.HTTPBadRequest(text="expires_in must be a whole number of seconds")
    if not sharing.CODE_MIN_EXPIRES <= value <= sharing.CODE_MAX_EXPIRES:
        raise web.HTTPBadRequest(text=f"expires_in must be between {sharing.CODE_MIN_EXPIRES} and "
                                      f"{sharing.CODE_MAX_EXPIRES} seconds")
    return int(value)


@routes.post(f"/hub/api/share-codes/{{owner}}/{SERVER}")
async def new_code(request):
    owner, server = _target(request)
    identity = await require(request, "shares", user=owner, server=server)
    body = await json_body(request, required=False)
    requested = _request(body, allowed=("scopes", "expires_in"), who=False)
    expires_in = _expires_in(body)
    granted = _filtered(requested, owner, server, identity)
    await _require_server(request, owner, server)
    hub = request.app[HUB]

    def create(db):
        row, code = sharing.new_code(db, owner, server, granted, expires_in)
        return code_model(hub, db, row, code)

    return web.json_response(await hub.db.transaction(create))


@routes.delete(f"/hub/api/share-codes/{{owner}}/{SERVER}")
async def revoke_codes(request):
    owner, server = _target(request)
    await require(request, "shares", user=owner, server=server)
    await _require_server(request, owner, server)
    code, code_id = request.query.get("code"), request.query.get("id")
    deleted = await request.app[HUB].db.run(sharing.delete_codes, owner, server, code=code or None,
                                            code_id=None if code else code_id or None)
    if (code or code_id) and not deleted:
        raise web.HTTPNotFound(text="No matching code found" if code else f"No code found matching id={code_id}")
    return web.Response(status=204)
