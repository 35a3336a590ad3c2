"""The kernel zygote: imports the kernel machinery once, then forks one child per kernel.

    python -m tljh_kernel_prewarm.zygote CONTROL_FD

Started by the single-user server (`client.py`) as the user, in the server's own cgroup, with the
environment a kernel of that server gets, so it is an ordinary process of the user's: it can do
nothing the user cannot. Each request on CONTROL_FD (a SOCK_SEQPACKET socket only the server
holds) is a JSON message `{"argv", "env", "cwd"}` carrying four descriptors: a socket for this
kernel's replies and the kernel's stdin, stdout and stderr. The child becomes what
`python -m ipykernel_launcher -f ...` started by jupyter_client would be (new session, those three
descriptors and no others, the environment, working directory, `sys.argv`, `sys.path[0]` and
`__main__`), writes `{"pid": N}` (or `{"error": ...}`) on the reply socket and runs the kernel. The
zygote writes `{"exit": waitstatus}` there when it reaps the kernel.

Only the standard library is used until the kernel machinery is imported (`PRELOAD`).
"""

import builtins
import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import socket
import sys
import threading
import types

# What a fresh kernel has imported by the time it answers (so nothing here is extra in a forked
# kernel's sys.modules). `ipykernel.debugger` imports debugpy and pydevd (~0.2 s, the largest
# part): pydevd's debug-log prefix holds its importer's pid (`refresh_pids` gives the kernel its
# own), and its warning about frozen modules goes to the server's log once, from the zygote.
PRELOAD = ["ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
           "IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect", "IPython.core.logger",
           "IPython.extensions.storemagic", "sqlite3", "psutil", "tornado.platform.asyncio"]
# Module globals set to the importing process's pid at import: (module, pid attribute, its text form).
PID_GLOBALS = [("_pydevd_bundle._debug_adapter.pydevd_schema_log", "_pid", "_pid_msg")]
LAUNCHER_MODULE = "ipykernel_launcher"
MAX_MESSAGE = 1 << 20


def send(sock, message):
    try:
        sock.send(json.dumps(message).encode(), socket.MSG_NOSIGNAL)
    except OSError:
        pass  # the server forgot this kernel; nothing to tell


class Zygote:
    def __init__(self, control, import_environment):
        self.control = control
        self.import_environment = import_environment  # name -> value (None: the imports removed it)
        self.children = {}  # pid -> reply socket
        self.retired = False
        # SIGCHLD wakes the poll loop through a socket (signal.set_wakeup_fd).
        self.wakeup_r, self.wakeup_w = socket.socketpair()
        self.wakeup_r.setblocking(False)
        self.wakeup_w.setblocking(False)
        self.old_wakeup = signal.set_wakeup_fd(self.wakeup_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.main_dunders = {k: v for k, v in vars(sys.modules["__main__"]).items()
                             if k.startswith("__") and k.endswith("__")}

    def serve(self):
        """Answer requests until the server hangs up. Returns a `Kernel` only in a forked child."""
        poller = select.poll()
        poller.register(self.control, select.POLLIN)
        poller.register(self.wakeup_r, select.POLLIN)
        while not (self.retired and not self.children):
            for fd, _ in poller.poll():
                if fd == self.wakeup_r.fileno():
                    self.reap()
                    continue
                try:
                    data, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, 8)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data, fds = b"", []
                if not data:
                    self.server_gone()
                    return None
                try:
                    request = json.loads(data)
                except ValueError:
                    request = {}
                if request.get("retire"):
                    self.retired = True
                    poller.unregister(self.control)
                    continue
                if len(fds) != 4 or not request.get("argv"):
                    for fd_ in fds:
                        os.close(fd_)
                    continue
                kernel = self.fork(request, fds)
                if kernel is not None:
                    return kernel
        return None

    def fork(self, request, fds):
        reply = socket.socket(fileno=fds[0])
        stdio = fds[1:]
        if threading.active_count() != 1:
            send(reply, {"error": f"the zygote has {threading.active_count()} threads"})
            reply.close()
            for fd in stdio:
                os.close(fd)
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        pid = os.fork()
        if pid == 0:
            return self.become_kernel(request, reply, stdio, blocked)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for fd in stdio:
            os.close(fd)
        self.children[pid] = reply
        return None

    def reap(self):
        try:
            while self.wakeup_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            reply = self.children.pop(pid, None)
            if reply is not None:
                send(reply, {"exit": status})
                reply.close()

    def server_gone(self):
        """The server exited without shutting its kernels down. A kernel started by it directly
        would notice within a second (ipykernel's parent poller) and exit; so do these."""
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def become_kernel(self, request, reply, stdio, blocked):
        """In the child: drop everything of the zygote's, take the kernel's process state."""
        try:
            signal.set_wakeup_fd(self.old_wakeup)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for sock in (self.wakeup_r, self.wakeup_w, self.control, *self.children.values()):
                sock.close()
            self.children.clear()
            os.setsid()
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)  # dup2 clears close-on-exec, as Popen leaves the kernel's
            for fd in stdio:
                if fd > 2:
                    os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            for name, value in self.import_environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            keep = reply.fileno()
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd > 2 and fd != keep:
                    try:
                        os.close(fd)  # nothing the zygote had open reaches the kernel
                    except OSError:
                        pass  # listdir's own descriptor
            refresh_pids()
            kernel = Kernel(request["argv"], self.main_dunders)
        except Exception as e:
            send(reply, {"error": f"{type(e).__name__}: {e}"})
            os._exit(1)
        send(reply, {"pid": os.getpid()})
        reply.close()
        return kernel


