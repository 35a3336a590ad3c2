"""The pages and API routes the chosen authenticator asks for (web layer: backends import none).

An authenticator names the hub's page sets it needs in `pages`; a plugin's authenticator can
also return its own route definitions from `routes()`.
"""

from .api import signups as api_signups
from .handlers import oauth as oauth_pages
from .handlers import signup as signup_pages
from .handlers import tmplogin

PAGE_SETS = {
    "signup": lambda auth: [*signup_pages.routes, *api_signups.routes],
    "oauth": oauth_pages.make_routes,
    "tmplogin": lambda auth: list(tmplogin.routes),
}


def routes_for(auth):
    """Route definitions for `auth`'s page sets, then its own."""
    unknown = sorted(set(auth.pages) - set(PAGE_SETS))
    if unknown:
        raise ValueError(f"{type(auth).__name__}.pages names unknown page sets {unknown} "
                         f"(known: {', '.join(sorted(PAGE_SETS))})")
    return [route for name in auth.pages for route in PAGE_SETS[name](auth)] + list(auth.routes())
