"""The pre-warm launcher: run by the *user environment's* Python, as root, one per user environment.

    <user env>/bin/python -s -E /path/to/launcher.py SOCKET DAEMON_PID
    python -I /path/to/launcher.py --exec      (a fresh server: the request on stdin, then exec)

It imports the single-user server stack once (the 4-5 s that dominate a fresh spawn), listens on
a Unix socket only root can reach, and for each request forks a child that becomes the user and
runs `jupyterhub.singleuser.main`. Children share the imported code copy-on-write.

Only the standard library may be used here: the user environment does not have tljh_daemon.

Security: the child does, in this order, only things that involve no user-controlled data while
it is root: new session, close every inherited descriptor, open the (root-owned) log, a new mount
namespace with a private /tmp, then setgroups/setgid/setuid (verified: it can never regain root)
and NoNewPrivileges for non-admins. Only then does it touch the user's home, site-packages or
environment.

`--exec` gives a server started fresh (no launcher, or one that must not be pre-warmed) the same
private /tmp, identity switch and NoNewPrivileges, then execs its command.

Protocol: one JSON line per connection, answered by one JSON line, `{"pid": N}` or `{"error": "..."}`.
Request: uid, gid, groups, home, cwd, env, argv, log_path, no_new_privs, private_tmp; optional
(systemd mode) hold, host_mounts, journal. With `hold` the child waits until the daemon writes
`go` on the same connection (after moving it into its scope) and exits if the daemon hangs up;
with `host_mounts` it joins PID 1's mount namespace (the launcher sees the daemon unit's
sandbox: PrivateTmp, PrivateDevices); with `journal` its output goes to the journal under that
identifier (connected after the move, so journald files it under the scope).
"""

import builtins
import ctypes
import gc
import importlib
import importlib.machinery
import json
import os
import signal
import site
import socket
import struct
import sys
import sysconfig
import tempfile
import threading
import types

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 1 << 14, 1 << 18
MAX_REQUEST = 1 << 20
KEYCTL_JOIN_SESSION_KEYRING = 1
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280, "i686": 288,
              "armv7l": 311}
HOLD_TIMEOUT = 120  # for the daemon's "go"
JOURNAL_STREAM = "/run/systemd/journal/stdout"
ENV_DEPENDENT = "jupyterhub"
# The launcher's own HOME and USER while it imports: no real directory (root's would be wrong for
# every user and writable by imports), and a name a test can find if a value derived from it
# survives into a server.
LAUNCHER_HOME = "/nonexistent/tljh-launcher"
LAUNCHER_USER = "tljh-launcher"
# Read once at interpreter start (stdio and filesystem encodings, UTF-8 mode): a server whose
# environment sets them otherwise than the launcher's own starts as a fresh interpreter.
LOCALE_ENV = ("LC_ALL", "LC_CTYPE", "LANG")

_libc = ctypes.CDLL(None, use_errno=True)
# Modules every single-user server imports while it starts (the server, JupyterLab, the request
# handlers and the default server extensions), imported before any fork where installed.
PRELOAD = [
    "jupyter_server.serverapp", "jupyterlab.labapp", "notebook.app",
    *(f"jupyter_server.{m}.handlers" for m in (
        "kernelspecs", "nbconvert", "view", "services.api", "services.config", "services.contents",
        "services.events", "services.kernels", "services.kernelspecs", "services.nbconvert",
        "services.security", "services.sessions")),
    "jupyter_server.services.shutdown",
    "jupyter_server_terminals.app", "jupyter_server_terminals.handlers", "jupyter_server_terminals.api_handlers",
    "jupyter_lsp.serverextension", "jupyter_lsp.virtual_documents_shadow", "notebook_shim.nbserver",
    "jupyter_core.migrate", "tornado.platform.asyncio", "jinja2.ext", "IPython",
    # httpx imports its transport lazily, when JupyterLab's PyPI extension manager makes its client:
    # 40% of a forked server's start (py-spy, 30-user class start) until it was imported here.
    "httpcore",
]


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def preload():
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    registry = _metrics_registry()
    collectors = set(getattr(registry, "_collector_to_names", {}))
    # JupyterHub's own modules read the server's JUPYTERHUB_* variables when they are imported
    # (trait defaults: service prefix, API URL, client id...), so each server imports them itself
    # (0.2 s); importing them here once warms the heavy libraries they use (sqlalchemy, aiohttp...).
    importlib.import_module(ENV_DEPENDENT + ".singleuser")
    for name in [m for m in sys.modules if m == ENV_DEPENDENT or m.startswith(ENV_DEPENDENT + ".")]:
        del sys.modules[name]
    for collector in set(getattr(registry, "_collector_to_names", {})) - collectors:
        registry.unregister(collector)  # they register their metrics again
    # Objects that exist now are never touched by the children's garbage collector, so the pages
    # holding them stay shared.
    gc.collect()
    gc.freeze()


