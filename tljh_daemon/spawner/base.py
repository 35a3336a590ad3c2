"""The spawner interface: start, poll, stop, and re-adopt after a daemon restart."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..profiles import Profile
    from ..servers import Phases, Progress


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
class ServerHandle:
    """What identifies a running server across daemon restarts (persisted in the database)."""

    pid: int  # a local server's process id, or a batch job's id
    create_time: float  # the process's start time (0 for a batch job)


class Spawner:
    #: spawner.<section> of config.yaml this backend reads, validated by SCHEMA (a plugin's own)
    section: Optional[str] = None
    SCHEMA: dict = {}

    @classmethod
    def build(cls, settings, paths, mode: str) -> "Spawner":
        """The spawner `spawner.type` names, for settings.Settings, the hub's paths and its mode
        ("process" or "systemd"); registered in the `tljh_daemon.spawners` entry point group."""
        return cls()

    #: limits this backend enforces (the admin panel says which set limits are not)
    supported_limits: frozenset[str] = frozenset()
    #: how limits are enforced, or why they are not (shown to admins)
    limits_note: str = "not enforced"
    #: whether starts wait for a local slot (spawner.concurrent_starts); a cluster queues on its own
    uses_admission: bool = True
    #: whether a handle's pid is a process on this machine (the usage sampler measures its tree)
    local_processes: bool = True
    #: the progress message when the server is launched
    start_message: str = "Starting jupyterhub-singleuser"

    def oom_kills(self, user: str) -> Optional[int]:
        """How many of `user`'s server processes were killed for going over the memory limit,
        or None where this is not known."""
        return None

    def light_start(self, request: SpawnRequest) -> bool:
        """Whether starting this server now is cheap (forked, not a fresh interpreter): admission
        control then lets more such starts run at once."""
        return False

    async def open(self) -> None:
        """Called once at daemon start-up (before servers are re-adopted)."""

    async def close(self) -> None:
        """Called once at daemon shutdown; running servers are left running."""

    async def output_tail(self, user: str, handle: Optional[ServerHandle], log_path: str,
                          lines: int = 3) -> list[str]:
        """The last `lines` lines the server printed (for a failed spawn's message)."""
        return _file_tail(log_path, lines)

    async def start(self, request: SpawnRequest) -> ServerHandle:
        """Launch the server; return its ServerHandle. Raise SpawnError on failure."""
        raise NotImplementedError

    async def locate(self, request: SpawnRequest, handle: ServerHandle, progress: Progress,
                     reported: asyncio.Future[int], phases: Optional[Phases] = None) -> tuple[str, int]:
        """(address, port) where the started server will answer. A local server listens where
        the hub told it to; a batch job's server reports its port (`reported`, a future).
        `phases.mark(step)` names where the time went (a batch queue) in the ready log line."""
        return "127.0.0.1", request.port

    async def poll(self, user: str, handle: Optional[ServerHandle]) -> Optional[str]:
        """None while `user`'s server runs, else a short description of how it ended."""
        raise NotImplementedError

    async def poll_all(self, servers: Iterable[tuple[str, Optional[ServerHandle]]]) -> dict[str, Optional[str]]:
        """{user: poll(user, handle)} for [(user, handle), ...]; backends may batch this."""
        return {user: await self.poll(user, handle) for user, handle in servers}

    async def stop(self, user: str, handle: ServerHandle, timeout: float) -> None:
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
