"""JupyterHub's RBAC scopes, the subset this hub checks.

A held scope is `name` or `name!filter` where the filter is `user=<u>`,
`server=<u>/<server>` or `group=<g>`. Broader scopes imply narrower ones
(e.g. `admin:servers` implies `servers` implies `start:servers` and `delete:servers`).
"""

import functools
from dataclasses import dataclass

#: JupyterHub 6's scope hierarchy: each scope and the narrower scopes it directly implies.
IMPLIES = {
    "admin:users": {"admin:auth_state", "users", "read:roles:users", "delete:users"},
    "users": {"read:users", "list:users", "users:activity"},
    "list:users": {"read:users:name"},
    "read:users": {"read:users:name", "read:users:groups", "read:users:activity"},
    "read:roles": {"read:roles:users", "read:roles:services", "read:roles:groups"},
    "users:activity": {"read:users:activity"},
    "admin:servers": {"admin:server_state", "servers"},
    "servers": {"read:servers", "start:servers", "delete:servers"},
    "read:servers": {"read:users:name"},
    "tokens": {"read:tokens"},
    "admin:groups": {"groups", "read:roles:groups", "delete:groups"},
    "groups": {"read:groups", "list:groups"},
    "list:groups": {"read:groups:name"},
    "read:groups": {"read:groups:name"},
    "admin:services": {"list:services", "read:services", "read:roles:services"},
    "list:services": {"read:services:name"},
    "read:services": {"read:services:name"},
    "users:shares": {"read:users:shares"},
    "groups:shares": {"read:groups:shares"},
    "shares": {"access:servers", "read:shares", "users:shares", "groups:shares"},
}

#: every scope name this hub knows (a token cannot be given anything else)
KNOWN = set(IMPLIES) | {s for implied in IMPLIES.values() for s in implied} | {
    "self", "inherit", "access:servers", "access:services", "read:hub", "admin-ui", "proxy",
    "shutdown", "read:metrics",
}

#: which fields of a user model each scope lets the holder read (as JupyterHub filters them)
USER_MODEL_FIELDS = {
    "read:users": {"kind", "name", "admin", "roles", "groups", "server", "pending", "created", "last_activity"},
    "read:users:name": {"kind", "name", "admin"},
    "read:users:groups": {"kind", "name", "groups"},
    "read:users:activity": {"kind", "name", "last_activity"},
    "read:servers": {"kind", "name", "servers"},
    "read:roles:users": {"kind", "name", "roles", "admin"},
}


#: JupyterHub's `self` metascope (scopes.py's _expand_self_scope): a user's own things, filtered to
#: the user; `read:servers`, `delete:servers`, `start:servers` are implied by `servers`, named for clarity.
SELF = ("read:users", "users:activity", "servers", "read:servers", "delete:servers", "start:servers",
        "tokens", "access:servers", "users:shares", "read:shares")

#: JupyterHub's default `admin` role
ADMIN = frozenset({
    "admin-ui", "admin:users", "admin:servers", "admin:services", "tokens", "admin:groups", "list:services",
    "read:services", "read:hub", "proxy", "shutdown", "access:services", "access:servers", "read:roles",
    "read:metrics", "shares", "list:users", "list:groups", "delete:servers", "delete:groups", "delete:users",
    "start:servers",
})


def self_scopes(name):
    """The `self` metascope of user `name`: JupyterHub's `user` role."""
    return {f"{scope}!user={name}" for scope in SELF}


def role_scopes(name, admin):
    """The scopes of JupyterHub's default roles for a user: `user` (their own things), and
    `admin` (everything) for admins. Services are not included: `access:services` comes from
    a role (roles.py) that grants it."""
    own = self_scopes(name)
    return own | ADMIN if admin else own


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


@functools.lru_cache(maxsize=4096)
def _expand(scope):
    base, _, flt = scope.partition("!")
    names = {base}
    frontier = [base]
    while frontier:
        for implied in IMPLIES.get(frontier.pop(), ()):
            if implied not in names:
                names.add(implied)
                frontier.append(implied)
    return frozenset(names), flt


