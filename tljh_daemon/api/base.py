"""Helpers shared by API handlers: authentication, scope checks, JSON bodies."""

import json

from aiohttp import web

from .. import groups, scopes, server_store, users, xsrf
from ..hub import HUB
from ..identity import identify

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def authenticated(request):
    """The caller's Identity; 403 when there is none (JupyterHub answers 403, not 401)."""
    identity = await identify(request)
    if identity is None:
        raise web.HTTPForbidden(text="Missing or invalid credentials")
    if identity.via == "cookie" and request.method not in SAFE_METHODS:
        xsrf.check(request)
    return identity


async def require(request, *needed, user=None, server=None, group=None, user_groups=()):
    """The caller's Identity if it holds any of the `needed` scopes for the target (JupyterHub's needs_scope)."""
    identity = await authenticated(request)
    target = dict(user=user, server=server, group=group, user_groups=user_groups)
    if not any(identity.can(scope, **target) for scope in needed):
        if user is not None and any(scopes.held_anywhere(identity.scopes, scope) for scope in needed):
            # Held, but only for others: the same answer as for a user that does not exist
            # (as JupyterHub answers); a scope not held at all is a 403.
            raise web.HTTPNotFound(text="No such user")
        raise web.HTTPForbidden(
            text=f"Action is not authorized with current scopes; requires any of [{', '.join(needed)}]")
    return identity


async def json_body(request, required=True):
    """The parsed JSON object body; a clear 400 for anything else (not UTF-8, not JSON,
    nested too deeply). A body that cannot be read at all is the errors middleware's job."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise web.HTTPBadRequest(text=f"The request body is not valid UTF-8 (byte {e.start})") from None
    if not text.strip():
        if required:
            raise web.HTTPBadRequest(text="A JSON body is required")
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise web.HTTPBadRequest(text=f"Invalid JSON in request body: {e}") from None
    except RecursionError:
        raise web.HTTPBadRequest(text="Invalid JSON in request body: nested too deeply") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="The request body must be a JSON object")
    return data


async def user_row(request, *needed, server=None):
    """(Identity, users row) for the `{name}` in the URL, checking any of `needed` on that user
    (or on that user's `server`, so `!server=<user>/<server>` filters apply)."""
    identity, row, *_ = await target_user(request, *needed, server=server, with_servers=False)
    return identity, row


def _read_target(db, name, with_servers):
    """(On the database thread.) What a handler about user `name` reads, in one trip there: its
    groups and row, and with `with_servers` its default server's record and its named servers'."""
    group_names, row = groups.names_of_user(db, name), users.user_model_row(db, name)
    if not with_servers:
        return group_names, row, None, {}
    return (group_names, row, server_store.record(db, name),
            server_store.named_records_of_users(db, [name]).get(name, {}))


async def target_user(request, *needed, server=None, with_servers=True):
    """(Identity, users row, group names, default server record or None, {name: record} of its
    named servers) for the `{name}` in the URL, checking any of `needed` on that user (or its
    `server`) as user_row does. Without `with_servers` the last two are not read (None, {})."""
    name = request.match_info["name"]
    group_names, row, record, named = await request.app[HUB].db.run(_read_target, name, with_servers)
    identity = await require(request, *needed, user=name, server=server, user_groups=group_names)
    if row is None:
        raise web.HTTPNotFound(text=f"No such user: {name}")
    return identity, row, group_names, record, named
