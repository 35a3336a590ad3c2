"""The single-user server's side of the kernel zygote: start it, ask it for kernels, watch them.

One zygote runs per server (started when the server loads this extension). Before each fork the
server checks that the zygote still stands where a fresh kernel would: same cgroup, resource
limits and umask as the server, the same environment (except the per-kernel `JPY_SESSION_NAME`),
and no package added to or removed from the directories on `sys.path` since it imported. A zygote
that no longer does is retired (it keeps the kernels it forked until they exit) and replaced;
that kernel starts fresh.
"""

import asyncio
import glob
import json
import os
import site
import socket
import subprocess
import sys
import time

from .zygote import LAUNCHER_MODULE, MAX_MESSAGE

READY_TIMEOUT = 60
REPLY_TIMEOUT = 10
# A kernel asked for while the zygote imports waits this long for it: its imports (~0.4 s) end
# sooner than a fresh kernel's would (~0.6 s, and slower beside them).
IMPORT_WAIT = 3
# Read by the kernel only after it starts (ipykernel's __init__), so it may differ per kernel.
PER_KERNEL_ENV = ("JPY_SESSION_NAME",)


class Unavailable(Exception):
    """No zygote can fork this kernel; the caller starts it fresh."""


class StillImporting(Unavailable):
    """Not a failure: the zygote has not finished importing yet."""


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def process_state(pid):
    """What a child inherits from its parent and a fork cannot change: cgroup, limits, umask."""
    status = _read(f"/proc/{pid}/status") or ""
    umask = next((line for line in status.splitlines() if line.startswith("Umask:")), None)
    return {"cgroup": _read(f"/proc/{pid}/cgroup"), "limits": _read(f"/proc/{pid}/limits"), "umask": umask}


