"""The states a user's server row moves through (stored by value in the `servers` table).

pending -> running -> stopping -> stopped, or pending -> failed (the reason in `message`),
or pending -> cancelled (a stop, e.g. an admin's, while it was starting).
A `str` enum, so rows, JSON and templates compare and print plain values.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ServerState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: a process exists, or is being started or stopped
ACTIVE = (ServerState.PENDING, ServerState.RUNNING, ServerState.STOPPING)
#: nothing runs (a failed or cancelled start has cleaned up after itself)
DOWN = (ServerState.STOPPED, ServerState.FAILED, ServerState.CANCELLED)


def sql_list(states: Iterable[ServerState]) -> str:
    """`'a', 'b'` for an SQL `IN (...)`: the values are these constants, never user input."""
    return ", ".join(f"'{state.value}'" for state in states)
