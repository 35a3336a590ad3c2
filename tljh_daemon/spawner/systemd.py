"""systemd mode: each server is a transient unit `jupyter-<name>` started with systemd-run.

The spawn token reaches the server through an EnvironmentFile readable by root
only (systemd reads it before dropping privileges), never through the command
line or unit properties, which any local user can list.
"""

import asyncio
import grp
import logging
import os

import psutil

from ..systemd import systemctl
from .base import ServerHandle, Spawner, SpawnError

log = logging.getLogger(__name__)

SLICE = "tljh-users.slice"


def unit_name(user):
    """`jupyter-<user>` with characters systemd does not allow escaped like systemd-escape."""
    out = []
    for ch in user:
        if ch.isascii() and (ch.isalnum() or ch in "_.-"):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
    return f"jupyter-{''.join(out)}.service"


def env_file_line(key, value):
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return f'{key}="{escaped}"\n'


PROPERTIES = "--property=ActiveState,SubState,Result,MainPID,ExecMainStatus,LoadState"


async def units_properties(units):
    """Properties of several units from one `systemctl show` (blocks in argument order)."""
    _, out = await systemctl("show", *units, PROPERTIES)
    blocks = out.strip("\n").split("\n\n")
    return [dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in blocks]


async def unit_properties(unit):
    return (await units_properties([unit]))[0]


class SystemdSpawner(Spawner):
    supported_limits = frozenset({"memory", "cpu"})
    limits_note = "systemd (MemoryMax, CPUQuota)"

    def __init__(self, env_dir, stop_timeout):
        self.env_dir = env_dir
        self.stop_timeout = stop_timeout

    def _write_env_file(self, unit, env):
        os.makedirs(self.env_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.env_dir, unit + ".env")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(env_file_line(k, v) for k, v in env.items())
        return path

    def properties(self, request, env_file):
        props = [
            f"EnvironmentFile={env_file}",
            f"WorkingDirectory={request.home}",
            "PrivateTmp=yes",
            f"SupplementaryGroups={' '.join(_group_names(request))}",
            "KillMode=control-group",
            # A kernel killed for going over MemoryMax must not take the server down with it
            # (systemd's default OOMPolicy=stop would, on cgroup v2).
            "OOMPolicy=continue",
            f"TimeoutStopSec={self.stop_timeout}",
            # Output goes to the journal (systemd's default): `journalctl -u jupyter-<name>`,
            # where TLJH's troubleshooting guide sends admins.
        ]
        if not request.admin:
            props.append("NoNewPrivileges=yes")
        if request.limits.get("memory"):
            props.append(f"MemoryMax={request.limits['memory']}")  # same K/M/G/T suffixes
        if request.limits.get("cpu"):
            props.append(f"CPUQuota={float(request.limits['cpu']) * 100:g}%")
        return props

    async def start(self, request):
        unit = unit_name(request.user)
        state = await unit_properties(unit)
        if state.get("ActiveState") in ("active", "activating", "deactivating"):
            raise SpawnError(f"{unit} is already running; stop it first")
        if state.get("ActiveState") == "failed" or state.get("LoadState") == "loaded":
            await systemctl("reset-failed", unit)
        env_file = self._write_env_file(unit, request.env)
        cmd = [
            "systemd-run",
            f"--unit={unit}",
            f"--slice={SLICE}",
            f"--uid={request.uid}",
            f"--gid={request.gid}",
            f"--description=Jupyter server of {request.user}",
            *(f"--property={p}" for p in self.properties(request, env_file)),
            "--",
            *request.cmd,
        ]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            os.unlink(env_file)
            raise SpawnError(f"systemd-run failed: {err.decode().strip()}")
        state = await unit_properties(unit)
        os.unlink(env_file)  # read at start; the token lives on only in the server's memory
        pid = int(state.get("MainPID", "0") or 0)
        if not pid:
            raise SpawnError(f"{unit} did not start: {state.get('Result', 'unknown result')}")
        try:
            create_time = psutil.Process(pid).create_time()
        except psutil.Error:
            create_time = 0.0
        return ServerHandle(pid, create_time)

    async def output_tail(self, user, handle, log_path, lines=3):
        """From the journal, since this server started."""
        since = f"@{max(0, int(handle.create_time) - 1)}"
        proc = await asyncio.create_subprocess_exec(
            "journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", unit_name(user), "--since", since,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return out.decode("utf-8", "replace").strip().splitlines()[-lines:]

    async def poll(self, user, handle):
        return await self._ended(unit_name(user), await unit_properties(unit_name(user)))

    async def poll_all(self, servers):
        """One systemctl call for every running server (the watcher polls them all every few seconds)."""
        if not servers:
            return {}
        states = await units_properties([unit_name(user) for user, _ in servers])
        return {user: await self._ended(unit_name(user), state) for (user, _), state in zip(servers, states)}

    async def _ended(self, unit, state):
        active = state.get("ActiveState")
        if active in ("active", "activating", "reloading"):
            return None
        result = state.get("Result", "")
        if active == "failed":
            await systemctl("reset-failed", unit)
            return f"{unit} failed ({result}, exit status {state.get('ExecMainStatus', '?')})"
        return f"{unit} is not running"

    async def stop(self, user, handle, timeout):
        unit = unit_name(user)
        try:
            await asyncio.wait_for(systemctl("stop", unit), timeout + 5)
        except asyncio.TimeoutError:
            await systemctl("kill", "--signal=SIGKILL", unit)
        await systemctl("reset-failed", unit)


def _group_names(request):
    names = []
    for gid in os.getgrouplist(request.username, request.gid):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            pass
    return names
