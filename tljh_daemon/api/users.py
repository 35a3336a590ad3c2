"""/hub/api/user and /hub/api/users: who am I, list, create, read, change, delete users."""

import dataclasses

from aiohttp import web

from .. import admins, scopes, users
from ..hub import HUB
from ..server_state import DOWN
from ..users import PAGE_MAX_LIMIT, SORTS, STATE_FILTERS, InvalidName, normalize_name
from .base import authenticated, json_body, require, target_user, user_row
from .models import MODEL_COLUMNS, field_filter, models_data, user_model, user_models, visible_fields

routes = web.RouteTableDef()

PAGINATION_TYPE = "application/jupyterhub-pagination+json"
PAGE_DEFAULT_LIMIT = 50
#: reading one user needs any of these (JupyterHub's GET /users/{name})
READ_USER_SCOPES = ("read:users", "read:users:name", "read:servers", "read:users:groups", "read:users:activity",
                    "read:roles:users")
MAX_SQL_INTEGER = 2**63 - 1


def _flag(request, key):
    value = request.query.get(key)
    return value is not None and value.lower() not in ("0", "false", "no")


def pagination(request):
    """(offset, limit, paginated?) with JupyterHub's defaults and caps."""
    accept = {part.strip().lower() for part in request.headers.get("Accept", "").split(",")}
    paginated = PAGINATION_TYPE in accept
    offset = _count_argument(request, "offset", 0)
    limit = _count_argument(request, "limit", PAGE_DEFAULT_LIMIT if paginated else PAGE_MAX_LIMIT)
    return offset, min(max(limit, 1), PAGE_MAX_LIMIT), paginated


def _count_argument(request, key, default):
    """A non-negative integer query argument that SQLite can take (a clear 400 otherwise)."""
    text = request.query.get(key)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text="Invalid argument type, offset and limit must be integers") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"{key} must not be negative")
    if value > MAX_SQL_INTEGER:
        raise web.HTTPBadRequest(text=f"{key} must be at most {MAX_SQL_INTEGER}")
    return value


def paginated_response(request, items, offset, limit, total, paginated):
    if not paginated:
        return web.json_response(items)
    next_page = None
    if offset + limit < total:
        query = dict(request.query, offset=offset + limit, limit=limit)
        # An absolute URL, as JupyterHub gives (jupyterhub-idle-culler fetches it as is).
        next_page = {"offset": offset + limit, "limit": limit, "url": str(request.url.with_query(query))}
    return web.json_response(
        {"items": items, "_pagination": {"offset": offset, "limit": limit, "total": total, "next": next_page}},
        content_type=PAGINATION_TYPE,
    )


@routes.get("/hub/api/user")
async def current_user(request):
    identity = await authenticated(request)
    hub = request.app[HUB]
    if identity.kind == "service":
        return web.json_response({**hub.service_manager.services[identity.name].model(), "scopes": sorted(identity.scopes)})
    row = await hub.db.run(users.user_model_row, identity.name)
    model = await user_model(hub, row)
    # Any token may identify its owner (name, groups); the rest follows its scopes.
    reader = dataclasses.replace(identity, scopes=identity.scopes | scopes.identify_scopes(identity.name))
    # As JupyterHub (5.0+): token_id names the asking token, so a client can find (and revoke) it.
    token_id = f"a{identity.token['id']}" if identity.token is not None else None
    return web.json_response({**visible_fields(reader, model), "scopes": sorted(identity.scopes),
                              "token_id": token_id, "session_id": None})


