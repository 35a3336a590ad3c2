"""HTML pages: login, logout, home, spawn and its progress, password changes."""

import os
import string
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from .. import sessions, tokens, users
from ..auth import LoginRefused
from ..hub import HUB
from ..servers import ServerBusy, server_prefix, url_name
from . import xsrf
from .identity import identify, set_hub_cookie

routes = web.RouteTableDef()

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


def safe_next(url, default):
    """Only same-site paths may be redirected to after login."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default


def raw_path_qs(request):
    """The path and query exactly as the client sent them (still %-encoded): decoding would
    turn e.g. `%23` into a `#` that cuts the URL short when redirecting."""
    return request.raw_path


def raw_query(request):
    return request.rel_url.raw_query_string


def raw_redirect(target):
    """A redirect to `target` exactly as given (no re-encoding or normalizing of the query)."""
    # Only what cannot go into a header as is (spaces, controls, non-ASCII) is %-encoded.
    return web.HTTPFound(URL(quote(target, safe=string.punctuation), encoded=True))


def login_redirect(request):
    return web.HTTPFound("/hub/login?" + urlencode({"next": raw_path_qs(request)}))


def require_user(request):
    identity = identify(request)
    if identity is None:
        raise login_redirect(request)
    return identity


def render(request, template, context=None, status=200):
    identity = identify(request)
    hub = request.app[HUB]
    context = {
        "user": identity,
        "xsrf": xsrf.token(request),
        "auth_type": hub.config["auth"]["type"],
        **(context or {}),
    }
    return aiohttp_jinja2.render_template(template, request, context, status=status)


def target_user(request, identity):
    """The user a page acts on: yourself, or (admins only) the one named in the URL."""
    name = request.match_info.get("name") or identity.name
    if name != identity.name and not identity.admin:
        raise web.HTTPForbidden(text="You can only manage your own server")
    row = users.user_model_row(request.app[HUB].db, name)
    if row is None:
        raise web.HTTPNotFound(text=f"No such user: {name}")
    return row


def default_url(hub, name):
    return server_prefix(name) if hub.servers.state(name) == "running" else "/hub/spawn"


@routes.get("/")
async def root(request):
    raise web.HTTPFound("/hub/")


@routes.get("/hub")
@routes.get("/hub/")
async def hub_root(request):
    raise web.HTTPFound("/hub/home" if identify(request) else "/hub/login")


@routes.get("/hub/login")
async def login_page(request):
    hub = request.app[HUB]
    identity = identify(request)
    next_url = request.query.get("next", "")
    if identity is not None:
        raise raw_redirect(safe_next(next_url, default_url(hub, identity.name)))
    return render(request, "login.html", {"next": next_url, "hint": hub.authenticator.login_hint})


@routes.post("/hub/login")
async def login_submit(request):
    hub = request.app[HUB]
    form = await request.post()
    xsrf.check(request, form)
    next_url = form.get("next", "")
    try:
        name = await hub.authenticator.login(form.get("username", ""), form.get("password", ""))
    except LoginRefused as e:
        return render(
            request,
            "login.html",
            {"next": next_url, "error": str(e), "username": form.get("username", ""),
             "hint": hub.authenticator.login_hint},
            status=403,
        )
    users.ensure_user(hub.db, name, admin=name in hub.authenticator.admins)
    response = raw_redirect(safe_next(next_url, default_url(hub, name)))
    set_hub_cookie(request, response, sessions.COOKIE_NAME, hub.sessions.create(name), max_age=sessions.MAX_AGE)
    raise response


@routes.get("/hub/logout")
async def logout(request):
    hub = request.app[HUB]
    identity = identify(request)
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if cookie:
        hub.sessions.delete(cookie)
    if identity is not None:
        # Browsers lose access to servers too (their OAuth tokens stop working).
        tokens.revoke(hub.db, user=identity.name, kind="oauth")
    response = web.HTTPFound("/hub/login")
    response.del_cookie(sessions.COOKIE_NAME, path="/hub/")
    raise response


@routes.get("/hub/home")
async def home(request):
    identity = require_user(request)
    hub = request.app[HUB]
    row = hub.servers.row(identity.name)
    return render(
        request,
        "home.html",
        {
            "state": row["state"] if row else "stopped",
            "message": row["message"] if row else None,
            "url": server_prefix(identity.name),
            "name": identity.name,
        },
    )


async def _start(request, identity, row):
    hub = request.app[HUB]
    name = row["name"]
    if hub.servers.state(name) != "running":
        try:
            hub.servers.start(row)
        except ServerBusy:
            pass  # already starting: just show its progress
    next_url = safe_next(request.query.get("next", ""), "")
    query = ("?" + urlencode({"next": next_url})) if next_url else ""
    raise web.HTTPFound(f"/hub/spawn-pending/{url_name(name)}{query}")


@routes.get("/hub/spawn")
@routes.get("/hub/spawn/{name}")
async def spawn(request):
    identity = require_user(request)
    row = target_user(request, identity)
    hub = request.app[HUB]
    if hub.servers.state(row["name"]) == "running":
        raise raw_redirect(safe_next(request.query.get("next", ""), server_prefix(row["name"])))
    await _start(request, identity, row)


@routes.post("/hub/spawn")
@routes.post("/hub/spawn/{name}")
async def spawn_submit(request):
    identity = require_user(request)
    xsrf.check(request, await request.post())
    await _start(request, identity, target_user(request, identity))


@routes.post("/hub/stop")
@routes.post("/hub/stop/{name}")
async def stop_submit(request):
    identity = require_user(request)
    xsrf.check(request, await request.post())
    row = target_user(request, identity)
    await request.app[HUB].servers.stop(row["name"])
    raise web.HTTPFound("/hub/home")


@routes.get("/hub/spawn-pending/{name}")
async def spawn_pending(request):
    identity = require_user(request)
    row = target_user(request, identity)
    hub = request.app[HUB]
    name = row["name"]
    server = hub.servers.row(name)
    state = server["state"] if server else "stopped"
    url = server_prefix(name)
    next_url = safe_next(request.query.get("next", ""), url)
    if state == "running":
        raise raw_redirect(next_url)
    if state == "failed":
        return render(
            request,
            "spawn_failed.html",
            {"name": name, "message": server["message"], "retry": f"/hub/spawn/{url_name(name)}"},
            status=500,
        )
    if state != "pending":
        raise web.HTTPFound(f"/hub/spawn/{url_name(name)}")
    return render(
        request,
        "spawn_pending.html",
        {
            "name": name,
            "progress_url": f"/hub/api/users/{url_name(name)}/server/progress",
            "next": next_url,
        },
    )


@routes.get("/hub/user-redirect/{tail:.*}")
async def user_redirect(request):
    identity = require_user(request)
    raw_tail = request.rel_url.raw_path[len("/hub/user-redirect/"):]
    query = f"?{raw_query(request)}" if raw_query(request) else ""
    raise raw_redirect(server_prefix(identity.name) + raw_tail + query)


@routes.get("/user/{name}/{tail:.*}")
@routes.get("/user-redirect/{tail:.*}")
async def user_prefix_redirect(request):
    """/user/<name>/... reaches the hub only when no route exists, and /user-redirect/... is
    JupyterHub's short form: both move under /hub/, where the hub cookie lives."""
    raise raw_redirect("/hub" + raw_path_qs(request))


