"""Workshop accounts (TmpAuthenticator): /hub/tmplogin makes a new temporary user and logs the
browser in as it; the shared login path then sends it to its server's spawn page."""

from aiohttp import web

from ..auth import LoggedIn
from ..auth.tmp import WorkshopBusy
from ..hub import HUB
from ..identity import client_address
from .login import finish_login

routes = web.RouteTableDef()


@routes.get("/hub/tmplogin")
async def tmplogin(request):
    """Always a new user (as upstream): a visit here replaces the browser's session. A full
    workshop or a client over its rate gets a page saying so (503 or 429, with Retry-After)."""
    try:
        name = await request.app[HUB].authenticator.new_user(client_address(request))
    except WorkshopBusy as e:
        error = web.HTTPTooManyRequests if e.status == 429 else web.HTTPServiceUnavailable
        raise error(text=str(e), headers={"Retry-After": str(e.retry_after)}) from None
    return await finish_login(request, LoggedIn(name), request.query.get("next", ""))
