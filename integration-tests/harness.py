"""Boot throwaway Debian containers (systemd as PID 1) for integration tests.

A Debian rootfs is built once with mmdebstrap and cached outside the repository;
each container is a fresh overlayfs on top of it, booted with systemd-nspawn on
the host network (reach it on 127.0.0.1; use distinct ports per container).
Commands run inside with nsenter and a clean environment. Needs root.
"""

import fcntl
import glob
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time

import psutil

from tljh_daemon.ports import free_port  # noqa: F401 (also used by the tests)

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE_DIR = os.environ.get("TLJH_TEST_ROOTFS_CACHE", "/var/cache/tljh-test-rootfs")
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd,systemd-sysv,dbus,libpam-runtime,python3,python3-venv,python3-pip,sudo,"
    "ca-certificates,procps,iproute2,python3-systemd"
)
RECIPE_VERSION = "1"  # bump when build_rootfs' steps after mmdebstrap change
HOST_CA_GLOB = "/usr/local/share/ca-certificates/*.crt"
# v1 controllers made writable inside with delegate_cgroups=True.
DELEGATED_CONTROLLERS = {"memory", "pids", "cpu", "cpuacct"}
_names = itertools.count()


class CommandFailed(subprocess.CalledProcessError):
    """A command inside the container exited non-zero; str() shows its output."""

    def __str__(self):
        return f"{super().__str__()}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def ensure_host_tools():
    """apt-get install systemd-container and mmdebstrap if missing (as root)."""
    wanted = {"systemd-nspawn": "systemd-container", "mmdebstrap": "mmdebstrap", "nsenter": "util-linux"}
    missing = sorted({pkg for tool, pkg in wanted.items() if not shutil.which(tool)})
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def _recipe_hash(packages, suite, mirror, ca_files):
    h = hashlib.sha256(f"{RECIPE_VERSION}\n{suite}\n{mirror}\n{packages}\n".encode())
    for path in ca_files:
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read())
    return h.hexdigest()[:16]


