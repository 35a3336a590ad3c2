"""Sign-up pages (NativeAuthenticator): /hub/signup, and /hub/authorize as upstream names
the approval area (here a section of the admin panel)."""

from aiohttp import web

from .. import xsrf
from ..auth.native import SignupRefused, signups_of
from ..hub import HUB
from .pages import render


def native(request):
    """The hub's NativeAuthenticator; 404 under another one."""
    return signups_of(request.app[HUB].authenticator)


routes = web.RouteTableDef()


async def _page(request, auth, status=200, **context):
    return await render(request, "signup.html", {
        "enabled": auth.settings["enable_signup"], "ask_email": auth.settings["ask_email_on_signup"],
        "minimum": auth.settings["minimum_password_length"], **context}, status=status)


@routes.get("/hub/signup")
async def signup_page(request):
    return await _page(request, native(request))


@routes.post("/hub/signup")
async def signup_submit(request):
    auth = native(request)
    form = await xsrf.checked_form(request)
    name = str(form.get("username", ""))
    try:
        status = await auth.signup(name, str(form.get("password", "")), str(form.get("password_confirm", "")),
                                   str(form.get("email", "")))
    except SignupRefused as e:
        return await _page(request, auth, status=400, error=str(e), username=name, email=form.get("email", ""))
    return await _page(request, auth, result=status, username=name.strip().lower())


@routes.get("/hub/authorize")
async def authorize_area(request):
    native(request)
    raise web.HTTPFound(request.app[HUB].url("/hub/admin#signups"))


