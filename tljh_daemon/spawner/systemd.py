"""systemd mode: each server runs in a transient unit of its own in tljh-users.slice.

With `spawner.prewarm` (the default) the pre-warm launcher forks the server and the daemon puts
the new process into the scope `jupyter-<name>.scope` (D-Bus StartTransientUnit with its PID,
the slice, MemoryMax and CPUQuota) before it runs any code: the child waits until the daemon
says go. Without a launcher (turned off, still starting, gone, or a spawn that needs a fresh
interpreter) the server is the service `jupyter-<name>.service`, started with systemd-run.
Both outlive daemon restarts and are re-adopted by name; poll and stop look at both.

The spawn token reaches a service's server through an EnvironmentFile readable by root only
(systemd reads it before dropping privileges), a scope's through the launcher's root-only socket;
never through the command line or unit properties, which any local user can list.
"""

import asyncio
import concurrent.futures
import grp
import logging
import os
from typing import Optional

import psutil

from ..cgroups import ServerCgroup, memory_bytes, memory_hierarchy
from ..systemd import SystemdError, in_unit, manager_version, start_scope, systemctl
from .base import Capabilities, ProcessId, Spawner, SpawnError
from .prewarm import forkable_now, launch_prewarmed, release, request_for
from .process import process_for

log = logging.getLogger(__name__)

SLICE = "tljh-users.slice"
SLICE_PATH = "tljh.slice/tljh-users.slice"  # its cgroup, below the hierarchy's root
ALIVE = ("active", "activating", "reloading")


