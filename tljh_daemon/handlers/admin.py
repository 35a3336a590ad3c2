"""The admin panel (/hub/admin), live server usage, and the token page (/hub/token: API
tokens and the OAuth applications the user authorized).

Pages are rendered on the server (one SQL page of users, so 5,000 users stay
fast); buttons call the REST API from a small script with the XSRF header.
"""

import json
import time
from urllib.parse import urlencode

from aiohttp import web

from .. import groups, limit_changes, timeutil, usage_chart, users
from ..auth.native import NativeAuthenticator
from ..hub import HUB
from ..proxy import certificates
from ..server_state import ACTIVE, ServerState
from ..server_store import describe, spawner_key
from .pages import render, require_user

routes = web.RouteTableDef()
PAGE_SIZE = 50
GROUP_NAMES_SHOWN = 12


async def require_admin(request):
    identity = await require_user(request)
    if not identity.admin:
        raise web.HTTPForbidden(text="Only admins can open the admin panel")
    return identity


#: (value, label) of the admin page's sort and server-state filters
SORT_CHOICES = [("name", "Name A–Z"), ("-name", "Name Z–A"), ("-last_activity", "Recently active"),
                ("last_activity", "Least recently active")]
STATE_CHOICES = [("", "All users"), ("ready", "Running"), ("active", "Starting, running or stopping"),
                 ("inactive", "Not running"), ("failed", "Failed or cancelled starts")]
STATE_LABELS = {ServerState.PENDING: "Starting", ServerState.RUNNING: "Running", ServerState.STOPPING: "Stopping",
                ServerState.STOPPED: "Stopped", ServerState.FAILED: "Failed", ServerState.CANCELLED: "Cancelled"}


def _when(text, now):
    """{iso, ago, exact} for a stored timestamp (None when there is none or it does not parse)."""
    try:
        dt = timeutil.parse(text) if text else None
    except ValueError:
        return None
    return dt and {"iso": timeutil.isoformat(dt), "ago": timeutil.ago(dt, now), "exact": timeutil.exact(dt)}