def identify_scopes(name):
    """What any token of `name` may read about its owner on /hub/api/user (as in JupyterHub)."""
    return {f"read:users:name!user={name}", f"read:users:groups!user={name}"}


@dataclass(frozen=True)
class Grant:
    """Where a set of held scopes grants one scope: everywhere, or for these filter targets."""

    everywhere: bool = False
    users: frozenset = frozenset()
    servers: frozenset = frozenset()  # "<user>/<server>"
    groups: frozenset = frozenset()
    services: frozenset = frozenset()

    def allows(self, *, user=None, server=None, group=None, user_groups=(), service=None):
        if self.everywhere:
            return True
        if user is not None and (user in self.users or (server is not None and f"{user}/{server}" in self.servers)):
            return True
        if self.groups and (group in self.groups or any(g in self.groups for g in user_groups)):
            return True
        return service is not None and service in self.services


EVERYWHERE = Grant(everywhere=True)


@functools.lru_cache(maxsize=2048)
def grant(held: frozenset, needed: str) -> Grant:
    """Where `held` grants `needed`. Computed once per (held, needed): a request checks the same
    scope against many targets (each user of a listed page), and a user's tokens hold the same set."""
    filters: dict = {"user": set(), "server": set(), "group": set(), "service": set()}
    for scope in held:
        names, flt = _expand(scope)
        if needed not in names:
            continue
        if not flt:
            return EVERYWHERE
        kind, _, value = flt.partition("=")
        if kind in filters:
            filters[kind].add(value)
    return Grant(False, frozenset(filters["user"]), frozenset(filters["server"]), frozenset(filters["group"]),
                 frozenset(filters["service"]))


def allows(held, needed, *, user=None, server=None, group=None, user_groups=(), service=None):
    """True when any scope in `held` grants `needed` for the target: a `user` (who is in
    `user_groups`), a `server` of that user, or a `group`."""
    return grant(frozenset(held), needed).allows(user=user, server=server, group=group, user_groups=user_groups,
                                                 service=service)


def within(requested, held):
    """The scopes of `requested` that someone holding `held` could hand out."""
    requested = set(requested)
    if requested <= held:  # the usual token: its owner's own scopes, or some of them verbatim
        return requested
    return {scope for scope in requested if subset_of([scope], held)}


def held_anywhere(held, needed):
    """Does `held` grant `needed` for any target at all (whatever its filter)?"""
    return any(needed in _expand(scope)[0] for scope in held)


def valid(scope):
    """Is `scope` a well-formed scope string this hub knows?"""
    base, sep, flt = scope.partition("!")
    if base not in KNOWN:
        return False
    if not sep:
        return True
    kind, eq, value = flt.partition("=")
    return bool(eq and value) and kind in ("user", "server", "group", "service")


def subset_of(requested, held):
    """Can someone holding `held` hand out every scope in `requested`?"""
    for scope in requested:
        base, _, flt = scope.partition("!")
        kind, _, value = flt.partition("=")
        if kind == "user":
            ok = allows(held, base, user=value)
        elif kind == "server":
            user, _, server = value.partition("/")
            ok = allows(held, base, user=user, server=server)
        elif kind == "group":
            ok = allows(held, base, group=value)
        else:
            ok = any(s == base or (base in _expand(s)[0] and "!" not in s) for s in held)
        if not ok:
            return False
    return True


#: filters a role's scope may leave without a value: they stand for the role's holder
ABBREVIATED_FILTERS = ("user", "server", "service")


def valid_in_role(scope):
    """A scope a role may list: a valid one, or one whose filter is abbreviated (`!user`,
    `!server`, `!service`: the user, server or service holding the role), as JupyterHub allows."""
    base, sep, flt = scope.partition("!")
    if sep and flt in ABBREVIATED_FILTERS:
        return base in KNOWN
    return valid(scope)