def refresh_pids():
    """In a forked kernel: module globals that recorded the zygote's pid at import get the kernel's."""
    pid = os.getpid()
    for module_name, attribute, text in PID_GLOBALS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, pid)
            setattr(module, text, f"{pid}: ")


class Kernel:
    """`python -m ipykernel_launcher ARGS` in this (forked) interpreter."""

    def __init__(self, argv, main_dunders):
        if argv[1:3] != ["-m", LAUNCHER_MODULE]:
            raise ValueError(f"not an ipykernel_launcher command: {argv!r}")
        self.spec = importlib.util.find_spec(LAUNCHER_MODULE)
        self.argv = argv
        self.main_dunders = main_dunders

    def run(self):
        spec = self.spec
        for name in [m for m in sys.modules if m == __package__ or m.startswith(__package__ + ".")]:
            del sys.modules[name]
        # What `-m` gives a fresh interpreter: argv[0] is the module's file, sys.path[0] the
        # working directory (ipykernel_launcher takes it out while it imports), orig_argv the
        # command line.
        sys.argv = [spec.origin, *self.argv[3:]]
        sys.orig_argv = list(self.argv)
        sys.path[0] = os.getcwd()
        main = types.ModuleType("__main__")
        vars(main).update(self.main_dunders)
        vars(main).update(__name__="__main__", __file__=spec.origin, __cached__=spec.cached, __doc__=None,
                          __loader__=spec.loader, __package__=spec.parent, __spec__=spec,
                          __builtins__=builtins)
        sys.modules["__main__"] = main
        code = spec.loader.get_code(LAUNCHER_MODULE)
        del self, spec
        exec(code, vars(main))


def main():
    control = socket.socket(fileno=int(sys.argv[1]))
    environment = dict(os.environ)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an older ipykernel or IPython: the kernel imports what it needs itself
    # The imported objects stay out of the kernels' garbage collection, so their pages stay shared.
    gc.collect()
    gc.freeze()
    # What the imports did to the environment (debugpy sets PYDEVD_USE_FRAME_EVAL), redone in
    # each kernel over the environment it is given, as its own imports would have done.
    zygote = Zygote(control, {k: os.environ.get(k) for k in set(environment) | set(os.environ)
                              if os.environ.get(k) != environment.get(k)})
    control.send(json.dumps({"ready": os.getpid()}).encode())
    kernel = zygote.serve()
    if kernel is None:
        return
    del zygote, control
    kernel.run()


if __name__ == "__main__":
    main()
