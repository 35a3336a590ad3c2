"""User and group names in config.yaml, checked by the REST API's rules.

`tljh-config set`/`add-item` and `reload` refuse a bad name with its key; a daemon that
starts on a file edited by hand into that state drops the bad names with an error line
(`drop_bad_names`) instead of exiting, so it never crash-loops on one.
"""

import re

from .users import InvalidName, normalize_name

#: Unix group names (users.extra_user_groups' keys become groups the accounts join)
UNIX_GROUP = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
#: keys of an auth.<section> that list hub user names (OAuth's, as OAuthenticator names them)
AUTH_USER_KEYS = ("allowed_users", "admin_users", "blocked_users")


def _user_lists(config):
    """(dotted key, the list in `config`) for every list of user names."""
    users = config.get("users") or {}
    for key in ("allowed", "banned", "admin"):
        if isinstance(users.get(key), list):
            yield f"users.{key}", users[key]
    groups = users.get("extra_user_groups")
    if isinstance(groups, dict):
        for group, members in groups.items():
            if isinstance(members, list):
                yield f"users.extra_user_groups.{group}", members
    raw_roles = config.get("roles")
    if isinstance(raw_roles, (list, dict)):
        from .roles import entries

        for key, spec in entries(raw_roles):
            if isinstance(spec, dict) and isinstance(spec.get("users"), list):
                yield f"{key}.users", spec["users"]
    for section, settings in (config.get("auth") or {}).items():
        if isinstance(settings, dict):
            for key in AUTH_USER_KEYS:
                if isinstance(settings.get(key), list):
                    yield f"auth.{section}.{key}", settings[key]


def problems(config):
    """[(dotted key, bad value, reason)] for every name the REST API would refuse."""
    found = []
    for key, names in _user_lists(config):
        for name in names:
            try:
                normalize_name(name if isinstance(name, str) else "")
            except InvalidName as e:
                found.append((key, name, f"{name!r} is not a valid user name: {e}"))
    groups = (config.get("users") or {}).get("extra_user_groups")
    for group in groups if isinstance(groups, dict) else ():
        if not UNIX_GROUP.match(str(group)):
            found.append((f"users.extra_user_groups.{group}", None,
                          f"{group!r} is not a valid group name: lowercase letters, digits, '_' and '-', "
                          f"starting with a letter or '_', at most 32 characters"))
    return found


def drop_bad_names(config):
    """Remove every bad name (and badly named group) from `config` in place; returns the
    problems removed, for the caller to log."""
    found = problems(config)
    bad = {(key, repr(value)) for key, value, _ in found}
    groups = (config.get("users") or {}).get("extra_user_groups")
    for key, names in list(_user_lists(config)):
        names[:] = [n for n in names if (key, repr(n)) not in bad]
    if isinstance(groups, dict):
        for key, value, _ in found:
            if value is None:
                groups.pop(key[len("users.extra_user_groups."):], None)
    return found