def site_dirs(python):
    """The site-packages directories of the environment of `python` (another environment's,
    found by its layout) and the user's for its Python version."""
    prefix = os.path.dirname(os.path.dirname(python))
    found = sorted(glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages")))
    user = [os.path.expanduser(os.path.join("~", ".local", "lib", os.path.basename(os.path.dirname(d)),
                                            "site-packages")) for d in found]
    return [*found, *user]


def path_stamp(directories=None):
    """Changes when a package is installed into or removed from the environment's or the user's
    site-packages (or that appears): pip adds and removes entries there, which moves its mtime."""
    stamp = []
    if directories is None:  # the server's own environment
        directories = [*site.getsitepackages(), site.getusersitepackages()]
    for directory in directories:
        try:
            stamp.append((directory, os.stat(directory or ".").st_mtime_ns))
        except OSError:
            stamp.append((directory, None))
    return stamp


class Zygote:
    """One running zygote process, started with the environment its kernels must have: of the
    server's own Python, or of `python`, another environment's (environments.* of the hub)."""

    def __init__(self, log, python=None):
        self.log = log
        self.python = python or sys.executable
        self.site_dirs = None if self.python == sys.executable else site_dirs(self.python)
        self.env = dict(os.environ)
        # What jupyter_client's launcher adds to a kernel's environment: the server is its parent.
        self.env["JPY_PARENT_PID"] = str(os.getpid())
        self.stamp = path_stamp(self.site_dirs)
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [self.python, "-m", "tljh_kernel_prewarm.zygote", str(theirs.fileno())],
            env=self.env, stdin=subprocess.PIPE, pass_fds=[theirs.fileno()], start_new_session=True)
        self.process.stdin.close()  # as jupyter_client does for a kernel: stdin is an empty pipe
        theirs.close()
        self.control.setblocking(False)
        self.ready = None  # True once it imported, or why it failed
        self.started = time.monotonic()
        self.watch = None
        self._watch_ready()

    def _watch_ready(self):
        """Read the zygote's "ready" in the background (and log it), once an event loop runs."""
        try:
            self.watch = asyncio.get_running_loop().create_task(self._wait_ready())
        except RuntimeError:
            pass  # no loop yet: the first fork starts the watch

    async def _wait_ready(self):
        try:
            data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.control, 4096), READY_TIMEOUT)
            self.ready = True if data and "ready" in json.loads(data) else \
                f"the kernel zygote exited while importing ({self.process.poll()})"
        except (asyncio.TimeoutError, OSError, ValueError) as e:
            self.ready = f"the kernel zygote did not start: {e!r}"
        if self.ready is True:
            self.log.info("Kernel pre-warm: the kernel zygote (pid %s) is ready after %.2f s%s",
                          self.process.pid, time.monotonic() - self.started,
                          "" if self.site_dirs is None else f" ({self.python})")
        else:
            self.log.warning("Kernel pre-warm: %s", self.ready)

    def stale(self):
        """Why this zygote cannot fork a kernel identical to a fresh one any more (or None)."""
        if self.process.poll() is not None:
            return f"the kernel zygote exited ({self.process.returncode})"
        if process_state(os.getpid()) != process_state(self.process.pid):
            return "the server's cgroup, limits or umask changed"
        if dict(os.environ, JPY_PARENT_PID=self.env["JPY_PARENT_PID"]) != self.env:
            return "the server's environment changed"
        if path_stamp(self.site_dirs) != self.stamp:
            return "packages changed"
        return None

    async def fork(self, argv, env, cwd):
        if self.watch is None:
            self._watch_ready()
        if self.ready is None:
            # Rare with a person (JupyterLab's page starts the zygote while the browser loads its
            # scripts), common with a client that starts a kernel right after the page.
            self.log.info("Kernel pre-warm: a kernel waits for the kernel zygote's imports")
            try:
                await asyncio.wait_for(asyncio.shield(self.watch), IMPORT_WAIT)
            except asyncio.TimeoutError:
                raise StillImporting(f"the kernel zygote is still importing after {IMPORT_WAIT} s") from None
        if self.ready is not True:
            raise Unavailable(self.ready)
        different = sorted(k for k in set(env) | set(self.env)
                           if k not in PER_KERNEL_ENV and env.get(k) != self.env.get(k))
        if different:
            raise Unavailable(f"the kernel's environment differs in {', '.join(different)}")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stdin_r, stdin_w = os.pipe()
        try:
            message = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
            socket.send_fds(self.control, [message], [theirs.fileno(), stdin_r, 1, 2])
        except OSError as e:
            mine.close()
            raise Unavailable(f"the kernel zygote does not listen: {e}") from e
        finally:
            theirs.close()
            os.close(stdin_r)
            os.close(stdin_w)  # as jupyter_client does: the kernel's stdin is an empty pipe
        mine.setblocking(False)
        try:
            data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(mine, MAX_MESSAGE), REPLY_TIMEOUT)
            reply = json.loads(data) if data else {"error": "the kernel zygote hung up"}
        except (asyncio.TimeoutError, OSError, ValueError) as e:
            reply = {"error": f"no answer from the kernel zygote: {e!r}"}
        if "pid" not in reply:
            mine.close()
            raise Unavailable(reply.get("error", reply))
        return ForkedProcess(reply["pid"], mine)

    def retire(self):
        """Fork no more; the zygote exits once the kernels it forked have."""
        try:
            self.control.send(json.dumps({"retire": True}).encode())
        except OSError:
            pass


class ForkedProcess:
    """What LocalProvisioner uses of a `subprocess.Popen`, for a kernel the zygote forked: the
    zygote is its parent, so its exit status arrives as a message."""

    stdin = stdout = stderr = None

    def __init__(self, pid, conn):
        self.pid = pid
        self.conn = conn
        self.returncode = None

    def _take(self, message):
        status = json.loads(message)["exit"] if message else None
        if status is None:  # the zygote is gone (the server is exiting): is the kernel?
            try:
                os.kill(self.pid, 0)
                return
            except ProcessLookupError:
                self.returncode = -9
        else:
            self.returncode = os.waitstatus_to_exitcode(status)
        self.conn.close()

    def poll(self):
        if self.returncode is None:
            try:
                self._take(self.conn.recv(4096))
            except BlockingIOError:
                pass
            except OSError:
                self._take(b"")
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            self.conn.setblocking(True)
            self.conn.settimeout(timeout)
            try:
                self._take(self.conn.recv(4096))
            except socket.timeout:
                raise subprocess.TimeoutExpired(LAUNCHER_MODULE, timeout) from None
        return self.returncode

    def send_signal(self, signum):
        """As Popen's: a kernel that has exited is not an error. jupyter_server's shutdown
        interrupts every kernel first; a ProcessLookupError there (the kernel died of the same
        SIGTERM as the server) would leave the server running until its stop timeout kills it."""
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass  # reaped by the zygote a moment ago: its exit message is on the way

    def terminate(self):
        self.send_signal(15)

    def kill(self):
        self.send_signal(9)