@routes.get("/hub/api/users")
async def list_users(request):
    identity = await authenticated(request)
    hub = request.app[HUB]
    offset, limit, paginated = pagination(request)
    where, params = [], []
    if not identity.can("list:users"):
        # Filtered list:users scopes (e.g. list:users!user=x) see only those users.
        allowed = [s.partition("!user=")[2] for s in identity.scopes if s.startswith("list:users!user=")]
        if not allowed:
            raise web.HTTPForbidden(text="Action is not authorized with current scopes; requires any of [list:users]")
        where.append(f"name IN ({','.join('?' * len(allowed))})")
        params += allowed
    state = request.query.get("state")
    if state:
        if state not in STATE_FILTERS:
            raise web.HTTPBadRequest(text=f"Unrecognized state filter: {state!r}; use one of active, ready, inactive")
        where.append(STATE_FILTERS[state])
    name_filter = request.query.get("name_filter")
    if name_filter:
        condition, pattern = users.name_contains(name_filter)
        where.append(condition)
        params.append(pattern)
    sort = request.query.get("sort", "id")
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        raise web.HTTPBadRequest(text=f"sort must be 'id', 'name', or 'last_activity', not {sort!r}")
    direction = "DESC" if sort.startswith("-") else "ASC"
    # NULL sorts lowest (first ascending, last descending, as SQLite orders it); rowid and name are never NULL,
    # and ordering plainly by them lets SQLite walk an index instead of sorting every row.
    nulls = f"({column} {'IS NULL' if direction == 'DESC' else 'IS NOT NULL'}), " if column == "last_activity" else ""
    clause = f" WHERE {' AND '.join(where)}" if where else ""

    def read(db):  # one trip to the database thread for the page
        total = db.one(f"SELECT COUNT(*) FROM users{clause}", params)[0]
        rows = db.all(
            f"SELECT {MODEL_COLUMNS} FROM users{clause} ORDER BY {nulls}{column} {direction} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return total, rows, models_data(db, rows)

    total, rows, data = await hub.db.run(read)
    stopped = _flag(request, "include_stopped_servers")
    visible = field_filter(identity)
    items = [visible(model) for model in await user_models(hub, rows, include_stopped=stopped, data=data)]
    return paginated_response(request, items, offset, limit, total, paginated)


def _valid_names(names):
    try:
        return [normalize_name(n) for n in names]
    except InvalidName as e:
        raise web.HTTPBadRequest(text=str(e)) from None


def _new_names(names):
    try:
        for name in names:
            users.check_new_name(name)
    except InvalidName as e:
        raise web.HTTPBadRequest(text=str(e)) from None


@routes.post("/hub/api/users")
async def create_users(request):
    await require(request, "admin:users")
    hub = request.app[HUB]
    body = await json_body(request)
    names = body.get("usernames")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise web.HTTPBadRequest(text="usernames must be a non-empty list of strings")
    admin = body.get("admin", False)
    if not isinstance(admin, bool):
        raise web.HTTPBadRequest(text="admin must be true or false")
    names = list(dict.fromkeys(_valid_names(names)))

    def create(db):
        new = [n for n in names if users.user_model_row(db, n) is None]
        if not new:
            raise web.HTTPConflict(text="All of those users already exist")
        _new_names(new)
        return [users.ensure_user(db, name, admin=admin) for name in new]

    created = [await user_model(hub, row) for row in await hub.db.transaction(create)]
    return web.json_response(created, status=201)


@routes.get("/hub/api/users/{name}")
async def get_user(request):
    identity, row, group_names, record, named = await target_user(request, *READ_USER_SCOPES)
    hub = request.app[HUB]
    model = await user_model(hub, row, include_stopped=_flag(request, "include_stopped_servers"), server_row=record,
                             group_names=group_names, named_rows=named)
    return web.json_response(visible_fields(identity, model))


@routes.post("/hub/api/users/{name}")
async def create_user(request):
    await require(request, "admin:users")
    hub = request.app[HUB]
    body = await json_body(request, required=False)
    (name,) = _valid_names([request.match_info["name"]])
    if await hub.db.run(users.user_model_row, name) is not None:
        raise web.HTTPConflict(text=f"User {name} already exists")
    _new_names([name])
    admin = body.get("admin", False)
    if not isinstance(admin, bool):
        raise web.HTTPBadRequest(text="admin must be true or false")
    row = await hub.db.run(users.ensure_user, name, admin=admin)
    return web.json_response(await user_model(hub, row), status=201)


@routes.patch("/hub/api/users/{name}")
async def modify_user(request):
    _, row = await user_row(request, "admin:users")
    hub = request.app[HUB]
    body = await json_body(request)
    unknown = set(body) - {"admin", "name"}
    if unknown:
        raise web.HTTPBadRequest(text=f"Cannot change {', '.join(sorted(unknown))}")
    if "name" in body and body["name"] != row["name"]:
        raise web.HTTPBadRequest(text="Renaming users is not supported (their Unix account is named after them)")
    note = None
    if "admin" in body:
        if not isinstance(body["admin"], bool):
            raise web.HTTPBadRequest(text="admin must be true or false")
        note = await admins.set_admin(hub, row["name"], body["admin"])
    model = await user_model(hub, await hub.db.run(users.user_model_row, row["name"]))
    if note:  # a demoted admin's server: what became of it (the admin panel shows it)
        model["server_note"] = note
    return web.json_response(model)


@routes.delete("/hub/api/users/{name}")
async def delete_user(request):
    identity, row = await user_row(request, "delete:users")
    hub = request.app[HUB]
    name = row["name"]
    if name == identity.name:
        raise web.HTTPBadRequest(text="You cannot delete yourself")
    for server, server_row in (await hub.servers.store.of_user(name)).items():
        if server_row.state not in DOWN:
            await hub.servers.stop(name, server)
    await hub.db.execute("DELETE FROM users WHERE name=?", (name,))
    return web.Response(status=204)
