"""Workshop accounts (TmpAuthenticator): /hub/tmplogin makes a new temporary user and logs the
browser in as it; the shared login path then sends it to its server's spawn page."""

from aiohttp import web

from ..auth import LoggedIn
from ..hub import HUB
from .login import finish_login

routes = web.RouteTableDef()


@routes.get("/hub/tmplogin")
async def tmplogin(request):
    """Always a new user (as upstream): a visit here replaces the browser's session."""
    name = request.app[HUB].authenticator.new_user()
    return await finish_login(request, LoggedIn(name), request.query.get("next", ""))
