"""HTML pages: home, spawn and its progress, user-redirect (login pages are in login.py)."""

import json
import os
import string
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from .. import groups, profiles, usage_chart, users, xsrf
from ..hub import HUB
from ..identity import identify, login_redirect
from ..profiles import ProfileRefused
from ..server_state import ServerState
from ..servers import ServerBusy, SpawnLimitReached
from ..urls import url_name

routes = web.RouteTableDef()

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


def safe_next(url, default):
    """Only same-site paths may be redirected to after login."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default


def raw_query(request):
    return request.rel_url.raw_query_string


def raw_redirect(target):
    """A redirect to `target` exactly as given (no re-encoding or normalizing of the query)."""
    # Only what cannot go into a header as is (spaces, controls, non-ASCII) is %-encoded.
    return web.HTTPFound(URL(quote(target, safe=string.punctuation), encoded=True))


def hub_url(request, path):
    """`path` (e.g. '/hub/login') under base_url."""
    return request.app[HUB].url(path)


def hub_relative_path(request):
    """The raw request path as it would be with base_url '/' (what route patterns describe)."""
    return request.rel_url.raw_path[len(request.app[HUB].base_url) - 1:]


async def require_user(request):
    identity = await identify(request)
    if identity is None:
        raise login_redirect(request)
    return identity


# The pages an `announcement.<page>` key is shown on (JupyterHub's announcement_<page>).
ANNOUNCED_PAGES = {"login.html": "login", "home.html": "home", "spawn_pending.html": "spawn",
                   "spawn_failed.html": "spawn", "logout.html": "logout"}


def announcement(hub, template):
    """The announcement HTML for a page: `announcement.all`, then the page's own (from
    config.yaml, else JupyterHub.template_vars' announcement / announcement_<page>)."""
    configured = hub.settings.pages.announcements
    template_vars = hub.extra.template_vars
    page = ANNOUNCED_PAGES.get(template)
    parts = [configured["all"] or template_vars.get("announcement") or ""]
    if page:
        parts.append(configured[page] or template_vars.get(f"announcement_{page}") or "")
    return [part for part in parts if part]


async def render(request, template, context=None, status=200):
    identity = await identify(request)
    hub = request.app[HUB]
    context = {
        "user": identity,
        "xsrf": xsrf.token(request),
        "auth_type": hub.settings.pages.auth_type,
        "can_change_password": hub.authenticator.can_change_password,
        "can_reset_password": hub.authenticator.can_reset_password,
        "temporary_notice": await temporary_notice(hub, identity),
        "signup_url": getattr(hub.authenticator, "signup_url", None),
        "announcements": announcement(hub, template),
        **(context or {}),
    }
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def temporary_notice(hub, identity):
    """The banner every page shows a temporary (workshop) user, else None."""
    if identity is None or identity.kind != "user":
        return None
    row = await hub.db.run(users.user_model_row, identity.name)
    if row is None or not row["temporary"]:
        return None
    return getattr(hub.authenticator, "temporary_notice", None) or "This is a temporary account."


async def target_user(request, identity):
    """The user a page acts on: yourself, or (admins only) the one named in the URL."""
    name = request.match_info.get("name") or identity.name
    if name != identity.name and not identity.admin:
        raise web.HTTPForbidden(text="You can only manage your own server")
    row = await request.app[HUB].db.run(users.user_model_row, name)
    if row is None:
        raise web.HTTPNotFound(text=f"No such user: {name}")
    return row


async def default_url(hub, name):
    return hub.server_url(name) if await hub.servers.state(name) == ServerState.RUNNING else hub.url("/hub/spawn")


@routes.get("/")
async def root(request):
    raise web.HTTPFound(hub_url(request, "/hub/"))


@routes.get("/hub")
@routes.get("/hub/")
async def hub_root(request):
    raise web.HTTPFound(hub_url(request, "/hub/home" if await identify(request) else "/hub/login"))


@routes.get("/hub/home")
async def home(request):
    identity = await require_user(request)
    hub = request.app[HUB]
    rows = await hub.servers.store.of_user(identity.name)  # every server of the user's, in one read
    row = rows.get("")
    state = row.state if row else ServerState.STOPPED
    named = rows if hub.servers.settings.named_servers else {}
    return await render(
        request,
        "home.html",
        {
            "state": state,
            "usage_charts": await hub.usage.read(usage_chart.home_charts, identity.name,
                                                 usage_servers(named, state)),
            "usage_refresh": max(3 * hub.usage.interval, 5),  # seconds between the charts' refreshes
            "message": row.message if row else None,
            "url": hub.server_url(identity.name),
            "name": identity.name,
            "choose_profile": bool(await profile_choices(hub, identity.name)),
            # the Share panel: sharing is on and this user may share their server
            "sharing": hub.settings.sharing and identity.can("shares", user=identity.name, server=""),
            **await named_servers_context(hub, identity.name, rows),  # named_servers.html
        },
    )


