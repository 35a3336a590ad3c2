"""Process mode: each server is a child process under the user's Unix account.

Servers run in their own session so they outlive a daemon restart; the daemon
finds them again by PID *and* process start time (psutil), so a recycled PID
is never mistaken for a server. Where the host lets root write cgroups, a server
with limits runs in its own cgroup (see cgroups.py), removed when it stops.

With `spawner.prewarm`, servers are forked by the pre-warm launcher (prewarm.py, launcher.py)
instead of started fresh; they are the launcher's children, so they are watched and stopped by
PID like servers a previous daemon started. Without a launcher (or with a Spawner.cmd other than the
environment's jupyterhub-singleuser), a server starts fresh, confined the same way (launcher.py --exec).
"""

import asyncio
import concurrent.futures
import logging
import os
import json
import signal
import subprocess
import sys
from typing import Optional

import psutil

from ..cgroups import CgroupError, Cgroups
from .base import Capabilities, ProcessId, Spawner, SpawnError
from .prewarm import LAUNCHER_SOURCE, LauncherUnavailable, forkable_now, launch_prewarmed, request_for

log = logging.getLogger(__name__)


def process_for(process: Optional[ProcessId]):
    """The live psutil.Process `process` names (PID and start time), or None."""
    if process is None:
        return None
    try:
        proc = psutil.Process(process.pid)
        if abs(proc.create_time() - process.create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def describe_exit(returncode):
    if returncode is None:
        return "the server process ended"
    if returncode < 0:
        try:
            return f"the server process was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"the server process exited with status {returncode}"


class ProcessSpawner(Spawner):
    launcher_wait = 30.0  # for a launcher still importing (a spawn right after the daemon started)

    def __init__(self, cgroups: Optional[Cgroups] = None, launcher=None) -> None:
        self._children: dict[int, subprocess.Popen] = {}  # pid -> Popen, for servers started by this daemon (so they are reaped)
        self.cgroups = cgroups
        self.launcher = launcher
        # Starts get threads of their own: in a class start the default executor is busy creating
        # Unix accounts, and the first user's start must not queue behind everyone's useradd.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="spawn")
        self.capabilities = Capabilities(
            limits=frozenset({"memory", "cpu"}) if cgroups is not None and cgroups.available else frozenset(),
            limits_note=cgroups.describe() if cgroups is not None else "not enforced: process mode without cgroups",
        )

    async def open(self):
        if self.launcher is not None:
            await self.launcher.open()

    async def close(self):
        if self.launcher is not None:
            await self.launcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _popen(self, request):
        """A fresh server: launcher.py --exec confines it as the launcher confines its children
        (private /tmp, the user's identity, NoNewPrivileges), then execs the command in the same
        process. The request, with the server's token, goes over a pipe, not the command line."""
        os.makedirs(os.path.dirname(request.log_path), exist_ok=True)
        fd = os.open(request.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", LAUNCHER_SOURCE, "--exec"],
                env={"PATH": "/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8")},
                cwd="/",
                stdin=subprocess.PIPE,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(fd)
        assert popen.stdin is not None  # stdin=PIPE
        try:
            with popen.stdin:
                popen.stdin.write(json.dumps(request_for(request)).encode())
        except OSError:
            pass  # it died at once; poll() reports how
        return popen

    def _start_in_cgroup(self, request):
        group = None
        if request.limits and self.capabilities.limits and self.cgroups is not None:
            group = self.cgroups.create(request.user, request.limits)
        popen = self._popen(request)
        if group is not None:
            try:
                # At once: the server starts its kernel zygote (kernels.prewarm) and kernels only
                # after its imports, and they inherit it (the server checks the zygote's before
                # each fork).
                group.attach(popen.pid)
            except OSError:
                popen.kill()
                popen.wait()
                group.remove()
                raise
        return popen

    def _launch_in_cgroup(self, request):
        """Fork the server from the launcher; its PID (it is not our child)."""
        os.makedirs(os.path.dirname(request.log_path), exist_ok=True)
        group = None
        if request.limits and self.capabilities.limits and self.cgroups is not None:
            group = self.cgroups.create(request.user, request.limits)
        try:
            pid = self.launcher.launch(request_for(request))
        except LauncherUnavailable:
            if group is not None:
                group.remove()
            raise
        if group is not None:
            try:
                group.attach(pid)
            except OSError:
                os.kill(pid, signal.SIGKILL)
                group.remove()
                raise
        return pid

    def light_start(self, request):
        return forkable_now(self.launcher, request)

    async def _start_prewarmed(self, request):
        """The server's state, or None when it must start fresh (logged, one line)."""
        pid = await launch_prewarmed(self.launcher, request, self._launch_in_cgroup, self._executor,
                                     self.launcher_wait)
        if pid is None:
            return None
        try:
            return ProcessId(pid, psutil.Process(pid).create_time()).state()
        except psutil.Error:
            raise SpawnError("the server process ended at once") from None

    async def start(self, request):
        if request.limits and not self.capabilities.limits:
            log.warning(
                "Process mode cannot enforce %s for %s (%s); running without them",
                ", ".join(sorted(request.limits)), request.user, self.capabilities.limits_note,
            )
        if self.launcher is not None:
            try:
                state = await self._start_prewarmed(request)
            except CgroupError as e:
                raise SpawnError(f"could not apply the limits: {e}") from None
            if state is not None:
                return state
        try:
            loop = asyncio.get_running_loop()
            popen = await loop.run_in_executor(self._executor, self._start_in_cgroup, request)
        except CgroupError as e:
            raise SpawnError(f"could not apply the limits: {e}") from None
        except OSError as e:
            raise SpawnError(f"could not start {request.cmd[0]}: {e.strerror or e}") from None
        self._children[popen.pid] = popen
        create_time = psutil.Process(popen.pid).create_time()
        return ProcessId(popen.pid, create_time).state()

    async def poll(self, user, state):
        process = ProcessId.from_state(state)
        popen = self._children.get(process.pid) if process is not None else None
        if popen is not None:
            code = popen.poll()
            if code is None:
                return None
            del self._children[popen.pid]
            await self._remove_cgroup(user)
            return describe_exit(code)
        if process_for(process):
            return None
        await self._remove_cgroup(user)
        return "the server process is gone"

    async def _remove_cgroup(self, user):
        group = self.cgroups.get(user) if self.cgroups is not None else None
        if group is not None and group.exists():
            await asyncio.to_thread(group.remove)

    def oom_kills(self, user):
        """How many of `user`'s server processes the kernel killed for memory (None: not known)."""
        group = self.cgroups.get(user) if self.cgroups is not None else None
        return group.oom_kills() if group is not None and group.exists() else None

    async def stop(self, user, state, timeout):
        proc = process_for(ProcessId.from_state(state))
        if proc is None:
            await self.poll(user, state)
            return
        try:
            children = proc.children(recursive=True)
            proc.terminate()
        except psutil.Error:
            children = []
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if await self.poll(user, state) is not None:
                break
            await asyncio.sleep(0.1)
        else:
            log.warning("Server pid %s did not stop in %ss; killing it", proc.pid, timeout)
            for p in [proc, *children]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            await asyncio.sleep(0.1)
            await self.poll(user, state)
        for p in children:  # kernels left behind by a server that exited
            try:
                if p.is_running():
                    p.kill()
            except psutil.Error:
                pass
        await self._remove_cgroup(user)  # and anything else still in its cgroup
