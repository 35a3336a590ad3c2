"""The spawner interface: start, report progress, poll, stop, and re-adopt after a daemon restart.

A backend owns its state (JupyterHub's `get_state`/`load_state` idea): `start` returns a
JSON-serialisable dict, the hub stores it with the server (servers.spawner_state) and hands it
back to `progress`, `poll`, `stop`, `output_tail` and `process_of`, after a daemon restart too.
A local server keeps its process id and start time in it, a Slurm job its job id.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

#: What a backend returns from `start` and gets back: JSON-serialisable, stored by the hub.
State = dict[str, Any]

if TYPE_CHECKING:
    from ..profiles import Profile


class SpawnError(Exception):
    """A spawn failed; the message is shown to the user."""


@dataclass
class SpawnRequest:
    """Everything a backend needs to run one user's server (the hub did the rest)."""

    user: str
    username: str  # the Unix account
    uid: int
    gid: int
    home: str
    admin: bool
    cmd: list[str]
    env: dict[str, str]
    log_path: str
    # the limits it gets: limits.*, limits.groups, its profile's (profiles.effective_limits)
    limits: dict[str, object] = field(default_factory=dict)
    port: int = 0  # where a local server listens (chosen by the hub)
    groups: list[str] = field(default_factory=list)  # the user's hub groups
    profile: Optional[Profile] = None  # the profile chosen (Slurm reads its partition and options)


@dataclass(frozen=True)
class Capabilities:
    """What the hub needs to know about a backend, in one value."""

    #: limits this backend enforces (the admin panel says which set limits are not)
    limits: frozenset[str] = frozenset()
    #: how limits are enforced, or why they are not (shown to admins)
    limits_note: str = "not enforced"
    #: whether starts wait for a local slot (spawner.concurrent_starts); a cluster queues on its own
    admission: bool = True
    #: the progress message when the server is launched
    start_message: str = "Starting jupyterhub-singleuser"


@dataclass(frozen=True)
class ProcessId:
    """A process on this machine, by PID and start time (so a recycled PID is never mistaken for it)."""

    pid: int
    create_time: float

    def state(self) -> State:
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_state(cls, state: Optional[State]) -> Optional["ProcessId"]:
        if not state or state.get("pid") is None:
            return None
        return cls(int(state["pid"]), float(state.get("create_time") or 0.0))


class Spawner:
    """A backend. What the hub calls, in order: `start` (returns the state), `progress` (start-up
    events, ending with where the server answers), then `poll`/`poll_all` and `stop` with the
    state; `output_tail` for a failed start's message; `process_of` for the server's local process
    (usage sampling, admin rights checks); `oom_kills` for OOM reporting; `light_start` for
    admission; `port_reported` when a starting server reports its port (a batch job's)."""

    #: spawner.<section> of config.yaml this backend reads, validated by SCHEMA (a plugin's own)
    section: Optional[str] = None
    SCHEMA: dict = {}
    capabilities: Capabilities = Capabilities()

    @classmethod
    def build(cls, settings, paths, mode: str) -> "Spawner":
        """The spawner `spawner.type` names, for settings.Settings, the hub's paths and its mode
        ("process" or "systemd"); registered in the `tljh_daemon.spawners` entry point group."""
        return cls()

    def oom_kills(self, user: str) -> Optional[int]:
        """How many of `user`'s server processes were killed for going over the memory limit,
        or None where this is not known."""
        return None

    def light_start(self, request: SpawnRequest) -> bool:
        """Whether starting this server now is cheap (forked, not a fresh interpreter): admission
        control then lets more such starts run at once."""
        return False

    def process_of(self, state: Optional[State]) -> Optional[ProcessId]:
        """The server's main process on this machine, or None (none recorded, or it runs elsewhere)."""
        return ProcessId.from_state(state)

    def port_reported(self, user: str, port: int) -> bool:
        """A starting server says where it listens (POST /hub/api/batchspawner); False when no
        start of this backend waits for it."""
        return False

    async def open(self) -> None:
        """Called once at daemon start-up (before servers are re-adopted)."""

    async def close(self) -> None:
        """Called once at daemon shutdown; running servers are left running."""

    async def output_tail(self, user: str, state: Optional[State], log_path: str,
                          lines: int = 3) -> list[str]:
        """The last `lines` lines the server printed (for a failed spawn's message)."""
        return _file_tail(log_path, lines)

    async def start(self, request: SpawnRequest) -> State:
        """Launch the server; return its state (JSON-serialisable). Raise SpawnError on failure."""
        raise NotImplementedError

    async def progress(self, request: SpawnRequest, state: State) -> AsyncIterator[dict]:
        """Start-up events after `start`, until the server will answer. An event with "message"
        (and "progress", 0-100, and any JSON extras) goes to the progress stream; one with
        "phase" ends a timed step of the ready log line (where a slow start went); the last may
        say where the server answers, {"host": address, "port": n}. Without it the server
        answers where the hub told it to listen (127.0.0.1, request.port). Raise SpawnError when
        the server will not come up."""
        return
        yield  # an async generator that yields nothing

    async def poll(self, user: str, state: Optional[State]) -> Optional[str]:
        """None while `user`'s server runs, else a short description of how it ended."""
        raise NotImplementedError

    async def poll_all(self, servers: Iterable[tuple[str, Optional[State]]]) -> dict[str, Optional[str]]:
        """{user: poll(user, state)} for [(user, state), ...]; backends may batch this."""
        return {user: await self.poll(user, state) for user, state in servers}

    async def stop(self, user: str, state: State, timeout: float) -> None:
        """Stop the server: SIGTERM, then SIGKILL after `timeout` seconds."""
        raise NotImplementedError


def _file_tail(path: str, lines: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            return f.read().decode("utf-8", "replace").strip().splitlines()[-lines:]
    except OSError:
        return []