def usage_servers(rows, state):
    """[(server name, label, running)] of the servers whose usage the home page shows: the
    default one (in `state`) and each named one of `rows` (by display name)."""
    return [("", "Your default server", state == ServerState.RUNNING),
            *((server, row.shown_name, row.state == ServerState.RUNNING) for server, row in rows.items() if server)]


async def named_servers_context(hub, name, rows):
    """What the home page shows of `name`'s named servers, from `rows` (every server of theirs;
    nothing when named servers are off)."""
    settings = hub.servers.settings
    if not settings.named_servers:
        return {"named_enabled": False}
    servers = [
        {"name": server, "display_name": row.shown_name, "state": row.state,
         "url": hub.server_url(name, server), "message": row.message,
         "path": f"{url_name(name)}/{url_name(server)}"}
        for server, row in rows.items() if server
    ]
    limit = settings.named_server_limit
    choices = await profile_choices(hub, name)
    default = profiles.default_of(choices)
    return {"named_enabled": True, "named_servers": servers, "named_limit": limit,
            "named_full": bool(limit) and len(servers) >= limit,
            # a new named server's profile (its user_options), chosen beside its name
            "named_profiles": choices, "named_default_profile": default.slug if default else ""}


async def profile_choices(hub, name):
    """The profiles `name` may choose from (none: no form, the server starts as configured)."""
    if not hub.settings.server.profiles:
        return []
    return profiles.available(hub.settings.server.profiles, await hub.db.run(groups.names_of_user, name))


async def spawn_form(request, identity, row, chosen=None, error=None, status=200):
    """The options form (JupyterHub's spawn page): one radio button per profile."""
    hub = request.app[HUB]
    name = row["name"]
    choices = await profile_choices(hub, name)
    if not choices:  # a profile posted where none can be chosen: nothing to offer instead
        raise web.HTTPBadRequest(text=error or "No profiles can be chosen here")
    default = profiles.default_of(choices)
    next_url = safe_next(request.query.get("next", ""), "")
    action = hub.url(f"/hub/spawn/{url_name(name)}") + ("?" + urlencode({"next": next_url}) if next_url else "")
    return await render(request, "spawn.html", {
        "name": name, "own": name == identity.name, "choices": choices, "action": action, "error": error,
        "chosen": chosen or (default.slug if default else ""),
    }, status=status)


async def _start(request, identity, row, user_options=None):
    hub = request.app[HUB]
    name = row["name"]
    if await hub.servers.state(name) != ServerState.RUNNING:
        try:
            await hub.servers.start(row, user_options)
        except ProfileRefused as e:  # a form posted by hand, or a profile gone since the page was shown
            return await spawn_form(request, identity, row, error=str(e), status=e.status)
        except ServerBusy:
            pass  # already starting: just show its progress
        except SpawnLimitReached as e:  # an error page with status 429, as JupyterHub shows
            raise web.HTTPTooManyRequests(text=str(e), headers={"Retry-After": str(e.retry_after)}) from None
    next_url = safe_next(request.query.get("next", ""), "")
    query = ("?" + urlencode({"next": next_url})) if next_url else ""
    raise web.HTTPFound(hub.url(f"/hub/spawn-pending/{url_name(name)}{query}"))


@routes.get("/hub/spawn")
@routes.get("/hub/spawn/{name}")
async def spawn(request):
    identity = await require_user(request)
    row = await target_user(request, identity)
    hub = request.app[HUB]
    if await hub.servers.state(row["name"]) == ServerState.RUNNING:
        raise raw_redirect(safe_next(request.query.get("next", ""), hub.server_url(row["name"])))
    if await hub.servers.state(row["name"]) != ServerState.PENDING and await profile_choices(hub, row["name"]):
        return await spawn_form(request, identity, row)
    return await _start(request, identity, row)


@routes.post("/hub/spawn")
@routes.post("/hub/spawn/{name}")
async def spawn_submit(request):
    """Start with the form's `profile` (none: the default one, e.g. the home page's button)."""
    identity = await require_user(request)
    form = await xsrf.checked_form(request)
    profile = form.get("profile")
    return await _start(request, identity, await target_user(request, identity),
                        {"profile": profile} if profile else None)


