"""Which running servers run with other limits than limits.* now say.

A server's memory and CPU limits are fixed when it starts (its unit's MemoryMax/CPUQuota, its
process-mode cgroup): `tljh-config reload` applies new limits.* to servers started after it,
and running ones keep theirs until their next start. Each server records the configured limits
it started with (`servers.limits`, JSON); the admin panel and `tljh-config reload` name the
running servers whose record differs.
"""

import json
import sqlite3
from collections.abc import Mapping
from typing import Any


def encode(limits: Mapping[str, Any]) -> str:
    """The record of configured limits (only the keys that are set)."""
    return json.dumps({key: value for key, value in limits.items() if value is not None}, sort_keys=True)


def with_other_limits(rows, limits: Mapping[str, Any]) -> list[str]:
    """Names of the running servers in `rows` (user, limits) that started with other limits
    (or before limits were recorded, when any limit is set now)."""
    now = encode(limits)
    return sorted(row["user"] for row in rows
                  if row["limits"] != now and not (row["limits"] is None and now == "{}"))


RUNNING_SQL = "SELECT user, limits FROM servers WHERE state='running'"


def running_with_other_limits(database: str, limits: Mapping[str, Any]) -> list[str]:
    """The same, read from the database file (read-only, for the CLI beside a running daemon)."""
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        conn.row_factory = sqlite3.Row
        return with_other_limits(conn.execute(RUNNING_SQL).fetchall(), limits)
    except sqlite3.Error:  # no database yet, or one from before limits were recorded
        return []
    finally:
        conn.close()
