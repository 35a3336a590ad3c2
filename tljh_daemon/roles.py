"""RBAC roles: JupyterHub's default roles plus those configured, resolved to held scopes.

Roles come from config.yaml's `roles` key and from `c.JupyterHub.load_roles` in
jupyterhub_config.d (both in JupyterHub's `load_roles` shape: name, description, scopes,
users, groups, services). config.yaml may also key them by name, so that `tljh-config
add-item roles.<name>.groups <group>` can build one. They are read at start-up (a `tljh-config
reload` restarts the hub) and resolved per request: a user holds the default `user` role, the
`admin` role when they are an admin, and every role naming them or a group they are in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import scopes
from .users import InvalidName, normalize_name

#: the fields of a role, as in JupyterHub's load_roles
FIELDS = ("name", "description", "scopes", "users", "groups", "services")
#: JupyterHub's rule for role names
NAME = re.compile(r"^[a-z][a-z0-9\-_~.]{1,253}[a-z0-9]$")


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    scopes: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def model(self):
        return {"kind": "role", "name": self.name, "description": self.description, "scopes": list(self.scopes),
                "users": list(self.users), "groups": list(self.groups), "services": list(self.services)}


#: JupyterHub's default roles (every user holds `user`; admins hold `admin`; a server's own token
#: holds `server`, a token made without scopes `token`)
DEFAULTS = (
    Role("user", "Standard user privileges", ("self",)),
    Role("admin", "Elevated privileges (can do anything)", tuple(sorted(scopes.ADMIN))),
    Role("server", "Post activity only", ("users:activity!user", "access:servers!server")),
    Role("token", "Token with same permissions as its owner", ("inherit",)),
)


#: what sharing.enabled adds to the `user` role (as JupyterHub's sharing docs configure it)
SHARING_SCOPES = ("shares!user", "read:users:name", "read:groups:name")

#: why the admin role takes no groups
ADMIN_GROUPS = ("the admin role cannot go to a group: an admin is a user with the admin flag (sudo, the admin "
                "panel), so list them in users.admin (or the admin role's users)")


def entries(raw) -> list[tuple[str, Mapping[str, Any]]]:
    """(config key, role mapping with its name) of config.yaml's `roles`: a list in
    load_roles' shape (`roles.0`) or a mapping from name to role (`roles.<name>`)."""
    if isinstance(raw, Mapping):
        return [(f"roles.{name}", {**(spec if isinstance(spec, Mapping) else {}), "name": name})
                for name, spec in raw.items()]
    return [(f"roles.{i}", spec) for i, spec in enumerate(raw or [])]


def problems(raw) -> list[tuple[str, str]]:
    """(key, reason) of what is wrong in config.yaml's `roles` beyond its schema: names,
    scopes, and changes to the admin role's scopes (which JupyterHub does not allow)."""
    found = []
    seen = set()
    for key, spec in entries(raw):
        name = spec.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            found.append((f"{key}.name", f"{name!r} is not a role name (lowercase letters, digits, - _ ~ ., "
                                         f"starting with a letter, at least 3 characters)"))
            continue
        if name in seen:
            found.append((f"{key}.name", f"the role {name!r} is defined twice"))
        seen.add(name)
        bad = [s for s in spec.get("scopes") or [] if not scopes.valid_in_role(s)]
        if bad:
            found.append((f"{key}.scopes", f"unknown scopes: {', '.join(map(str, bad))} (scopes are JupyterHub's, "
                                           f"e.g. access:services!service=<name>, read:users!group=<group>)"))
        if name == "admin" and spec.get("scopes"):
            found.append((f"{key}.scopes", "the admin role's scopes cannot be changed; give it users or "
                                           "services only"))
        if name == "admin" and spec.get("groups"):
            found.append((f"{key}.groups", ADMIN_GROUPS))
        if name == "token" and spec.get("scopes"):
            found.append((f"{key}.scopes", "the token role's scopes cannot be changed here (a token made "
                                           "without scopes gets its owner's)"))
    return found