def _metrics_registry():
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return None
    return REGISTRY


def user_site_enabled():
    """Would a fresh interpreter of this environment add the user's site-packages? (site.py:
    not in a virtualenv without system site-packages.)"""
    if sys.prefix == sys.base_prefix:
        return True
    for directory in (os.path.dirname(sys.executable), os.path.dirname(os.path.dirname(sys.executable))):
        try:
            with open(os.path.join(directory, "pyvenv.cfg")) as f:
                for line in f:
                    key, _, value = line.partition("=")
                    if key.strip().lower() == "include-system-site-packages":
                        return value.strip().lower() == "true"
        except OSError:
            continue
    return True


# -- in the child, as root ------------------------------------------------------------------

def close_inherited_fds():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def private_tmp():
    """A mount namespace of our own with an empty tmpfs on /tmp (what PrivateTmp= gives units)."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    _check(_libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777"), "mounting /tmp")


def host_mounts():
    """Join PID 1's mount namespace: the machine's own /dev, /tmp and /proc/sys, as a unit's."""
    fd = os.open("/proc/1/ns/mnt", os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNS), "setns(PID 1's mount namespace)")
    finally:
        os.close(fd)


def wait_for_go(conn):
    conn.settimeout(HOLD_TIMEOUT)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 16:
            chunk = conn.recv(16)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    if data != b"go\n":
        raise RuntimeError("the daemon withdrew the request")


def journal_stream(identifier):
    """A stream to journald, as systemd gives a unit's stdout (header: identifier, unit, priority,
    level prefix, forward to syslog, kmsg, console)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(JOURNAL_STREAM)
        s.shutdown(socket.SHUT_RD)
        s.sendall(f"{identifier}\n\n6\n0\n0\n0\n0\n".encode())
    except OSError:
        s.close()
        raise
    return s.detach()


def unit_environment(journal_fd):
    """What systemd puts into the environment of a process it starts for a unit, for a server
    forked into its scope: INVOCATION_ID (systemd links it under /run/systemd/units by unit
    name), JOURNAL_STREAM (device:inode of the journal stream on stdout) and SYSTEMD_EXEC_PID."""
    env = {"SYSTEMD_EXEC_PID": str(os.getpid())}
    if journal_fd is not None:
        st = os.fstat(journal_fd)
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    try:
        with open("/proc/self/cgroup") as f:
            unit = f.read().splitlines()[-1].rpartition("/")[2]
        env["INVOCATION_ID"] = os.path.basename(os.readlink(f"/run/systemd/units/invocation:{unit}"))
    except (OSError, IndexError):
        pass
    return env


def become_user(uid, gid, groups, no_new_privs):
    if uid == 0 or gid == 0:
        raise PermissionError("refusing to run a server as root")
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) \
            or sorted(os.getgroups()) != sorted(set(groups)):
        raise PermissionError("the identity switch did not take")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PermissionError("the child could become root again")
    if no_new_privs:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        if _libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
            raise PermissionError("NO_NEW_PRIVS did not take")


def own_session_keyring():
    """A new session keyring, the server's own (what KeyringMode=private gives a unit): else all
    servers share the daemon's, and a key one user adds there (a Kerberos cache) others possess.
    Best effort: where keyctl is filtered (a container's seccomp) nobody has keyrings."""
    number = SYS_KEYCTL.get(os.uname().machine)
    if number is not None:
        _libc.syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), ctypes.c_void_p(None))


def confine(request):
    """A private /tmp (if asked for), then the user's identity, NoNewPrivileges (non-admins) and a
    session keyring of its own."""
    if request["private_tmp"]:
        private_tmp()
    become_user(request["uid"], request["gid"], request["groups"], request["no_new_privs"])
    own_session_keyring()


