"""Who is making a request: an API token (`Authorization: token|bearer`) or the hub login cookie.

Shared by the REST API (api/) and the pages (handlers/), with the hub's cookie settings and
where a browser without an identity is sent (the login page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlencode

from aiohttp import web

from . import scopes, sessions, tokens, users
from .hub import HUB
from .scopes import Grant

AUTH_HEADER = re.compile(r"^(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass
class Identity:
    name: str
    admin: bool
    scopes: frozenset  # any iterable of scope strings; kept as a frozenset
    via: str  # "token" or "cookie"
    token: object = None  # the api_tokens row, for user token requests
    kind: str = "user"  # or "service"

    def __post_init__(self):
        self.scopes = frozenset(self.scopes)

    def can(self, scope, **target):
        return self.grant(scope).allows(**target)

    def grant(self, scope) -> Grant:
        """Where this identity holds `scope` (looked up once per set of scopes, then cached)."""
        return scopes.grant(self.scopes, scope)


IDENTITY: web.RequestKey[Optional[Identity]] = web.RequestKey("identity")


def token_from_request(request):
    match = AUTH_HEADER.match(request.headers.get("Authorization", ""))
    return match.group(1) if match else None


def _token_and_owner(db, secret):
    row = tokens.lookup(db, secret)
    return row, (users.user_model_row(db, row["user"]) if row else None)


async def identify(request: web.Request) -> Optional[Identity]:
    """The request's Identity, or None. Cached on the request."""
    if IDENTITY in request:
        return request[IDENTITY]
    hub = request.app[HUB]
    identity = None
    secret = token_from_request(request)
    service = hub.service_manager.service_for_token(secret) if secret and hub.service_manager else None
    if service is not None:
        identity = Identity(service.name, service.admin, service.granted_scopes, "token", kind="service")
    elif secret:
        row, user = await hub.db.run(_token_and_owner, secret)
        if user is not None:
            # A token never does more than its owner may do now (an admin's tokens lose their
            # admin scopes when the admin flag goes), as JupyterHub intersects them; `inherit`
            # (a server token under a `server` role that says so) is whatever the owner holds now.
            owner = await hub.roles.scopes_of_user_async(hub.db, user["name"], bool(user["admin"]))
            token_scopes = tokens.scopes_of(row)
            held = owner if "inherit" in token_scopes else scopes.within(token_scopes, owner)
            identity = Identity(user["name"], bool(user["admin"]), held, "token", row)
    else:
        name = await hub.sessions.user_for(request.cookies.get(sessions.COOKIE_NAME))
        user = await hub.db.run(users.user_model_row, name) if name else None
        if user is not None:
            held = await hub.roles.scopes_of_user_async(hub.db, user["name"], bool(user["admin"]))
            identity = Identity(user["name"], bool(user["admin"]), held, "cookie")
    request[IDENTITY] = identity
    return identity


def raw_path_qs(request):
    """The path and query exactly as the client sent them (still %-encoded): decoding would
    turn e.g. `%23` into a `#` that cuts the URL short when redirecting."""
    return request.raw_path


def login_redirect(request):
    """Where a browser goes without an identity: the login page, coming back here after."""
    return web.HTTPFound(request.app[HUB].url("/hub/login?") + urlencode({"next": raw_path_qs(request)}))


def _loopback(address):
    return address.startswith("127.") or address in ("::1", "localhost")


def client_address(request):
    """The browser's address, for throttling: when the request came over loopback (from
    Traefik), the last address in X-Forwarded-For that is not loopback (Traefik replaces what
    an untrusted client sends and appends the peer it saw; a local nginx in front is skipped)."""
    peer = request.remote or ""
    if not _loopback(peer):
        return peer
    hops = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    outside = [a for a in hops if not _loopback(a)]
    return outside[-1] if outside else (hops[-1] if hops else peer)


def is_https(request):
    # Only Traefik reaches the daemon (it listens on loopback), so its header is trusted.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_hub_cookie(request, response, name, value, max_age=None, httponly=True):
    response.set_cookie(
        name,
        value,
        path=request.app[HUB].url("/hub/"),
        httponly=httponly,
        samesite="Lax",
        secure=is_https(request),
        max_age=max_age,
    )


def set_session_id_cookie(request, response, value):
    """JupyterHub's jupyterhub-session-id: on the hub's base_url (user servers read it), HttpOnly,
    not signed (services may read it), as long-lived as the login cookie."""
    response.set_cookie(
        sessions.SESSION_ID_COOKIE,
        value,
        path=request.app[HUB].base_url,
        httponly=True,
        samesite="Lax",
        secure=is_https(request),
        max_age=sessions.MAX_AGE,
    )


def session_id_cookie_if_missing(request, response):
    """A browser logged in before the hub set jupyterhub-session-id (or that lost it) gets one
    on its next page, as JupyterHub gives it."""
    identity = request.get(IDENTITY)
    if (identity is not None and identity.via == "cookie"
            and not request.cookies.get(sessions.SESSION_ID_COOKIE)
            and sessions.SESSION_ID_COOKIE not in response.cookies):
        set_session_id_cookie(request, response, sessions.new_session_id())