def from_config(raw) -> tuple[Role, ...]:
    """The Roles of a validated config.yaml `roles` value (user names normalized, as the hub's)."""
    return tuple(
        Role(name=spec["name"], description=str(spec.get("description") or ""),
             scopes=tuple(spec.get("scopes") or ()), users=_user_names(spec.get("users") or ()),
             groups=tuple(str(g) for g in spec.get("groups") or ()),
             services=tuple(str(s) for s in spec.get("services") or ()))
        for _, spec in entries(raw)
    )


def _resolve(scope, *, user=None, service=None):
    """A role's scope as its holder holds it: `self` expanded, abbreviated filters filled in."""
    if scope == "self":
        return scopes.self_scopes(user) if user is not None else set()
    if scope == "inherit":
        return set()  # a token's: its owner's scopes, which a token is always intersected with
    base, sep, flt = scope.partition("!")
    if sep and flt in scopes.ABBREVIATED_FILTERS:
        if flt == "user" and user is not None:
            return {f"{base}!user={user}"}
        if flt == "server" and user is not None:
            return {f"{base}!server={user}/"}
        if flt == "service" and service is not None:
            return {f"{base}!service={service}"}
        return set()
    return {scope}


class Roles:
    """The roles in force: the defaults, changed and extended by the configured ones."""

    def __init__(self, configured: Iterable[Role] = (), sharing: bool = False):
        roles = {role.name: role for role in DEFAULTS}
        for role in configured:
            base = roles.get(role.name)
            if base is None:
                roles[role.name] = role
                continue
            keep = role.scopes if role.name in ("user", "server") and role.scopes else base.scopes
            roles[role.name] = Role(role.name, role.description or base.description, keep,
                                    _union(base.users, role.users), _union(base.groups, role.groups),
                                    _union(base.services, role.services))
        if sharing:  # sharing.enabled: every user may share their own servers, with users and groups by name
            user = roles["user"]
            roles["user"] = Role(user.name, user.description, _union(user.scopes, SHARING_SCOPES), user.users,
                                 user.groups, user.services)
        #: sharing.enabled: shares (sharing.py) add to their receivers' scopes
        self.sharing = sharing
        self.roles = roles
        self._by_user: dict[str, list[Role]] = {}
        self._by_group: dict[str, list[Role]] = {}
        self._by_service: dict[str, list[Role]] = {}
        for role in roles.values():
            for name in role.users:
                self._by_user.setdefault(name, []).append(role)
            for name in role.groups:
                self._by_group.setdefault(name, []).append(role)
            for name in role.services:
                self._by_service.setdefault(name, []).append(role)

    @property
    def needs_groups(self):
        """Does any role go to a group (so a user's groups must be looked up)?"""
        return bool(self._by_group)

    def _of_user(self, name, admin, groups):
        held = {"user": self.roles["user"]}
        if admin:
            held["admin"] = self.roles["admin"]
        for role in self._by_user.get(name, ()):
            held[role.name] = role
        for group in groups:
            for role in self._by_group.get(group, ()):
                held[role.name] = role
        return held

    def user_roles(self, name, admin, groups=()) -> list[str]:
        """The names of the roles `name` holds (directly, through `groups`, or by default)."""
        return sorted(self._of_user(name, admin, groups))

    def user_scopes(self, name, admin, groups=()) -> frozenset:
        """The scopes `name` holds through their roles (JupyterHub's `admin` role for an admin,
        or for a member of a group given it)."""
        held = self._of_user(name, admin, groups)
        result = scopes.role_scopes(name, "admin" in held)
        if self.roles["user"].scopes != ("self",):  # the user role redefined: its scopes replace `self`
            result = (result - scopes.self_scopes(name)) if "admin" not in held else result
            result = result | resolve_all(self.roles["user"].scopes, user=name)
        for role in held.values():
            if role.name not in ("user", "admin"):
                result |= resolve_all(role.scopes, user=name)
        return frozenset(result)

    def scopes_of_user(self, db, name, admin) -> frozenset:
        """user_scopes with the user's groups read from `db` (only when a role goes to a group),
        and what shares give them when sharing is on."""
        from . import groups, sharing

        held = self.user_scopes(name, admin, groups.names_of_user(db, name) if self.needs_groups else ())
        return held | sharing.held_by(db, name) if self.sharing else held

    async def scopes_of_user_async(self, db, name, admin) -> frozenset:
        """scopes_of_user from the event loop: the groups and shares are read on the database
        thread, and only when a role goes to a group or sharing is on."""
        if not self.needs_groups and not self.sharing:
            return self.user_scopes(name, admin)
        return await db.run(self.scopes_of_user, name, admin)

    def server_scopes(self, name, server="") -> set:
        """What the API token of `name`'s server holds: the `server` role's scopes (reporting
        activity, identifying browsers), or what a redefined `server` role gives (`inherit`,
        as nbgrader's demo sets it: whatever the owner holds at each request; see identity.py)."""
        role = self.roles["server"]
        if role.scopes == DEFAULTS[2].scopes:
            return scopes.server_token_scopes(name, server)
        return resolve_all(role.scopes, user=name) | ({"inherit"} if "inherit" in role.scopes else set())

    def service_roles(self, name, admin=False) -> list[str]:
        names = {role.name for role in self._by_service.get(name, ())}
        if admin:
            names.add("admin")
        return sorted(names)

    def service_scopes(self, name) -> set:
        """The scopes the roles naming service `name` give it (its own `scopes` come on top)."""
        held = set()
        for role in self._by_service.get(name, ()):
            if role.name == "admin":
                held |= scopes.ADMIN
            else:
                held |= resolve_all(role.scopes, service=name)
        return held

    def scopes_of_roles(self, names) -> tuple[str, ...]:
        """The scopes of the roles `names` as written (a service's oauth_roles)."""
        return tuple(dict.fromkeys(s for name in names if name in self.roles for s in self.roles[name].scopes))

    def group_roles(self, group) -> list[str]:
        return sorted(role.name for role in self._by_group.get(group, ()))

    def granting(self, scope_base, service):
        """The roles other than `admin` that give `scope_base` (e.g. access:services) for `service`."""
        found = []
        for role in self.roles.values():
            if role.name == "admin":
                continue
            for scope in role.scopes:
                base, _, flt = scope.partition("!")
                if base == scope_base and flt in ("", f"service={service}"):
                    found.append(role)
                    break
        return found


