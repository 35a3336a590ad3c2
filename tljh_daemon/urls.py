"""Paths under `base_url`: the hub can live below a sub-path (e.g. /jupyter/) behind another
web server, so every route, redirect, cookie path and URL handed out is built here."""

from urllib.parse import quote

from aiohttp import web


def url_name(name):
    return quote(name, safe="@~")


def site_url(base_url="/", *, host="", port=80, https=False, domains=()):
    """Where people reach the hub (for messages and logs): https when it is on, with the first
    Let's Encrypt domain when there is one, else the listening address or 127.0.0.1; the port
    only when it is not the scheme's default; ends with base_url."""
    scheme, default_port = ("https", 443) if https else ("http", 80)
    host = (domains[0] if https and domains else host) or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"{scheme}://{host}{'' if port == default_port else f':{port}'}{base_url}"


def join(base_url, path):
    """`path` (starting with '/') under `base_url` (starting and ending with '/')."""
    return base_url[:-1] + path


def server_prefix(user, server="", base_url="/"):
    prefix = join(base_url, f"/user/{url_name(user)}/")
    return prefix + (f"{url_name(server)}/" if server else "")


def prefixed_routes(routes, base_url):
    """A RouteTableDef's routes moved under `base_url` (as they are for '/')."""
    if base_url == "/":
        return list(routes)
    moved = []
    for route in routes:
        if isinstance(route, web.StaticDef):
            moved.append(web.StaticDef(join(base_url, route.prefix), route.path, route.kwargs))
        else:
            moved.append(web.RouteDef(route.method, join(base_url, route.path), route.handler, route.kwargs))
    return moved


def outside_routes(base_url):
    """Requests outside the sub-path (Traefik sends every path to the hub) go to its start."""
    if base_url == "/":
        return []

    async def to_base(request):
        raise web.HTTPFound(base_url)

    return [web.get("/", to_base), web.get(base_url[:-1], to_base)]
