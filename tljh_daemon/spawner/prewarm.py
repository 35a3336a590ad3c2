"""Supervises the pre-warm launcher (launcher.py) of the user environment and asks it for servers.

A fresh `jupyterhub-singleuser` spends 4-5 CPU-seconds importing its stack; the launcher has done
that once, so a spawn is a fork. The launcher runs the user environment's Python as root, is
restarted when the environment's site-packages change (a package installed from a terminal, a
plugin, --user-requirements-txt-url), and after it dies. While it is unavailable spawns fall
back to a fresh start (ProcessSpawner logs one line each time).
"""

import asyncio
import glob
import json
import logging
import os
import socket

from .launcher import LAUNCHER_HOME, LAUNCHER_USER, read_json_line

log = logging.getLogger(__name__)

LAUNCHER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")
# Read by the interpreter or by the pre-imported stack at import: the launcher has imported with its
# own values, so a request setting any of them needs a fresh interpreter. (JupyterHub's own
# modules, which read JUPYTERHUB_*, are imported again in each server.)
IMPORT_TIME_ENV = ("PYTHON", "LD_", "JUPYTER_PLATFORM_DIRS", "JUPYTER_ALLOW_INSECURE_WRITES", "TRAITLETS_",
                   "TORNADO_", "GATEWAY_")
METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")


class LauncherUnavailable(Exception):
    """No pre-warmed launcher to ask; the caller starts the server fresh."""


def environment_stamp(user_env):
    """Changes whenever a package is installed into, removed from or upgraded in `user_env`: each
    such change replaces a distribution's metadata directory (or a .pth file) in site-packages.
    (Not the directory's own mtime: importing as root writes __pycache__ there.)"""
    stamp = []
    for path in sorted(glob.glob(os.path.join(user_env, "lib", "python3*", "site-packages"))):
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.name.endswith(METADATA_SUFFIXES):
                        stamp.append((entry.name, entry.stat(follow_symlinks=False).st_mtime_ns))
        except OSError:
            pass
    return frozenset(stamp)


def needs_fresh_interpreter(env):
    return [key for key in env if key.startswith(IMPORT_TIME_ENV)]


def forkable_now(launcher, request):
    """Whether `request` would be forked by a launcher that is ready now (a light start: admission
    lets more of those run at once), without waiting or logging."""
    return (launcher is not None and launcher.is_ready() and launcher.runs(request.cmd)
            and not needs_fresh_interpreter(request.env))


async def launch_prewarmed(launcher, request, launch, executor, wait):
    """`launch(request)` (blocking, run in `executor`) once `launcher` is ready: its result, or
    None when the server must start fresh (logged, one line)."""
    fresh_keys = needs_fresh_interpreter(request.env)
    if fresh_keys:
        log.info("Starting %s's server fresh: %s is read at interpreter start", request.user, fresh_keys[0])
        return None
    if not launcher.runs(request.cmd):
        log.info("Starting %s's server fresh: Spawner.cmd %s is not the pre-warmed jupyterhub-singleuser",
                 request.user, request.cmd[0])
        return None
    try:
        await launcher.ensure_ready(wait)
        return await asyncio.get_running_loop().run_in_executor(executor, launch, request)
    except LauncherUnavailable as e:
        log.warning("Pre-warm launcher unavailable (%s); starting %s's server fresh", e, request.user)
        return None