def exec_server():
    """`--exec`: become a fresh server. Run as root by the daemon with stdout/stderr on the user's
    log and the request (which carries the server's token) on stdin, never on the command line."""
    try:
        data = sys.stdin.buffer.read(MAX_REQUEST + 1)
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
        request = json.loads(data)
        validate(request)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        close_inherited_fds()
        confine(request)
        argv = request["argv"]
        os.chdir(request["cwd"])
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # as subprocess's restore_signals
            signal.signal(sig, signal.SIG_DFL)
    except Exception as e:
        print(f"tljh launcher: the server could not start: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        os._exit(1)
    try:
        os.execve(argv[0], argv, request["env"])
    except OSError as e:
        print(f"tljh launcher: could not run {argv[0]}: {e.strerror or e}", file=sys.stderr, flush=True)
        os._exit(127)


# -- in the child, as the user ------------------------------------------------------------------

def shadows_preloaded(user_site):
    """Whether the user's own site-packages holds a module we already imported (then only a fresh
    interpreter gives the user's version, as today)."""
    loaded = {name.partition(".")[0] for name in sys.modules}
    try:
        entries = os.listdir(user_site)
    except OSError:
        return False
    return any(entry.partition(".")[0].partition("-")[0] in loaded for entry in entries)


def add_user_site(argv, env):
    """The user's ~/.local site-packages where a fresh interpreter would have it (before the
    environment's own), or exec the fresh server when it overrides something already imported.
    site.USER_BASE and USER_SITE are computed again from $HOME, now the user's."""
    site.USER_BASE = None
    site.USER_SITE = None
    user_site = site.getusersitepackages()
    if not user_site_enabled():
        return
    site.ENABLE_USER_SITE = True  # as site.py says for an interpreter started without -s
    if not os.path.isdir(user_site):
        return
    if shadows_preloaded(user_site):
        os.execve(argv[0], argv, env)
    before = list(sys.path)
    site.addsitedir(user_site)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p not in added]
    position = next((i for i, p in enumerate(rest) if p in site.getsitepackages()), len(rest))
    sys.path[:] = rest[:position] + added + rest[position:]


def reset_static_default(cls, name, value):
    """Give a trait of `cls` (and of subclasses that inherit it) a new class default. traitlets
    copies a static default into each class's `_static_immutable_initial_values` when the class is
    made, and instances start from that copy, so it is set there as well as on the trait."""
    trait = cls.class_traits().get(name)
    if trait is None:
        return
    trait.default_value = value
    classes = [cls]
    while classes:
        klass = classes.pop()
        classes.extend(klass.__subclasses__())
        initial = klass.__dict__.get("_static_immutable_initial_values")
        if initial is not None and name in initial and klass.class_traits().get(name) is trait:
            initial[name] = value


def reset_import_time_values():
    """Values that libraries compute from the environment when a class is defined, i.e. when the
    launcher imported them as LAUNCHER_USER: computed again, as a fresh server of this user would.
    (tests/test_prewarm_fidelity.py compares every such default of every preloaded class.)"""
    lab = sys.modules.get("jupyterlab.labapp")
    if lab is not None:
        # JupyterLab's settings and workspaces directories: Unicode(get_user_settings_dir()) etc.
        from jupyterlab.commands import get_user_settings_dir, get_workspaces_dir

        reset_static_default(lab.LabApp, "user_settings_dir", get_user_settings_dir())
        reset_static_default(lab.LabApp, "workspaces_dir", get_workspaces_dir())
    session = sys.modules.get("jupyter_client.session")
    if session is not None:
        # The user name in every kernel message's header: Unicode(os.environ.get("USER", ...)).
        reset_static_default(session.Session, "username", os.environ.get("USER", "username"))
    trash = sys.modules.get("send2trash.plat_other")
    if trash is not None:
        # Where deleted files go: module constants from $HOME/$XDG_DATA_HOME and os.getuid(), read
        # by the send2trash function jupyter_server holds; reloading runs them again in its namespace.
        importlib.reload(trash)
    config_vars = sysconfig.get_config_vars()
    if "userbase" in config_vars:
        config_vars["userbase"] = site.getuserbase()  # a cache, filled from $HOME on first use
    tempfile.tempdir = None  # gettempdir() caches; the server's TMPDIR is its own


