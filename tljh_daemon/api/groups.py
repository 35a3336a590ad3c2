"""/hub/api/groups: create, list, delete groups and manage their members."""

import json

from aiohttp import web

from .. import groups, users
from ..hub import HUB
from .base import authenticated, json_body, require
from .users import paginated_response, pagination

routes = web.RouteTableDef()


async def _group(request, scope):
    name = request.match_info["name"]
    await require(request, scope, group=name)
    row = await request.app[HUB].db.run(groups.get, name)
    if row is None:
        raise web.HTTPNotFound(text=f"No such group: {name}")
    return row


def _names(body, key):
    names = body.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise web.HTTPBadRequest(text=f"{key} must be a list of strings")
    return names


def _existing_users(db, names):
    """(On the database thread.) `names`; a 400 when some are not users."""
    missing = [n for n in names if users.user_model_row(db, n) is None]
    if missing:
        raise web.HTTPBadRequest(text=f"No such users: {', '.join(missing)}")
    return names


@routes.get("/hub/api/groups")
async def list_groups(request):
    identity = await authenticated(request)
    if not identity.can("list:groups"):
        raise web.HTTPForbidden(text="Action is not authorized with current scopes; requires any of [list:groups]")
    db = request.app[HUB].db
    offset, limit, paginated = pagination(request)

    def read(db):
        total = db.one("SELECT COUNT(*) FROM groups")[0]
        rows = db.all("SELECT * FROM groups ORDER BY name LIMIT ? OFFSET ?", (limit, offset))
        return total, [groups.model(db, r, request.app[HUB].roles) for r in rows]

    total, models = await db.run(read)
    return paginated_response(request, models, offset, limit, total, paginated)


@routes.post("/hub/api/groups")
async def create_groups(request):
    await require(request, "admin:groups")
    db = request.app[HUB].db
    names = _names(await json_body(request), "groups")
    if not names or any(not n or "/" in n for n in names):
        raise web.HTTPBadRequest(text="groups must be a non-empty list of names without '/'")

    def create(db):
        if any(groups.get(db, n) for n in names):
            raise web.HTTPConflict(text="A group with that name already exists")
        for name in names:
            groups.create(db, name)
        return [groups.model(db, groups.get(db, n), request.app[HUB].roles) for n in names]

    return web.json_response(await db.transaction(create), status=201)


@routes.get("/hub/api/groups/{name}")
async def get_group(request):
    row = await _group(request, "read:groups")
    return web.json_response(await request.app[HUB].db.run(groups.model, row, request.app[HUB].roles))


@routes.post("/hub/api/groups/{name}")
async def create_group(request):
    name = request.match_info["name"]
    await require(request, "admin:groups")
    db = request.app[HUB].db
    body = await json_body(request, required=False)

    def create(db):
        if groups.get(db, name):
            raise web.HTTPConflict(text=f"Group {name} already exists")
        members = _existing_users(db, _names(body, "users")) if "users" in body else []
        groups.create(db, name, body.get("properties") if isinstance(body.get("properties"), dict) else None)
        groups.add_members(db, name, members)
        return groups.model(db, groups.get(db, name), request.app[HUB].roles)

    return web.json_response(await db.transaction(create), status=201)


@routes.delete("/hub/api/groups/{name}")
async def delete_group(request):
    row = await _group(request, "delete:groups")
    await request.app[HUB].db.execute("DELETE FROM groups WHERE name=?", (row["name"],))
    return web.Response(status=204)


@routes.post("/hub/api/groups/{name}/users")
async def add_group_users(request):
    row = await _group(request, "groups")
    db = request.app[HUB].db
    names = _names(await json_body(request), "users")

    def add(db):
        groups.add_members(db, row["name"], _existing_users(db, names))
        return groups.model(db, row, request.app[HUB].roles)

    return web.json_response(await db.run(add))


@routes.delete("/hub/api/groups/{name}/users")
async def remove_group_users(request):
    row = await _group(request, "groups")
    db = request.app[HUB].db
    names = _names(await json_body(request), "users")

    def remove(db):
        groups.remove_members(db, row["name"], names)
        return groups.model(db, row, request.app[HUB].roles)

    return web.json_response(await db.run(remove))


@routes.put("/hub/api/groups/{name}/properties")
async def set_group_properties(request):
    row = await _group(request, "groups")
    db = request.app[HUB].db
    properties = await json_body(request)

    def update(db):
        db.execute("UPDATE groups SET properties=? WHERE name=?", (json.dumps(properties), row["name"]))
        return groups.model(db, groups.get(db, row["name"]), request.app[HUB].roles)

    return web.json_response(await db.run(update))