def build_rootfs(packages=PACKAGES, suite=SUITE, mirror=MIRROR, cache_dir=CACHE_DIR):
    """Return the path of a cached rootfs for this recipe, building it first if needed.

    Built into a temporary directory next to the cache entry and renamed into place,
    so an interrupted build is never reused. The host's extra CA certificates are
    installed inside so HTTPS works through the intercepting proxy.
    """
    ca_files = sorted(glob.glob(HOST_CA_GLOB))
    target = os.path.join(cache_dir, _recipe_hash(packages, suite, mirror, ca_files))
    if os.path.isdir(target):
        return target
    os.makedirs(cache_dir, exist_ok=True)
    with open(os.path.join(cache_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building the same recipe
        if os.path.isdir(target):
            return target
        for stale in glob.glob(os.path.join(cache_dir, ".build-*")):  # left by a killed build
            _rmtree_unmounted(stale)
        tmp = tempfile.mkdtemp(prefix=".build-", dir=cache_dir)
        try:
            subprocess.run(["mmdebstrap", "--mode=root", "--variant=minbase", "--quiet",
                            f"--include={packages}", suite, tmp, mirror], check=True)
            for path in ca_files:
                shutil.copy(path, os.path.join(tmp, "usr/local/share/ca-certificates/"))
            subprocess.run(["chroot", tmp, "update-ca-certificates"], check=True,
                           capture_output=True, env={"PATH": PATH})
            # mmdebstrap copies the host's hostname; without the file nspawn's --machine name is kept.
            if os.path.exists(os.path.join(tmp, "etc/hostname")):
                os.unlink(os.path.join(tmp, "etc/hostname"))
            os.chmod(tmp, 0o755)
            os.rename(tmp, target)
        except BaseException:
            _rmtree_unmounted(tmp)
            raise
    return target


def _child_cgroups(name, delegate):
    """Create a child cgroup of our own cgroup in each hierarchy the container gets its own place in.

    Always name=systemd and cgroup2 (else nspawn makes payload/ and supervisor/ right in our
    cgroup, shared by concurrent containers); with delegate also memory, pids, cpu, cpuacct.
    """
    with open("/proc/self/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    names = {c for _, controllers, _ in entries for c in controllers.split(",") if c}
    mounts = {}  # controller set ('' for cgroup2) -> mount point
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                keys = ",".join(sorted(set(options.split(",")) & names)) if fstype == "cgroup" else ""
                if keys or fstype == "cgroup2":
                    mounts.setdefault(keys, left.split()[4])
    dirs = []
    for _, controllers, path in entries:
        keys = set(controllers.split(",")) - {""}
        wanted = not keys or "name=systemd" in keys or (delegate and keys & DELEGATED_CONTROLLERS)
        mount = mounts.get(",".join(sorted(keys)))
        if wanted and mount:
            d = os.path.join(mount + path.rstrip("/"), f"tljh-test-{name}")
            os.makedirs(d, exist_ok=True)
            dirs.append(d)
    return dirs


def _remove_cgroups(dirs, timeout=10):
    """rmdir the cgroup trees (deepest first), retrying while the kernel lets go of dying tasks."""
    deadline = time.monotonic() + timeout
    for top in dirs:
        while os.path.isdir(top):
            for root, _, _ in os.walk(top, topdown=False):
                try:
                    os.rmdir(root)
                except OSError:
                    pass
            if not os.path.isdir(top) or time.monotonic() > deadline:
                break
            time.sleep(0.1)


def _cgroup_pids(dirs):
    pids = set()
    for top in dirs:
        for root, _, files in os.walk(top):
            if "cgroup.procs" in files:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids.update(int(p) for p in f.read().split())
    return pids


class Container:
    """One booted container: fresh overlay on `rootfs`, systemd-nspawn --boot, host network.

    binds_ro/binds: "HOST:CONTAINER" paths bind-mounted read-only / read-write.
    delegate_cgroups: give the container writable memory/pids/cpu/cpuacct cgroups
    (cgroup v1 hybrid hosts) so limits such as MemoryMax= are enforced inside.
    `root` is the container's / as seen from the host (write files there to copy them in).
    """

    def __init__(self, rootfs, binds_ro=(), binds=(), delegate_cgroups=False, name=None):
        self.rootfs = rootfs
        self.binds_ro, self.binds = list(binds_ro), list(binds)
        self.delegate_cgroups = delegate_cgroups
        self.name = name or f"tljh-{os.getpid()}-{next(_names)}"
        self.tmp = self.root = self.log_path = None  # set by start()
        self.process = None
        self.pid1 = None
        self.cgroups = []
        self._mounted = False

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=60):
        """Mount the overlay, boot, wait for systemd; on failure tear everything down."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout):
        if self.delegate_cgroups and _fs_type("/sys/fs/cgroup") != "tmpfs":
            raise NotImplementedError("delegate_cgroups is implemented for cgroup v1/hybrid hosts only")
        self.tmp = tempfile.mkdtemp(prefix=f"{self.name}-", dir="/var/tmp")
        self.root = os.path.join(self.tmp, "merged")
        self.log_path = os.path.join(self.tmp, "console.log")
        for d in ("upper", "work", "merged"):
            os.mkdir(os.path.join(self.tmp, d))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={self.rootfs},upperdir={self.tmp}/upper,workdir={self.tmp}/work",
                        self.root], check=True)
        self._mounted = True
        self.cgroups = _child_cgroups(self.name, self.delegate_cgroups)
        cmd = ["systemd-nspawn", "-D", self.root, "--boot", "--register=no", "--keep-unit",
               "--console=read-only", f"--machine={self.name}"]
        cmd += [f"--bind-ro={b}" for b in self.binds_ro] + [f"--bind={b}" for b in self.binds]
        procs = [os.path.join(d, "cgroup.procs") for d in self.cgroups]

        def enter_cgroups():  # runs in the child before exec: nspawn starts inside our child cgroups
            for p in procs:
                with open(p, "w") as f:
                    f.write(str(os.getpid()))

        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=enter_cgroups)
        deadline = time.monotonic() + timeout
        self.pid1 = self._find_pid1(deadline)
        self.wait_running(deadline - time.monotonic())
        if self.delegate_cgroups:
            self._make_cgroups_writable(deadline - time.monotonic())

    def _find_pid1(self, deadline):
        """The container's PID 1: nspawn's child once it runs in a new PID namespace and has exec'd init."""
        own_ns = os.readlink("/proc/self/ns/pid")
        nspawn = psutil.Process(self.process.pid)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.process.returncode}:\n{self.console()}")
            for child in nspawn.children():
                try:
                    if os.readlink(f"/proc/{child.pid}/ns/pid") != own_ns and child.name() != "systemd-nspawn":
                        return child.pid
                except (OSError, psutil.Error):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"container {self.name} did not start:\n{self.console()}")

    def wait_running(self, timeout=60):
        """Poll `systemctl is-system-running` until it says running or degraded; return the state."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"container {self.name} exited:\n{self.console()}")
            state = self.run(["systemctl", "is-system-running"], check=False, timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.1)
        raise TimeoutError(f"container {self.name} state {state!r} after {timeout}s:\n{self.console()}")

    def _make_cgroups_writable(self, timeout):
        """Remount the delegated v1 hierarchies read-write inside and let systemd re-detect them."""
        for line in self.run(["cat", "/proc/self/mounts"]).stdout.splitlines():
            _, target, fstype, options = line.split()[:4]
            if fstype == "cgroup" and set(options.split(",")) & DELEGATED_CONTROLLERS:
                self.run(["mount", "-o", "remount,bind,rw", target])
        self.run(["systemctl", "daemon-reexec"])
        self.wait_running(timeout)

    def stop(self, timeout=30):
        """Shut down cleanly (SIGTERM to nspawn halts the container), SIGKILL after `timeout`,
        kill anything left in the container's cgroups, unmount the overlay, delete temp files."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                if self.pid1:
                    _kill(self.pid1)  # PID 1 of a PID namespace: the kernel kills the rest
                self.process.kill()
                self.process.wait(10)
        for _ in range(50):
            left = _cgroup_pids(self.cgroups)
            if not left:
                break
            for pid in left:
                _kill(pid)
            time.sleep(0.1)
        _remove_cgroups(self.cgroups)
        if self._mounted:
            subprocess.run(["umount", self.root], check=True)
            self._mounted = False
        if self.tmp:
            _rmtree_unmounted(self.tmp)
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{self.name}", ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- using it ----------------------------------------------------------

    def run(self, cmd, check=True, timeout=120, env=None, input=None):
        """Run `cmd` (list, or str for `sh -c`) inside as root with only PATH and `env` set.

        Returns a CompletedProcess with text stdout/stderr; raises CommandFailed if check
        and the exit code is non-zero, TimeoutExpired (after killing it) on timeout.
        Start long-running processes with systemd-run: a background child that keeps
        stdout/stderr open makes run() wait for it until the timeout.
        """
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        full = ["nsenter", "-t", str(self.pid1), "-a", "env", "-i", f"PATH={PATH}", *extra, *cmd]
        with subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # nsenter's child inside shares its process group
                proc.communicate()
                raise
        if check and proc.returncode:
            raise CommandFailed(proc.returncode, cmd, out, err)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def console(self):
        """What the container printed on its console so far (boot messages)."""
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def _mounts_under(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    return sorted((p for p in points if p == path or p.startswith(path + "/")), reverse=True)


def _rmtree_unmounted(path):
    """rmtree, but first unmount anything below path (an interrupted mmdebstrap may leave
    /proc, /sys or /dev mounts there) and refuse to delete if something stays mounted."""
    if not os.path.exists(path):
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", "--lazy", point], check=False)
    if _mounts_under(path):
        raise RuntimeError(f"not deleting {path}: still has mounts {_mounts_under(path)}")
    shutil.rmtree(path, ignore_errors=True)


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _fs_type(path):
    return subprocess.run(["stat", "-fc", "%T", path], capture_output=True, text=True).stdout.strip()