def script_interpreter(path):
    """The interpreter line of a script (`#!/env/bin/python` -> ["/env/bin/python"]), or None."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    return first[2:].decode(errors="replace").split() or None


def run_as_fresh_script(argv, env):
    """Run the server's script as a fresh interpreter would: as __main__, with the interpreter of
    its #! line as sys.executable and in sys.orig_argv. A script for another interpreter, or with
    another locale than the launcher's, is exec'd instead (a fresh start, as the user)."""
    interpreter = script_interpreter(argv[0])
    try:
        same = interpreter is not None and os.path.samefile(interpreter[0], sys.executable)
    except OSError:
        same = False
    if not same or any(env.get(k) != _launcher_locale.get(k) for k in LOCALE_ENV):
        os.execve(argv[0], argv, env)
    sys.executable = interpreter[0]
    sys.orig_argv = [*interpreter, *argv]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(argv[0])
    loader = importlib.machinery.SourceFileLoader("__main__", argv[0])
    main = types.ModuleType("__main__")
    main.__file__, main.__loader__ = argv[0], loader
    main.__dict__.update(__builtins__=builtins, __cached__=None)  # not declared by ModuleType
    # multiprocessing keeps __main__ as __mp_main__ too (for its children to import).
    for alias in ("__main__", "__mp_main__"):
        if alias in sys.modules or alias == "__main__":
            sys.modules[alias] = main
    code = loader.get_code("__main__")
    if code is None:
        raise ImportError(f"{argv[0]} has no code to run")
    exec(code, main.__dict__)


_launcher_locale = {}  # LOCALE_ENV as the launcher started with them


def child(request, listener, conn):
    """Become the user's server. Never returns."""
    code: int | str | None = 1  # SystemExit.code's type
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        listener.close()
        if request.get("hold"):
            wait_for_go(conn)
        conn.close()
        if request.get("host_mounts"):
            host_mounts()
        log_fd, env = None, dict(request["env"])
        if request.get("journal"):
            try:
                log_fd = journal_stream(request["journal"])
            except OSError:
                pass
            env = {**unit_environment(log_fd), **env}
        if log_fd is None:
            log_fd = os.open(request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        close_inherited_fds()
        confine(request)
        argv = request["argv"]
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        add_user_site(argv, env)
        reset_import_time_values()
        run_as_fresh_script(argv, env)
        code = 0
    except SystemExit as e:
        code = e.code
    except BaseException as e:
        print(f"tljh launcher: the server could not start: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else (0 if code is None else 1))


# -- the launcher itself ------------------------------------------------------------------

def validate(request):
    types = {"uid": int, "gid": int, "groups": list, "home": str, "cwd": str, "env": dict, "argv": list,
             "log_path": str, "no_new_privs": bool, "private_tmp": bool}
    for key, kind in types.items():
        if not isinstance(request.get(key), kind):
            raise ValueError(f"{key} missing or not a {kind.__name__}")
    for key, kind in {"hold": bool, "host_mounts": bool, "journal": str}.items():
        if key in request and not isinstance(request[key], kind):
            raise ValueError(f"{key} not a {kind.__name__}")
    if not request["argv"] or not all(isinstance(a, str) for a in request["argv"]):
        raise ValueError("argv must be a non-empty list of strings")
    if not all(isinstance(g, int) for g in request["groups"]):
        raise ValueError("groups must be integers")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items()):
        raise ValueError("env must map strings to strings")


def peer_is_root(conn):
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == 0


def read_json_line(conn, limit=MAX_REQUEST):
    """One JSON line from a socket (the protocol both ends speak; the daemon's prewarm.py reads
    answers with it). ValueError when it is not JSON, ends early or is larger than `limit`."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("message too large")
    return json.loads(data)


def reap(*_):
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                conn.settimeout(10)
                if not peer_is_root(conn):
                    raise PermissionError("only root may ask for a server")
                request = read_json_line(conn)
                validate(request)
                if threading.active_count() != 1:
                    raise RuntimeError("the launcher has threads; forking is not safe")
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    child(request, listener, conn)
                answer: dict[str, object] = {"pid": pid}
            except Exception as e:
                answer = {"error": f"{type(e).__name__}: {e}"}
            try:
                conn.sendall(json.dumps(answer).encode() + b"\n")
            except OSError:
                pass


def main():
    if sys.argv[1:] == ["--exec"]:
        return exec_server()
    socket_path, daemon_pid = sys.argv[1], int(sys.argv[2])
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # ends with the daemon (not its children)
    if os.getppid() != daemon_pid:
        sys.exit("tljh launcher: the daemon is gone")
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = os.path.dirname(sys.executable)  # never the daemon's package directory
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _launcher_locale.update({k: os.environ[k] for k in LOCALE_ENV if k in os.environ})
    os.chdir("/")
    preload()
    old = os.umask(0o177)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)  # 0600 root, in the daemon's root-only state directory
    os.umask(old)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, reap)
    print("READY", json.dumps({"python": sys.version.split()[0]}), flush=True)
    serve(listener)


if __name__ == "__main__":
    main()
