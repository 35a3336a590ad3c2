"""Login, logout and password pages, and the one path every successful login ends in.

Whatever the authenticator (password form, OAuth callback, sign-up), `finish_login`
creates the user row and applies admin rights in one transaction, brings the admins
group of the Unix account in step, and sets the session cookie. Authenticators never
create users or sessions themselves, so a refused or failed login leaves nothing behind.
"""

import logging

from aiohttp import web

from .. import admins, login_switch, sessions, tokens, users, xsrf
from ..auth import LoggedIn, LoginRefused
from ..hub import HUB
from ..identity import client_address, identify, set_hub_cookie, set_session_id_cookie
from .pages import default_url, raw_redirect, render, require_user, safe_next

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

BANNED = "This account may not use this hub. Ask the hub's administrator if you think that is a mistake."


def login_context(auth, next_url, **extra):
    """What login.html needs: the form and/or the "Sign in with ..." button."""
    return {
        "next": next_url,
        "hint": auth.login_hint,
        "password_form": auth.password_form,
        "login_service": auth.login_service,
        "login_url": auth.login_url(next_url) if auth.login_service else None,
        **extra,
    }


async def login_refused_page(request, message, next_url="", status=403, **extra):
    """The login page with `message` in red: every refused login ends here, never in a 500."""
    auth = request.app[HUB].authenticator
    return await render(request, "login.html", login_context(auth, next_url, error=message, **extra), status=status)


async def finish_login(request, logged_in, next_url):
    """End a successful authentication: create or update the user, set the session cookie and
    raise the redirect. A banned name gets the refused page back instead (nothing created).
    Handlers `return await finish_login(...)`."""
    hub = request.app[HUB]
    if isinstance(logged_in, str):
        logged_in = LoggedIn(logged_in)
    name = logged_in.name
    if name in hub.authenticator.banned:
        log.warning("Login of %s refused: the name is in users.banned", name)
        return await login_refused_page(request, BANNED, next_url)
    listed_admin = name in hub.authenticator.admins
    method = login_switch.method_of(hub.authenticator)

    def record_login(db):
        before = users.user_model_row(db, name)
        refusal = login_switch.refusal(before, method)
        if refusal is not None:
            return before, refusal, None, None
        row = users.ensure_user(db, name, admin=listed_admin)
        former = login_switch.record(db, name, method)
        if logged_in.admin is not None:
            # The provider decides (its groups), at every login; users.admin still promotes.
            db.execute("UPDATE users SET admin=? WHERE name=?", (int(logged_in.admin or listed_admin), name))
            row = users.user_model_row(db, name)
        return before, None, row, former

    before, refusal, row, former = await hub.db.transaction(record_login)
    was_admin = bool(before["admin"]) if before else False
    if refusal is not None:
        log.warning("Login of %s with %s refused: the account belongs to %s", name, method, before["login_type"])
        return await login_refused_page(request, refusal, next_url)
    if former is not None and former != method:
        log.info("%s signed in with %s; the account was last used with %s", name, method, former)
    if before is not None and bool(row["admin"]) != was_admin:
        log.info("%s %s admin at login", name, "became" if row["admin"] else "is no longer")
        await admins.sync_account(hub, name, bool(row["admin"]))
        if not row["admin"]:  # e.g. removed from the provider's admin group
            note = await admins.demoted_server(hub, name)
            if note:
                log.warning("%s (at login: the login provider no longer makes them an admin)", note)
    response = raw_redirect(safe_next(next_url, await default_url(hub, name)))
    set_hub_cookie(request, response, sessions.COOKIE_NAME, await hub.sessions.create(name), max_age=sessions.MAX_AGE)
    if not request.cookies.get(sessions.SESSION_ID_COOKIE):  # kept across logins, as JupyterHub keeps it
        set_session_id_cookie(request, response, sessions.new_session_id())
    raise response