@routes.post("/hub/stop")
@routes.post("/hub/stop/{name}")
async def stop_submit(request):
    identity = await require_user(request)
    await xsrf.checked_form(request)
    row = await target_user(request, identity)
    await request.app[HUB].servers.stop(row["name"])
    raise web.HTTPFound(hub_url(request, "/hub/home"))


@routes.get("/hub/spawn-pending/{name}")
async def spawn_pending(request):
    identity = await require_user(request)
    row = await target_user(request, identity)
    hub = request.app[HUB]
    name = row["name"]
    server = await hub.servers.row(name)
    state = await hub.servers.state(name)
    url = hub.server_url(name)
    next_url = safe_next(request.query.get("next", ""), url)
    if state == ServerState.RUNNING:
        raise raw_redirect(next_url)
    if state == ServerState.FAILED:
        return await render(
            request,
            "spawn_failed.html",
            {"name": name, "message": server.message, "retry": hub.url(f"/hub/spawn/{url_name(name)}"),
             # a retry keeps the profile the failed start had
             "profile": json.loads(server.user_options or "{}").get("profile")},
            status=500,
        )
    if state == ServerState.CANCELLED:  # stopped while starting (e.g. by an admin): not restarted by itself
        raise web.HTTPFound(hub.url("/hub/home"))
    if state != ServerState.PENDING:
        raise web.HTTPFound(hub.url(f"/hub/spawn/{url_name(name)}"))
    return await render(
        request,
        "spawn_pending.html",
        {
            "name": name,
            "progress_url": hub.url(f"/hub/api/users/{url_name(name)}/server/progress"),
            "next": next_url,
        },
    )


@routes.get("/hub/user-redirect/{tail:.*}")
async def user_redirect(request):
    identity = await require_user(request)
    raw_tail = hub_relative_path(request)[len("/hub/user-redirect/"):]
    query = f"?{raw_query(request)}" if raw_query(request) else ""
    raise raw_redirect(request.app[HUB].server_url(identity.name) + raw_tail + query)


@routes.get("/user/{name}/{tail:.*}")
@routes.get("/user-redirect/{tail:.*}")
async def user_prefix_redirect(request):
    """/user/<name>/... reaches the hub only when no route exists, and /user-redirect/... is
    JupyterHub's short form: both move under /hub/, where the hub cookie lives."""
    raise raw_redirect(hub_url(request, "/hub" + hub_relative_path(request)) + (
        f"?{raw_query(request)}" if raw_query(request) else ""))


@routes.get("/hub/user/{name}/{tail:.*}")
async def user_server_fallback(request):
    identity = await require_user(request)
    name = request.match_info["name"]
    if name != identity.name and not identity.admin:
        raise web.HTTPForbidden(text=f"You are not allowed to use the server of {name}")
    hub = request.app[HUB]
    if await hub.db.run(users.user_model_row, name) is None:
        raise web.HTTPNotFound(text=f"No such user: {name}")
    target = hub.server_url(name) + hub_relative_path(request).split("/", 4)[4]  # /hub/user/<name>/<tail>
    if raw_query(request):
        target += "?" + raw_query(request)
    server = await _named_server_in(hub, name, request.match_info["tail"])
    state = await hub.servers.state(name, server)
    if server and state != ServerState.RUNNING:  # a named server that is not running: start it
        raise web.HTTPFound(hub.url(f"/hub/spawn/{url_name(name)}/{url_name(server)}?") + urlencode({"next": target}))
    if state == ServerState.RUNNING:
        # Our route is live before we say "ready", so this is a stale request: retry once.
        if request.query.get("redirects"):
            raise web.HTTPServiceUnavailable(text="The server is running but not reachable; try again shortly")
        sep = "&" if raw_query(request) else "?"
        raise raw_redirect(target + sep + "redirects=1")
    raise web.HTTPFound(hub.url(f"/hub/spawn/{url_name(name)}?") + urlencode({"next": target}))


async def _named_server_in(hub, name, tail):
    """The named server a /user/<name>/<tail> path is under ('' for the default server)."""
    first = tail.split("/", 1)[0]
    if not first or not hub.settings.server.named_servers:
        return ""
    return first if await hub.servers.row(name, first) is not None else ""


routes.static("/hub/static", STATIC_DIR)


@routes.get("/hub/logo")
async def logo(request):
    """branding.logo, else ours (JupyterHub's logo_file)."""
    return web.FileResponse(request.app[HUB].settings.pages.logo or os.path.join(STATIC_DIR, "logo.svg"))
