"""XSRF protection for cookie-authenticated, state-changing requests.

A random `_xsrf` cookie (HttpOnly, SameSite=Lax) must be echoed in the
`_xsrf` form field or the `X-XSRFToken` header. Pages render the value into
their forms, so scripts never need to read the cookie.
"""

import hmac
import secrets

from aiohttp import web

from .forms import read_form
from .identity import set_hub_cookie

COOKIE = "_xsrf"
NEW_TOKEN = web.RequestKey("new_xsrf", str)  # made for this request: set as a cookie on its response


def token(request):
    """This request's XSRF token, creating one (and its cookie) when missing."""
    value = request.cookies.get(COOKIE) or request.get(NEW_TOKEN)
    if not value:
        value = request[NEW_TOKEN] = secrets.token_urlsafe(24)
    return value


def set_cookie_if_new(request, response):
    if request.get(NEW_TOKEN):
        set_hub_cookie(request, response, COOKIE, request[NEW_TOKEN])


def check(request, form=None):
    """Raise 403 unless the request carries the XSRF token of its cookie."""
    expected = request.cookies.get(COOKIE)
    supplied = request.headers.get("X-XSRFToken") or (form or {}).get("_xsrf")
    if not expected or not supplied or not hmac.compare_digest(str(expected), str(supplied)):
        raise web.HTTPForbidden(text="XSRF token missing or wrong; reload the page and try again")


async def checked_form(request):
    """The posted form of a page, once its XSRF token (field or header) is checked."""
    form = await read_form(request)
    check(request, form)
    return form
