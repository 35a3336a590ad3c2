"""JupyterHub's RBAC scopes, the subset this hub checks.

A held scope is `name` or `name!filter` where the filter is `user=<u>`,
`server=<u>/<server>` or `group=<g>`. Broader scopes imply narrower ones
(e.g. `admin:servers` implies `servers` implies `read:servers`).
"""

IMPLIES = {
    "admin:users": {"users", "read:users", "users:activity", "read:users:activity", "read:users:name", "read:users:groups"},
    "users": {"read:users", "users:activity", "read:users:activity", "read:users:name", "read:users:groups"},
    "read:users": {"read:users:name", "read:users:groups", "read:users:activity"},
    "users:activity": {"read:users:activity"},
    "admin:servers": {"servers", "read:servers", "admin:server_state"},
    "servers": {"read:servers"},
    "tokens": {"read:tokens"},
    "admin:groups": {"groups", "read:groups", "read:groups:name"},
}


def role_scopes(name, admin):
    """The scopes a logged-in user holds: their own things, or everything for admins."""
    own = {
        f"{scope}!user={name}"
        for scope in ("users", "servers", "access:servers", "tokens", "read:users", "read:servers")
    }
    if admin:
        return own | {
            "admin:users", "admin:servers", "access:servers", "tokens", "admin:groups",
            "read:hub", "admin-ui", "proxy", "shutdown", "read:metrics",
        }
    return own


def server_token_scopes(name, server=""):
    """What a single-user server's own API token may do (JupyterHub's `server` role)."""
    return {
        f"users:activity!user={name}",
        f"access:servers!server={name}/{server}",
        f"read:users:name!user={name}",
    }


def access_scopes(name, server=""):
    """Scopes that let a browser into a server (JUPYTERHUB_OAUTH_ACCESS_SCOPES)."""
    return [f"access:servers!server={name}/{server}", f"access:servers!user={name}"]


def _expand(scope):
    base, _, flt = scope.partition("!")
    names = {base}
    frontier = [base]
    while frontier:
        for implied in IMPLIES.get(frontier.pop(), ()):
            if implied not in names:
                names.add(implied)
                frontier.append(implied)
    return names, flt


def allows(held, needed, *, user=None, server=None):
    """True when any scope in `held` grants `needed` for `user` (and `server`)."""
    for scope in held:
        names, flt = _expand(scope)
        if needed not in names:
            continue
        if not flt:
            return True
        kind, _, value = flt.partition("=")
        if kind == "user" and user is not None and value == user:
            return True
        if kind == "server" and user is not None and server is not None and value == f"{user}/{server}":
            return True
    return False
