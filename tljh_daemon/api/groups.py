"""/hub/api/groups: create, list, delete groups and manage their members."""

import json

from aiohttp import web

from .. import groups, users
from ..hub import HUB
from .base import authenticated, json_body, require
from .users import paginated_response, pagination

routes = web.RouteTableDef()


def _group(request, scope):
    name = request.match_info["name"]
    require(request, scope, group=name)
    row = groups.get(request.app[HUB].db, name)
    if row is None:
        raise web.HTTPNotFound(text=f"No such group: {name}")
    return row


def _names(body, key):
    names = body.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise web.HTTPBadRequest(text=f"{key} must be a list of strings")
    return names


def _existing_users(db, names):
    missing = [n for n in names if users.user_model_row(db, n) is None]
    if missing:
        raise web.HTTPBadRequest(text=f"No such users: {', '.join(missing)}")
    return names


@routes.get("/hub/api/groups")
async def list_groups(request):
    identity = authenticated(request)
    if not identity.can("list:groups"):
        raise web.HTTPForbidden(text="Action is not authorized with current scopes; requires any of [list:groups]")
    db = request.app[HUB].db
    offset, limit, paginated = pagination(request)
    total = db.one("SELECT COUNT(*) FROM groups")[0]
    rows = db.all("SELECT * FROM groups ORDER BY name LIMIT ? OFFSET ?", (limit, offset))
    models = [groups.model(db, r, request.app[HUB].roles) for r in rows]
    return paginated_response(request, models, offset, limit, total, paginated)


@routes.post("/hub/api/groups")
async def create_groups(request):
    require(request, "admin:groups")
    db = request.app[HUB].db
    names = _names(await json_body(request), "groups")
    if not names or any(not n or "/" in n for n in names):
        raise web.HTTPBadRequest(text="groups must be a non-empty list of names without '/'")
    if any(groups.get(db, n) for n in names):
        raise web.HTTPConflict(text="A group with that name already exists")
    with db.transaction():
        for name in names:
            groups.create(db, name)
    return web.json_response([groups.model(db, groups.get(db, n), request.app[HUB].roles) for n in names], status=201)


@routes.get("/hub/api/groups/{name}")
async def get_group(request):
    row = _group(request, "read:groups")
    return web.json_response(groups.model(request.app[HUB].db, row, request.app[HUB].roles))


@routes.post("/hub/api/groups/{name}")
async def create_group(request):
    name = request.match_info["name"]
    require(request, "admin:groups")
    db = request.app[HUB].db
    body = await json_body(request, required=False)
    if groups.get(db, name):
        raise web.HTTPConflict(text=f"Group {name} already exists")
    members = _existing_users(db, _names(body, "users")) if "users" in body else []
    with db.transaction():
        groups.create(db, name, body.get("properties") if isinstance(body.get("properties"), dict) else None)
        groups.add_members(db, name, members)
    return web.json_response(groups.model(db, groups.get(db, name), request.app[HUB].roles), status=201)


@routes.delete("/hub/api/groups/{name}")
async def delete_group(request):
    row = _group(request, "delete:groups")
    request.app[HUB].db.execute("DELETE FROM groups WHERE name=?", (row["name"],))
    return web.Response(status=204)


@routes.post("/hub/api/groups/{name}/users")
async def add_group_users(request):
    row = _group(request, "groups")
    db = request.app[HUB].db
    names = _existing_users(db, _names(await json_body(request), "users"))
    groups.add_members(db, row["name"], names)
    return web.json_response(groups.model(db, row, request.app[HUB].roles))


@routes.delete("/hub/api/groups/{name}/users")
async def remove_group_users(request):
    row = _group(request, "groups")
    db = request.app[HUB].db
    groups.remove_members(db, row["name"], _names(await json_body(request), "users"))
    return web.json_response(groups.model(db, row, request.app[HUB].roles))


@routes.put("/hub/api/groups/{name}/properties")
async def set_group_properties(request):
    row = _group(request, "groups")
    db = request.app[HUB].db
    properties = await json_body(request)
    db.execute("UPDATE groups SET properties=? WHERE name=?", (json.dumps(properties), row["name"]))
    return web.json_response(groups.model(db, groups.get(db, row["name"]), request.app[HUB].roles))