@routes.get("/hub/admin")
async def admin_page(request):
    """One page of users, searched, filtered by server state and sorted in SQL (5,000 users stay fast)."""
    await require_admin(request)
    hub = request.app[HUB]
    search = request.query.get("search", "")
    sort = request.query.get("sort", "name")
    if sort not in dict(SORT_CHOICES):
        sort = "name"
    state = request.query.get("state", "")
    if state not in users.ADMIN_STATE_FILTERS:
        state = ""
    try:
        offset = min(max(int(request.query.get("offset", 0)), 0), 2**63 - 1)  # SQLite integers are 64-bit
        limit = min(max(int(request.query.get("limit", PAGE_SIZE)), 1), users.PAGE_MAX_LIMIT)
    except ValueError:
        raise web.HTTPBadRequest(text="offset and limit must be integers") from None
    column = "users." + users.SORTS[sort.lstrip("-")]
    direction = "DESC" if sort.startswith("-") else "ASC"
    conditions, params = [], []
    only = request.query.getall("user", [])[:users.PAGE_MAX_LIMIT]
    if only:  # ?user=a&user=b: exactly these rows, whatever their state now (the page's live refresh)
        conditions.append(f"users.name IN ({','.join('?' * len(only))})")
        params += only
        search, state, offset = "", "", 0
    if search:
        condition, pattern = users.name_contains(search)
        conditions.append("users." + condition)
        params.append(pattern)
    if state:
        conditions.append(users.ADMIN_STATE_FILTERS[state])
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def read(db):  # on the database thread
        total = db.one(f"SELECT COUNT(*) FROM users{where}", params)[0]
        rows = db.all(
            "SELECT users.*, s.state AS server_state, s.message AS server_message,"
            " s.user_options AS server_user_options FROM users"
            f" LEFT JOIN servers s ON s.user=users.name AND s.name=''"
            f"{where} ORDER BY ({column} IS NULL), {column} {direction} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        memberships = groups.names_of_users(db, [r["name"] for r in rows])
        group_rows = [  # a big group's members would fill the page: the count and the first few names
            {"name": g["name"], "count": g["count"], "users": [m["user"] for m in db.all(
                "SELECT user FROM group_members WHERE group_name=? ORDER BY user LIMIT ?",
                (g["name"], GROUP_NAMES_SHOWN))]}
            for g in db.all("SELECT g.name, COUNT(m.user) AS count FROM groups g"
                            " LEFT JOIN group_members m ON m.group_name=g.name GROUP BY g.name ORDER BY g.name")
        ]
        return total, rows, memberships, group_rows

    total, rows, memberships, group_rows = await hub.db.run(read)
    named = await hub.servers.store.named_of_users([r["name"] for r in rows])  # named_servers.enabled
    now = timeutil.now()
    profile_names = {p.slug: p.display_name for p in hub.settings.server.profiles}
    listed = []
    for r in rows:
        server_state = ServerState(r["server_state"] or ServerState.STOPPED)
        profile = json.loads(r["server_user_options"] or "{}").get("profile")
        listed.append({
            "name": r["name"],
            "admin": bool(r["admin"]),
            "state": server_state,
            "state_label": STATE_LABELS[server_state],
            "message": r["server_message"] or "",
            "url": hub.server_url(r["name"]),
            "last_activity": _when(r["last_activity"], now),
            "groups": memberships.get(r["name"], []),
            # every user holds `user`: the others are what sets one apart
            "roles": [name for name in hub.roles.user_roles(r["name"], bool(r["admin"]), memberships.get(r["name"], []))
                      if name != "user"],
            # the profile a running or starting server was started with (its user_options)
            "profile": profile_names.get(profile, profile) if server_state in ACTIVE else None,
            "named": [{"name": server, "state": s.state, "url": hub.server_url(r["name"], server)}
                      for server, s in named.get(r["name"], {}).items()],
        })
    proxy = hub.proxy
    https = certificates.status(hub.settings.proxy, proxy.acme_store, proxy.log_path)
    auth = hub.authenticator
    signups = ([{**s, "created": _when(s["created"], now)} for s in await auth.list_signups() if s["status"] != "approved"]
               if isinstance(auth, NativeAuthenticator) else None)

    def page_link(to):
        query = {k: v for k, v in (("search", search), ("state", state), ("sort", sort)) if v}
        return "?" + urlencode({**query, "offset": to, "limit": limit})

    return await render(request, "admin.html", {
        **await hub.usage.read(usage_chart.admin_charts, [u["name"] for u in listed], dict(request.query)),
        "users": listed, "groups": group_rows, "signups": signups, "search": search, "sort": sort, "state": state,
        "sort_choices": SORT_CHOICES, "state_choices": STATE_CHOICES, "total": total,
        "offset": offset, "limit": limit, "https": https, "limits": limits_status(hub),
        "other_limits": await servers_with_other_limits(hub),
        "prev_url": page_link(max(offset - limit, 0)) if offset else None,
        "next_url": page_link(offset + limit) if offset + limit < total else None,
    })


@routes.get("/hub/admin/usage")
async def usage(request):
    """The latest sampling round of each running server (usage_sampler.py)."""
    await require_admin(request)
    hub = request.app[HUB]
    result = {}
    for row in await hub.servers.store.in_states(ServerState.RUNNING):
        key = describe(row.user, row.name)  # `user`, or `user/server` for a named server
        sample = hub.usage.latest.get(key)
        if sample is None:
            continue
        result[key] = {"memory_bytes": sample.memory_bytes, "cpu_percent": sample.cpu_percent,
                       "oom_kills": hub.spawner.oom_kills(spawner_key(row.user, row.name))}
    return web.json_response(result)


async def servers_with_other_limits(hub):
    """Running servers that keep the limits they started with, which the configuration (limits.*,
    limits.groups, their profile) no longer gives them."""
    rows = await hub.db.all(limit_changes.RUNNING_SQL)
    server = hub.settings.server
    memberships = await hub.db.run(groups.names_of_users, [row["user"] for row in rows])
    expected = limit_changes.expected_limits(server.limits, server.group_limits, server.profiles, memberships)
    return limit_changes.with_other_limits(rows, expected)


def limits_status(hub):
    """[(key, value, how it is enforced or why it is not)] for the limits that are set."""
    spawner, status = hub.spawner, []
    for key, value in hub.settings.server.limits.items():
        note = spawner.capabilities.limits_note
        if key not in spawner.capabilities.limits and not note.startswith("not enforced"):
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
    apps: dict[str, dict] = {}
    for row in rows:
        app = apps.setdefault(row["client_id"], {
            "client_id": row["client_id"], "description": row["description"] or row["client_id"],
            "token_id": f"a{row['id']}", "first_authorized": row["created"], "scopes": set(), "tokens": 0})
        app["scopes"].update(json.loads(row["scopes"]))
        app["tokens"] += 1
    return [{**app, "scopes": sorted(app["scopes"])} for app in apps.values()]


@routes.get("/hub/token")
async def token_page(request):
    identity = await require_user(request)
    db = request.app[HUB].db
    owner = await db.run(users.user_model_row, identity.name)
    return await render(request, "token.html", {
        "own_scopes": sorted(await db.run(request.app[HUB].roles.scopes_of_user, identity.name, bool(owner["admin"]))),
        "oauth_apps": await db.run(authorized_applications, identity.name),
    })