class Launcher:
    restart_delay = 10.0  # after an unexpected exit; doubles while it keeps failing at start
    max_restart_delay = 300.0
    ready_timeout = 60.0
    change_check_interval = 30.0  # also checked on every spawn

    def __init__(self, user_env, state_dir, log_path):
        self.user_env = user_env
        self.socket_path = os.path.join(state_dir, "launcher.sock")
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.stamp = None
        self.ready: asyncio.Future | None = None  # True once listening, False if it failed to start
        self.failure: str | None = "not started"
        self._supervisor = None
        self._replacing = False

    @property
    def python(self):
        return os.path.join(self.user_env, "bin", "python")

    async def open(self):
        self._pending()  # spawns from now on wait for the first start
        self._supervisor = asyncio.create_task(self._supervise())

    async def close(self):
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
        await self._stop()

    def _pending(self):
        """The future the next start resolves (kept if someone already waits on it)."""
        if self.ready is None or self.ready.done():
            self.ready = asyncio.get_running_loop().create_future()
        return self.ready

    def _unavailable(self):
        self.ready = asyncio.get_running_loop().create_future()
        self.ready.set_result(False)

    async def _start(self):
        ready = self._pending()
        self.stamp = environment_stamp(self.user_env)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(self.log_path), mode=0o700, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            env = {"PATH": f"{os.path.join(self.user_env, 'bin')}:/usr/local/bin:/usr/bin:/bin",
                   "LANG": os.environ.get("LANG", "C.UTF-8"), "HOME": LAUNCHER_HOME, "USER": LAUNCHER_USER}
            self.proc = proc = await asyncio.create_subprocess_exec(
                self.python, "-s", "-E", LAUNCHER_SOURCE, self.socket_path, str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=fd,
                env=env, cwd="/",
            )
        except OSError as e:
            self.failure = f"could not run {self.python}: {e.strerror or e}"
            ready.set_result(False)
            return
        finally:
            os.close(fd)
        assert proc.stdout is not None  # stdout=PIPE
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), self.ready_timeout)
        except asyncio.TimeoutError:
            line = b""
        if line.startswith(b"READY"):
            log.info("Pre-warm launcher for %s ready (pid %s)", self.user_env, proc.pid)
            self.failure = None
            ready.set_result(True)
        else:
            self.failure = f"the launcher did not start (see {self.log_path})"
            await self._stop()
            ready.set_result(False)

    async def _stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()

    async def _supervise(self):
        delay = self.restart_delay
        while True:
            await self._start()
            if self.ready is not None and self.ready.result():  # _start resolved it
                delay = self.restart_delay
                code = await self._watch(self.proc)
                if self._replacing:  # stopped on purpose: the environment changed
                    self._replacing = False
                    continue
                self._unavailable()
                self.failure = f"the launcher exited ({code})"
                log.warning("Pre-warm launcher exited with %s; restarting it in %.0fs", code, delay)
            else:
                self._unavailable()
                log.warning("Pre-warm launcher unavailable: %s; retrying in %.0fs", self.failure, delay)
            await asyncio.sleep(delay)
            if self.failure and self.failure.startswith(("could not run", "the launcher did not start")):
                delay = min(delay * 2, self.max_restart_delay)

    async def _watch(self, proc):
        """Wait for `proc` to exit; meanwhile restart it when the environment changes, so the
        next spawn finds a launcher that has imported the new packages."""
        exited = asyncio.ensure_future(proc.wait())
        try:
            while True:
                done, _ = await asyncio.wait({exited}, timeout=self.change_check_interval)
                if done:
                    return exited.result()
                self._restart_if_changed()
        finally:
            exited.cancel()

    def _restart_if_changed(self):
        if not self.is_ready() or environment_stamp(self.user_env) == self.stamp:
            return
        log.info("The user environment changed; restarting the pre-warm launcher")
        self._replacing = True
        self.ready = asyncio.get_running_loop().create_future()  # resolved by the next start
        try:
            if self.proc is not None:
                self.proc.terminate()
        except ProcessLookupError:
            pass

    async def ensure_ready(self, timeout):
        """Wait for a launcher of the environment as it is now; raise LauncherUnavailable."""
        if self._supervisor is None or self.ready is None:
            raise LauncherUnavailable(self.failure)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._restart_if_changed()
            try:
                ok = await asyncio.wait_for(asyncio.shield(self.ready), max(deadline - loop.time(), 0.01))
            except asyncio.TimeoutError:
                raise LauncherUnavailable("the launcher is still starting") from None
            if not ok:
                raise LauncherUnavailable(self.failure)
            if environment_stamp(self.user_env) == self.stamp:
                return  # else it started before a change: once more, with a new one

    def launch(self, request):
        """Ask the launcher for a server (blocking: run it in a thread). Returns the pid."""
        pid, conn = self._ask(request)
        conn.close()
        return pid

    def launch_held(self, request):
        """Like launch, but the child waits: it runs once `release(conn)` is called and exits if
        `conn` is closed first. Returns (pid, conn)."""
        return self._ask(dict(request, hold=True))

    def _ask(self, request):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(30)
            s.connect(self.socket_path)
            s.sendall(json.dumps(request).encode() + b"\n")
            answer = read_json_line(s)
        except OSError as e:
            s.close()
            raise LauncherUnavailable(f"the launcher did not answer: {e.strerror or e}") from None
        except ValueError:
            s.close()
            raise LauncherUnavailable("the launcher hung up") from None
        if "error" in answer:
            s.close()
            raise LauncherUnavailable(answer["error"])
        return answer["pid"], s

    def is_ready(self):
        """A launcher is listening now (without waiting for one that is starting)."""
        return self.ready is not None and self.ready.done() and self.ready.result() is True

    def runs(self, cmd):
        """Whether a server with this command line can be forked from the launcher: the command is
        the environment's jupyterhub-singleuser (its arguments are the server's sys.argv, as in a
        fresh start); anything else (Spawner.cmd) starts fresh."""
        standard = os.path.join(self.user_env, "bin", "jupyterhub-singleuser")
        try:
            return os.path.samefile(cmd[0], standard)
        except (OSError, IndexError):
            return False

    def launcher_pid(self):
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


def release(conn):
    """Let a held child (launch_held) run."""
    with conn:
        conn.sendall(b"go\n")


def request_for(spawn_request, private_tmp=True):
    """The launcher's request for a SpawnRequest: the same identity, environment and directory as
    a fresh start."""
    return {
        "uid": spawn_request.uid,
        "gid": spawn_request.gid,
        "groups": os.getgrouplist(spawn_request.username, spawn_request.gid),
        "home": spawn_request.home,
        "cwd": spawn_request.home,
        "env": spawn_request.env,
        "argv": list(spawn_request.cmd),
        "log_path": spawn_request.log_path,
        "no_new_privs": not spawn_request.admin,
        "private_tmp": private_tmp,
    }
