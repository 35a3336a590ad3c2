"""JSON models of users and servers, shaped like JupyterHub's REST API."""

import json

from .. import groups, server_store
from ..scopes import USER_MODEL_FIELDS
from ..server_state import DOWN, ServerState
from ..urls import url_name


async def server_model(hub, name, include_stopped=False, row=..., server=""):
    """The server `server` ('' the default) of `name`; pass its `row` (None: no row) when
    already fetched."""
    if row is ...:
        row = await hub.servers.row(name, server)
    if row is None or (row.state in DOWN and not include_stopped):
        return None
    pending = {ServerState.PENDING: "spawn", ServerState.STOPPING: "stop"}.get(row.state)
    progress = f"servers/{url_name(server)}/progress" if server else "server/progress"
    return {
        "name": server,
        "display_name": row.shown_name,
        "ready": row.state == ServerState.RUNNING,
        "pending": pending,
        "stopped": row.state in DOWN,
        "url": hub.server_url(name, server),
        "progress_url": hub.url(f"/hub/api/users/{url_name(name)}/{progress}"),
        "started": row.started,
        "last_activity": row.last_activity,
        "state": {},
        "user_options": json.loads(row.user_options or "{}"),  # e.g. {"profile": "big"}
    }


#: the columns of `users` that user_model reads (a page selects only these)
MODEL_COLUMNS = "name, admin, created, last_activity"


async def user_model(hub, row, *, scopes=None, include_stopped=False, server_row=..., group_names=None,
                     named_rows=None):
    """`named_rows`: {server name: row} of the user's named servers (None: read them)."""
    name = row["name"]
    server = await server_model(hub, name, include_stopped, server_row)
    servers = {"": server} if server else {}
    if named_rows is None:
        named_rows = {k: v for k, v in (await hub.servers.store.of_user(name)).items() if k}
    for server_name, named_row in named_rows.items():
        named = await server_model(hub, name, include_stopped, named_row, server_name)
        if named:
            servers[server_name] = named
    member_of = await hub.db.run(groups.names_of_user, name) if group_names is None else group_names
    model = {
        "kind": "user",
        "name": name,
        "admin": bool(row["admin"]),
        "roles": hub.roles.user_roles(name, bool(row["admin"]), member_of),
        "groups": member_of,
        "server": server["url"] if server and server["ready"] else None,
        "pending": server["pending"] if server else None,
        "created": row["created"],
        "last_activity": row["last_activity"],
        "servers": servers,
    }
    if scopes is not None:
        model["scopes"] = sorted(scopes)
    return model


def models_data(db, rows):
    """(On the database thread.) What user_models needs besides the rows: (default servers,
    named servers, memberships)."""
    names = [r["name"] for r in rows]
    return (server_store.records_of_users(db, names), server_store.named_records_of_users(db, names),
            groups.names_of_users(db, names))


async def user_models(hub, rows, include_stopped=False, data=None):
    """Models of a page of users with three queries for all of them (not three per user); `data`
    is models_data's result when the caller read it with the rows."""
    servers, named, memberships = data if data is not None else await hub.db.run(models_data, rows)
    return [
        await user_model(hub, row, include_stopped=include_stopped, server_row=servers.get(row["name"]),
                   group_names=memberships.get(row["name"], []), named_rows=named.get(row["name"], {}))
        for row in rows
    ]


def visible_fields(identity, model):
    """`model` with only the fields `identity`'s scopes let it read about that user (JupyterHub's
    filtering: e.g. `list:users` alone shows names, `read:servers` adds the servers)."""
    return field_filter(identity)(model)


def field_filter(identity):
    """visible_fields for many models of one identity: where it holds each field-granting scope is
    looked up once, and scopes it holds for everyone need no per-user check (an admin's page)."""
    grants = [(identity.grant(scope), fields, scope == "read:servers") for scope, fields in USER_MODEL_FIELDS.items()]
    everywhere = frozenset().union(*(fields for g, fields, _ in grants if g.everywhere))
    targeted = [(g, fields, server) for g, fields, server in grants if not g.everywhere and not fields <= everywhere]

    def visible(model):
        allowed = everywhere
        if targeted:
            target = {"user": model["name"], "user_groups": model.get("groups", ())}
            for g, fields, server in targeted:
                if g.allows(**target, **({"server": ""} if server else {})):
                    allowed = allowed | fields
        if model.keys() <= allowed:
            return model
        return {key: value for key, value in model.items() if key in allowed}

    return visible