def _user_names(names):
    """`names` normalized as the hub's user names; one the hub refuses holds nothing (config.yaml's
    are refused by tljh-config, see config_names; load_roles' are not checked before)."""
    valid = []
    for name in names:
        try:
            valid.append(normalize_name(str(name)))
        except InvalidName:
            continue
    return tuple(valid)


def _union(a, b):
    return tuple(dict.fromkeys((*a, *b)))


def resolve_all(role_scopes, **holder):
    """The scopes `role_scopes` stand for when `holder` (user= or service=) holds them."""
    held = set()
    for scope in role_scopes:
        held |= _resolve(scope, **holder)
    return held


def unreachable_services(config) -> list[str]:
    """The routed services (with a `url`) that no role but `admin` lets anyone reach.

    Before roles, every user held `access:services`; now (as in JupyterHub) only a role gives
    it, so after an upgrade these services are open to admins only until a role grants access."""
    configured = Roles(from_config(config.get("roles") or []))
    return [name for name, spec in config["services"].items()
            if name != "cull" and isinstance(spec, Mapping) and spec.get("url")
            and not configured.granting("access:services", name)]


def access_note(names) -> str:
    """What to tell an admin about `names` (unreachable_services), with the commands to fix it."""
    first = names[0]
    return (f"only admins can reach the service(s) {', '.join(names)}: users need a role granting "
            f"access:services (JupyterHub's default; before, every user held it). To let a group in: "
            f"tljh-config add-item roles.{first}-users.scopes access:services!service={first}; "
            f"tljh-config add-item roles.{first}-users.groups <group>; tljh-config reload")
