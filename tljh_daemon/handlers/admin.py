"""The admin panel (/hub/admin), live server usage, and the token page (/hub/token: API
tokens and the OAuth applications the user authorized).

Pages are rendered on the server (one SQL page of users, so 5,000 users stay
fast); buttons call the REST API from a small script with the XSRF header.
"""

import json
import time

import psutil
from aiohttp import web

from .. import groups, scopes, users
from ..auth.native import NativeAuthenticator
from ..hub import HUB
from ..proxy import certificates
from ..server_state import ServerState
from .pages import render, require_user

routes = web.RouteTableDef()
PAGE_SIZE = 50


def require_admin(request):
    identity = require_user(request)
    if not identity.admin:
        raise web.HTTPForbidden(text="Only admins can open the admin panel")
    return identity


@routes.get("/hub/admin")
async def admin_page(request):
    require_admin(request)
    db = request.app[HUB].db
    search = request.query.get("search", "")
    sort = request.query.get("sort", "name")
    if sort.lstrip("-") not in users.SORTS:
        sort = "name"
    try:
        offset = min(max(int(request.query.get("offset", 0)), 0), 2**63 - 1)  # SQLite integers are 64-bit
        limit = min(max(int(request.query.get("limit", PAGE_SIZE)), 1), users.PAGE_MAX_LIMIT)
    except ValueError:
        raise web.HTTPBadRequest(text="offset and limit must be integers") from None
    column = "u." + users.SORTS[sort.lstrip("-")]
    direction = "DESC" if sort.startswith("-") else "ASC"
    where, params = "", []
    if search:
        condition, pattern = users.name_contains(search)
        where = " WHERE u." + condition
        params.append(pattern)
    total = db.one(f"SELECT COUNT(*) FROM users u{where}", params)[0]
    rows = db.all(
        f"SELECT u.*, s.state AS server_state, s.message AS server_message FROM users u LEFT JOIN servers s ON s.user=u.name AND s.name=''"
        f"{where} ORDER BY ({column} IS NULL), {column} {direction} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    listed = [
        {
            "name": r["name"],
            "admin": bool(r["admin"]),
            "state": r["server_state"] or ServerState.STOPPED,
            "message": r["server_message"] or "",
            "url": request.app[HUB].server_url(r["name"]),
            "last_activity": r["last_activity"] or "",
            "groups": groups.names_of_user(db, r["name"]),
        }
        for r in rows
    ]
    group_rows = [groups.model(db, g) for g in db.all("SELECT * FROM groups ORDER BY name")]
    proxy = request.app[HUB].proxy
    https = certificates.status(proxy, proxy.log_path)
    auth = request.app[HUB].authenticator
    signups = ([s for s in auth.list_signups() if s["status"] != "approved"]
               if isinstance(auth, NativeAuthenticator) else None)
    return render(request, "admin.html", {
        "users": listed, "groups": group_rows, "signups": signups, "search": search, "sort": sort, "total": total,
        "offset": offset, "limit": limit, "https": https, "limits": limits_status(request.app[HUB]),
        "prev_offset": max(offset - limit, 0) if offset else None,
        "next_offset": offset + limit if offset + limit < total else None,
    })


class UsageSampler:
    """Memory (RSS of the process tree) and CPU % per running server; CPU % needs two samples,
    so the psutil.Process objects are kept between polls."""

    def __init__(self):
        self._procs = {}

    def _tree(self, pid):
        proc = self._procs.get(pid)
        if proc is None or not proc.is_running():
            proc = self._procs[pid] = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]

    def sample(self, pid):
        rss, cpu = 0, 0.0
        for p in self._tree(pid):
            cached = self._procs.setdefault(p.pid, p)
            try:
                rss += cached.memory_info().rss
                cpu += cached.cpu_percent(None)
            except psutil.Error:
                pass
        return {"memory_bytes": rss, "cpu_percent": round(cpu, 1)}


SAMPLER = UsageSampler()


@routes.get("/hub/admin/usage")
async def usage(request):
    require_admin(request)
    hub = request.app[HUB]
    result = {}
    for row in hub.db.all("SELECT user, pid FROM servers WHERE state=? AND pid IS NOT NULL",
                          (ServerState.RUNNING,)):
        try:
            result[row["user"]] = SAMPLER.sample(row["pid"])
        except psutil.Error:
            continue
        result[row["user"]]["oom_kills"] = hub.spawner.oom_kills(row["user"])
    return web.json_response(result)


def limits_status(hub):
    """[(key, value, how it is enforced or why it is not)] for the limits that are set."""
    spawner, status = hub.spawner, []
    for key, value in hub.config["limits"].items():
        if value is None:
            continue
        note = spawner.limits_note
        if key not in spawner.supported_limits and not note.startswith("not enforced"):
            note = f"not enforced: {note}"
        status.append((f"limits.{key}", value, note))
    return status


def authorized_applications(db, name):
    """The OAuth clients (the user's servers, services, external applications) holding live
    tokens of `name`: one entry per client, with the union of their tokens' scopes."""
    rows = db.all(
        "SELECT t.id, t.client_id, t.scopes, t.created, c.description FROM api_tokens t"
        " LEFT JOIN oauth_clients c ON c.id = t.client_id WHERE t.user=? AND t.kind='oauth'"
        " AND t.client_id IS NOT NULL AND (t.expires_at IS NULL OR t.expires_at > ?) ORDER BY t.id",
        (name, time.time()),
    )
    apps = {}
    for row in rows:
        app = apps.setdefault(row["client_id"], {
            "client_id": row["client_id"], "description": row["description"] or row["client_id"],
            "token_id": f"a{row['id']}", "first_authorized": row["created"], "scopes": set(), "tokens": 0})
        app["scopes"].update(json.loads(row["scopes"]))
        app["tokens"] += 1
    return [{**app, "scopes": sorted(app["scopes"])} for app in apps.values()]


@routes.get("/hub/token")
async def token_page(request):
    identity = require_user(request)
    db = request.app[HUB].db
    owner = users.user_model_row(db, identity.name)
    return render(request, "token.html", {
        "own_scopes": sorted(scopes.role_scopes(identity.name, bool(owner["admin"]))),
        "oauth_apps": authorized_applications(db, identity.name),
    })