def unit_name(user, kind="service"):
    """`jupyter-<user>.<kind>` with characters systemd does not allow escaped like systemd-escape."""
    out = []
    for ch in user:
        if ch.isascii() and (ch.isalnum() or ch in "_.-"):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
    return f"jupyter-{''.join(out)}.{kind}"


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
    capabilities = Capabilities(limits=frozenset({"memory", "cpu"}), limits_note="systemd (MemoryMax, CPUQuota)")
    launcher_wait = 30.0  # for a launcher still importing (a spawn right after the daemon started)
    move_timeout = 10.0  # for systemd to move a new server into its scope

    def __init__(self, env_dir, stop_timeout, launcher=None):
        self.env_dir = env_dir
        self.stop_timeout = stop_timeout
        self.launcher = launcher
        self._systemd_version = 0
        self._memory_hierarchy: Optional[tuple[str, int]] = None
        # As in process mode: a start must not queue behind the account creation of a class start.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="spawn")

    async def open(self):
        if self.launcher is not None:
            try:
                self._systemd_version = await manager_version()
            except SystemdError as e:
                log.warning("Could not ask systemd its version (%s)", e)
            await self.launcher.open()

    async def close(self):
        if self.launcher is not None:
            await self.launcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

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

    def scope_properties(self, request):
        """A pre-warmed server's scope: the service's slice, limits and stop behaviour (its
        sandbox, PrivateTmp and NoNewPrivileges, the launcher's child applies itself)."""
        props = [
            ("Description", ("s", f"Jupyter server of {request.user}")),
            ("Slice", ("s", SLICE)),
            ("TimeoutStopUSec", ("t", int(self.stop_timeout * 1_000_000))),
        ]
        if self._systemd_version >= 253:  # scopes have OOMPolicy since 253 (and do not stop before)
            props.append(("OOMPolicy", ("s", "continue")))
        if request.limits.get("memory"):
            props.append(("MemoryMax", ("t", memory_bytes(request.limits["memory"]))))
        if request.limits.get("cpu"):
            props.append(("CPUQuotaPerSecUSec", ("t", int(float(request.limits["cpu"]) * 1_000_000))))
        return props

    def light_start(self, request):
        return forkable_now(self.launcher, request)

    def oom_kills(self, user):
        """From the memory cgroup systemd made for the user's unit (scope or service)."""
        if self._memory_hierarchy is None:
            self._memory_hierarchy = memory_hierarchy() or ("", 0)
        mount, version = self._memory_hierarchy
        for kind in ("scope", "service"):
            group = ServerCgroup(user, [f"{mount}/{SLICE_PATH}/{unit_name(user, kind)}"], version)
            if mount and group.exists():
                return group.oom_kills()
        return None

    async def start(self, request):
        service, scope = unit_name(request.user), unit_name(request.user, "scope")
        for unit, state in zip((service, scope), await units_properties([service, scope])):
            if state.get("ActiveState") in (*ALIVE, "deactivating"):
                raise SpawnError(f"{unit} is already running; stop it first")
            if state.get("ActiveState") == "failed" or state.get("LoadState") == "loaded":
                await systemctl("reset-failed", unit)
        if self.launcher is not None:
            state = await self._start_prewarmed(request, scope)
            if state is not None:
                return state
        return await self._start_service(request, service)

    def _launch_held(self, request):
        return self.launcher.launch_held(dict(
            request_for(request), host_mounts=True, journal=os.path.basename(request.cmd[0])))

    async def _start_prewarmed(self, request, scope):
        """Fork the server from the launcher into `scope`; None when it must start fresh."""
        held = await launch_prewarmed(self.launcher, request, self._launch_held, self._executor,
                                      self.launcher_wait)
        if held is None:
            return None
        pid, conn = held
        try:
            create_time = psutil.Process(pid).create_time()
            await start_scope(scope, [pid], self.scope_properties(request))
            await self._wait_moved(pid, scope)
        except (psutil.Error, SystemdError, TimeoutError) as e:
            conn.close()  # the held child exits without running anything
            raise SpawnError(f"could not start {scope}: {e}") from None
        try:
            release(conn)
        except OSError as e:
            raise SpawnError(f"the server process in {scope} did not take the go: {e}") from None
        return ProcessId(pid, create_time).state()

    async def _wait_moved(self, pid, scope):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.move_timeout
        while not in_unit(pid, scope):
            if not psutil.pid_exists(pid) or loop.time() > deadline:
                raise TimeoutError(f"process {pid} was not moved into it")
            await asyncio.sleep(0.005)

    async def _start_service(self, request, unit):
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
        return ProcessId(pid, create_time).state()

    async def output_tail(self, user, state, log_path, lines=3):
        """From the journal, since this server started."""
        process = ProcessId.from_state(state)
        since = f"@{max(0, int(process.create_time) - 1)}" if process is not None else "-1h"
        proc = await asyncio.create_subprocess_exec(
            "journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", unit_name(user),
            "-u", unit_name(user, "scope"), "--since", since,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return out.decode("utf-8", "replace").strip().splitlines()[-lines:]

    async def poll(self, user, state):
        return (await self.poll_all([(user, state)]))[user]

    async def poll_all(self, servers):
        """One systemctl call for every running server (the watcher polls them all every few seconds)."""
        servers = list(servers)
        if not servers:
            return {}
        units = [unit_name(user, kind) for user, _ in servers for kind in ("service", "scope")]
        states = await units_properties(units)
        return {user: await self._ended(user, ProcessId.from_state(state), states[2 * i], states[2 * i + 1])
                for i, (user, state) in enumerate(servers)}

    async def _ended(self, user, process, service_state, scope_state):
        service, scope = unit_name(user), unit_name(user, "scope")
        if scope_state.get("ActiveState") in ALIVE:
            if process is None or process_for(process) is not None:
                return None
            # The server exited; a scope lives on while any process (a kernel) is left in it.
            await systemctl("stop", scope)
            return "the server process ended"
        if service_state.get("ActiveState") in ALIVE:
            return None
        for unit, state in ((service, service_state), (scope, scope_state)):
            if state.get("ActiveState") == "failed":
                await systemctl("reset-failed", unit)
                return f"{unit} failed ({state.get('Result', '')}, exit status {state.get('ExecMainStatus', '?')})"
        return f"{service} is not running"

    async def stop(self, user, state, timeout):
        units = [unit_name(user), unit_name(user, "scope")]
        units = [u for u, state in zip(units, await units_properties(units)) if state.get("LoadState") == "loaded"]
        if not units:
            return
        try:
            await asyncio.wait_for(systemctl("stop", *units), timeout + 5)
        except asyncio.TimeoutError:
            await systemctl("kill", "--signal=SIGKILL", *units)
        await systemctl("reset-failed", *units)


def _group_names(request):
    names = []
    for gid in os.getgrouplist(request.username, request.gid):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            pass
    return names
