"""The two routes of OAuth sign-in: off to the provider, and back (the callback).

Whatever goes wrong comes back as the login page with a clear message and one log line;
nothing is created before finish_login.
"""

import logging

from aiohttp import web

from ..auth.oauth import CALLBACK_PATH, LOGIN_PATH, STATE_COOKIE, STATE_TTL, OAuthFailure
from ..hub import HUB
from ..identity import is_https, set_hub_cookie
from .login import finish_login, login_refused_page

log = logging.getLogger(__name__)


def origin(request):
    """The scheme and host the browser used (Traefik passes Host and X-Forwarded-Proto)."""
    return f"{'https' if is_https(request) else 'http'}://{request.host}"


async def failure_page(request, error, next_url=""):
    if error.log_message:
        log.warning("%s", error.log_message)
    response = await login_refused_page(request, str(error), next_url, status=error.status)
    response.del_cookie(STATE_COOKIE, path=request.app[HUB].url("/hub/"))
    return response


async def unexpected_failure(request, auth, next_url=""):
    """A bug or a provider answer of a shape nobody foresaw: still the login page, not a 500."""
    log.exception("OAuth: unexpected error during a sign-in with %s", auth.login_service)
    return await failure_page(request, OAuthFailure(
        f"Signing in with {auth.login_service} failed unexpectedly. Please try again; if it keeps failing, "
        "tell the hub's administrator.", None, 502), next_url)


def make_routes(auth):
    routes = web.RouteTableDef()

    @routes.get(LOGIN_PATH)
    async def oauth_login(request):
        next_url = request.query.get("next", "")
        try:
            url, state = await auth.begin(origin(request), next_url)
        except OAuthFailure as e:
            return await failure_page(request, e, next_url)
        except Exception:
            return await unexpected_failure(request, auth, next_url)
        response = web.HTTPFound(url)
        set_hub_cookie(request, response, STATE_COOKIE, state, max_age=STATE_TTL)
        raise response

    @routes.get(CALLBACK_PATH)
    async def oauth_callback(request):
        try:
            logged_in, next_url = await auth.complete(request.query, request.cookies.get(STATE_COOKIE))
        except OAuthFailure as e:
            return await failure_page(request, e)
        except Exception:
            return await unexpected_failure(request, auth)
        try:
            return await finish_login(request, logged_in, next_url)
        except web.HTTPFound as done:
            done.del_cookie(STATE_COOKIE, path=request.app[HUB].url("/hub/"))
            log.info("OAuth: %s signed in", logged_in.name)
            raise

    return routes
