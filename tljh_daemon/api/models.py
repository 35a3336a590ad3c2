"""JSON models of users and servers, shaped like JupyterHub's REST API."""

from .. import groups
from ..servers import server_prefix, url_name


def server_model(hub, name, include_stopped=False):
    row = hub.servers.row(name)
    if row is None or (row["state"] in ("stopped", "failed") and not include_stopped):
        return None
    pending = {"pending": "spawn", "stopping": "stop"}.get(row["state"])
    return {
        "name": "",
        "ready": row["state"] == "running",
        "pending": pending,
        "stopped": row["state"] in ("stopped", "failed"),
        "url": server_prefix(name),
        "progress_url": f"/hub/api/users/{url_name(name)}/server/progress",
        "started": row["started"],
        "last_activity": row["last_activity"],
        "state": {},
        "user_options": {},
    }


def user_model(hub, row, *, scopes=None, include_stopped=False):
    name = row["name"]
    server = server_model(hub, name, include_stopped)
    model = {
        "kind": "user",
        "name": name,
        "admin": bool(row["admin"]),
        "roles": ["admin", "user"] if row["admin"] else ["user"],
        "groups": groups.names_of_user(hub.db, name),
        "server": server["url"] if server and server["ready"] else None,
        "pending": server["pending"] if server else None,
        "created": row["created"],
        "last_activity": row["last_activity"],
        "servers": {"": server} if server else {},
    }
    if scopes is not None:
        model["scopes"] = sorted(scopes)
    return model