@routes.get("/hub/login")
async def login_page(request):
    hub = request.app[HUB]
    auth = hub.authenticator
    identity = await identify(request)
    next_url = request.query.get("next", "")
    if identity is not None:
        raise raw_redirect(safe_next(next_url, await default_url(hub, identity.name)))
    if auth.auto_login:
        raise web.HTTPFound(auth.login_url(next_url))
    return await render(request, "login.html", login_context(auth, next_url))


@routes.post("/hub/login")
async def login_submit(request):
    hub = request.app[HUB]
    auth = hub.authenticator
    form = await xsrf.checked_form(request)
    next_url = form.get("next", "")
    if not auth.password_form:
        raise web.HTTPBadRequest(text="This hub has no password login; use the sign-in button")
    try:
        logged_in = await auth.login(form.get("username", ""), form.get("password", ""), client_address(request))
    except LoginRefused as e:
        return await login_refused_page(request, str(e), next_url, username=form.get("username", ""))
    return await finish_login(request, logged_in, next_url)


@routes.get("/hub/logout")
async def logout(request):
    hub = request.app[HUB]
    identity = await identify(request)
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if cookie:
        await hub.sessions.delete(cookie)
    if identity is not None:
        # Browsers lose access to servers too (their OAuth tokens stop working).
        await hub.db.run(tokens.revoke, user=identity.name, kind="oauth")
    if hub.settings.pages.announcements["logout"]:
        # A page, so the logout announcement can be read (else straight back to the login page).
        response = await render(request, "logout.html")
    else:
        response = web.HTTPFound(hub.url("/hub/login"))
    response.del_cookie(sessions.COOKIE_NAME, path=hub.url("/hub/"))
    response.del_cookie(sessions.SESSION_ID_COOKIE, path=hub.base_url)
    if isinstance(response, web.HTTPException):
        raise response
    return response


def _require_password_change(auth):
    if not auth.can_change_password:
        raise web.HTTPBadRequest(text="Passwords are managed outside the hub for this authenticator")


@routes.get("/hub/auth/change-password")
async def change_password_page(request):
    await require_user(request)
    _require_password_change(request.app[HUB].authenticator)
    return await render(request, "change_password.html", {"target": None})


@routes.post("/hub/auth/change-password")
async def change_password(request):
    identity = await require_user(request)
    form = await xsrf.checked_form(request)
    auth = request.app[HUB].authenticator
    _require_password_change(auth)
    try:
        await auth.change_password(identity.name, form.get("old_password", ""), form.get("new_password", ""))
    except LoginRefused as e:
        return await render(request, "change_password.html", {"target": None, "error": str(e)}, status=400)
    return await render(request, "change_password.html", {"target": None, "done": "Your password was changed."})


async def _require_reset(request, identity):
    if not identity.admin:
        raise web.HTTPForbidden(text="Only admins can reset other users' passwords")
    auth = request.app[HUB].authenticator
    name = request.match_info["name"]
    if not auth.can_reset_password or await auth.db.run(users.user_model_row, name) is None:
        raise web.HTTPBadRequest(text=f"Cannot reset the password of {name} with this authenticator")
    return auth, name


@routes.get("/hub/auth/change-password/{name}")
async def reset_password_page(request):
    identity = await require_user(request)
    _, name = await _require_reset(request, identity)
    return await render(request, "change_password.html", {"target": name})


@routes.post("/hub/auth/change-password/{name}")
async def reset_password(request):
    identity = await require_user(request)
    form = await xsrf.checked_form(request)
    auth, name = await _require_reset(request, identity)
    new = form.get("new_password", "")
    try:
        if new:
            await auth.set_password(name, new)
        else:
            await auth.reset_password(name)
    except LoginRefused as e:
        return await render(request, "change_password.html", {"target": name, "error": str(e)}, status=400)
    done = f"The password of {name} was " + ("set." if new else "cleared: their next login sets a new one.")
    return await render(request, "change_password.html", {"target": name, "done": done})
