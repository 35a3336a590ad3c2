"""Which running servers run with other limits than the configuration now gives them.

A server's memory and CPU limits are fixed when it starts (its unit's MemoryMax/CPUQuota, its
process-mode cgroup): `tljh-config reload` applies new limits.* (limits.groups, profiles) to
servers started after it, and running ones keep theirs until their next start. Each server
records the configured limits it started with (`servers.limits`, JSON: limits.* after its
user's limits.groups and its profile); the admin panel and `tljh-config reload` name the
running servers whose record differs from what the same user and profile would get now.
"""

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, Union

from . import profiles as profiles_mod

#: (user, user_options JSON or None) -> the limits that server would start with now
Expected = Callable[[str, Any], Mapping[str, Any]]


def encode(limits: Mapping[str, Any]) -> str:
    """The record of configured limits (only the keys that are set)."""
    return json.dumps({key: value for key, value in limits.items() if value is not None}, sort_keys=True)


def expected_limits(limits: Mapping[str, Any], group_limits: Mapping[str, Mapping[str, Any]],
                    profiles: tuple[profiles_mod.Profile, ...], memberships: Mapping[str, list[str]]) -> Expected:
    """What a user's server would start with now, from the configured limits and profiles and
    `memberships` ({user: hub groups}); a profile no longer configured counts as none."""
    by_slug = {p.slug: p for p in profiles}

    def expected(user, user_options):
        try:
            slug = json.loads(user_options or "{}").get("profile")
        except (ValueError, AttributeError):
            slug = None
        return profiles_mod.effective_limits(limits, group_limits, memberships.get(user, ()), by_slug.get(slug))

    return expected


def with_other_limits(rows, expected: Union[Expected, Mapping[str, Any]]) -> list[str]:
    """Names of the running servers in `rows` (user, limits, user_options) that started with
    other limits (or before limits were recorded, when any limit applies now). `expected`: the
    limits each would get now (a mapping: the same for everyone)."""
    found = []
    for row in rows:
        now = encode(expected(row["user"], row["user_options"]) if callable(expected) else expected)
        if row["limits"] != now and not (row["limits"] is None and now == "{}"):
            found.append(row["user"])
    return sorted(found)


RUNNING_SQL = "SELECT user, limits, user_options FROM servers WHERE state='running'"


def running_with_other_limits(database: str, config: Mapping[str, Any]) -> list[str]:
    """The same, read from the database file (read-only, for the CLI beside a running daemon),
    for the effective configuration `config`."""
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        conn.row_factory = sqlite3.Row
        memberships: dict[str, list[str]] = {}
        for group, user in conn.execute("SELECT group_name, user FROM group_members"):
            memberships.setdefault(user, []).append(group)
        limits = config["limits"]
        expected = expected_limits({k: limits.get(k) for k in profiles_mod.LIMIT_KEYS}, limits.get("groups") or {},
                                   profiles_mod.from_config(config), memberships)
        return with_other_limits(conn.execute(RUNNING_SQL).fetchall(), expected)
    except sqlite3.Error:  # no database yet, or one from before limits were recorded
        return []
    finally:
        conn.close()