@routes.get("/hub/user/{name}/{tail:.*}")
async def user_server_fallback(request):
    identity = require_user(request)
    name = request.match_info["name"]
    if name != identity.name and not identity.admin:
        raise web.HTTPForbidden(text=f"You are not allowed to use the server of {name}")
    hub = request.app[HUB]
    if users.user_model_row(hub.db, name) is None:
        raise web.HTTPNotFound(text=f"No such user: {name}")
    target = server_prefix(name) + request.rel_url.raw_path.split("/", 4)[4]  # /hub/user/<name>/<tail>
    if raw_query(request):
        target += "?" + raw_query(request)
    state = hub.servers.state(name)
    if state == "running":
        # Our route is live before we say "ready", so this is a stale request: retry once.
        if request.query.get("redirects"):
            raise web.HTTPServiceUnavailable(text="The server is running but not reachable; try again shortly")
        sep = "&" if raw_query(request) else "?"
        raise raw_redirect(target + sep + "redirects=1")
    raise web.HTTPFound(f"/hub/spawn/{url_name(name)}?" + urlencode({"next": target}))


routes.static("/hub/static", STATIC_DIR)


@routes.get("/hub/logo")
async def logo(request):
    return web.FileResponse(os.path.join(STATIC_DIR, "logo.svg"))


@routes.get("/hub/auth/change-password")
async def change_password_page(request):
    require_user(request)
    return render(request, "change_password.html", {"target": None})


@routes.post("/hub/auth/change-password")
async def change_password(request):
    identity = require_user(request)
    form = await request.post()
    xsrf.check(request, form)
    auth = request.app[HUB].authenticator
    if not hasattr(auth, "change_password"):
        raise web.HTTPBadRequest(text="Passwords are managed outside the hub for this authenticator")
    try:
        await auth.change_password(identity.name, form.get("old_password", ""), form.get("new_password", ""))
    except LoginRefused as e:
        return render(request, "change_password.html", {"target": None, "error": str(e)}, status=400)
    return render(request, "change_password.html", {"target": None, "done": "Your password was changed."})


@routes.get("/hub/auth/change-password/{name}")
async def reset_password_page(request):
    identity = require_user(request)
    if not identity.admin:
        raise web.HTTPForbidden(text="Only admins can reset other users' passwords")
    return render(request, "change_password.html", {"target": request.match_info["name"]})


@routes.post("/hub/auth/change-password/{name}")
async def reset_password(request):
    identity = require_user(request)
    form = await request.post()
    xsrf.check(request, form)
    if not identity.admin:
        raise web.HTTPForbidden(text="Only admins can reset other users' passwords")
    auth = request.app[HUB].authenticator
    name = request.match_info["name"]
    if not hasattr(auth, "reset_password") or users.user_model_row(auth.db, name) is None:
        raise web.HTTPBadRequest(text=f"Cannot reset the password of {name} with this authenticator")
    new = form.get("new_password", "")
    try:
        if new:
            await auth.set_password(name, new)
        else:
            auth.reset_password(name)
    except LoginRefused as e:
        return render(request, "change_password.html", {"target": name, "error": str(e)}, status=400)
    done = f"The password of {name} was " + ("set." if new else "cleared: their next login sets a new one.")
    return render(request, "change_password.html", {"target": name, "done": done})
