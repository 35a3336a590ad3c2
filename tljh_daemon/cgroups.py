"""Per-server cgroups, so process mode enforces `limits.memory` and `limits.cpu` without systemd.

Where root may write cgroups (many containers, WSL, CI machines), each server gets its own
cgroup below the daemon's: `<daemon's cgroup>/tljh-<tag>/<server>`, on cgroup v2 (the memory
and cpu controllers of the unified hierarchy) or else on v1 (the `memory` and `cpu`
hierarchies). A process over its memory limit is OOM-killed by the kernel inside that cgroup
only: a kernel dies, its server and the hub do not.

    cgroups = Cgroups(tag)                 # detects what the host allows; cgroups.reason if not
    group = cgroups.create(name, limits)   # {"memory": "1G", "cpu": 0.5}
    group.attach(pid)                      # children forked afterwards stay in it
    group.oom_kills()                      # how many processes the kernel killed for memory
    group.remove()                         # kills what is left, removes the cgroup

A server's cgroup is found again by name (`cgroups.get(name)`) after a daemon restart.
"""

import errno
import hashlib
import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from urllib.parse import quote

log = logging.getLogger(__name__)

CPU_PERIOD_US = 100_000
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class CgroupError(Exception):
    pass


def cgroup_tag(prefix):
    """A short tag per install prefix, so two hubs on one machine keep their cgroups apart."""
    return hashlib.sha256(os.path.realpath(prefix).encode()).hexdigest()[:8]


def memory_bytes(value):
    """`limits.memory` ("512M", "1.5G", "1000") in bytes (K/M/G/T are powers of 1024, as systemd's)."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KMGT]?)", str(value).strip())
    if not match:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _mounts():
    """[(mount point, fstype, super options)] of cgroup file systems, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, options = (right.split() + ["", "", ""])[:3]
            if fstype in ("cgroup", "cgroup2"):
                found.append((left.split()[4], fstype, set(options.split(","))))
    return found


def memory_hierarchy():
    """(mount point, version) of the hierarchy with the memory controller: v1's `memory`, else
    the unified one; None if neither is mounted."""
    mounts = _mounts()
    for point, fstype, options in mounts:
        if fstype == "cgroup" and "memory" in options:
            return point, 1
    for point, fstype, _ in mounts:
        if fstype == "cgroup2":
            return point, 2
    return None


def _own_cgroups():
    """{controller or "" (v2): path of this process's cgroup}, from /proc/self/cgroup."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


@dataclass
class ServerCgroup:
    """One server's cgroup: one directory on v2, one per controller (memory, cpu) on v1."""

    name: str
    dirs: list
    version: int

    @property
    def memory_dir(self):
        return self.dirs[0]

    def exists(self):
        return any(os.path.isdir(d) for d in self.dirs)

    def attach(self, pid):
        for d in self.dirs:
            _write(os.path.join(d, "cgroup.procs"), pid)

    def pids(self):
        pids = set()
        for d in self.dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(p) for p in f.read().split())
            except FileNotFoundError:
                pass
        return pids

    def oom_kills(self):
        """Processes the kernel killed in this cgroup for going over the memory limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            with open(os.path.join(self.memory_dir, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (FileNotFoundError, ValueError):
            pass
        return 0

    def memory_usage(self):
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        try:
            with open(os.path.join(self.memory_dir, name)) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return None

    def remove(self, timeout=5.0):
        """Kill whatever still runs in the cgroup, then remove it (blocking; run it in a thread)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                log.warning("Processes %s in the cgroup of %s did not go away", sorted(pids), self.name)
                return
            time.sleep(0.05)
        for d in self.dirs:
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("Could not remove the cgroup %s: %s", d, e)
                continue
            try:
                os.rmdir(os.path.dirname(d))  # the hub's parent cgroup, once it is empty
            except OSError:
                pass


class Cgroups:
    """What this host lets root do with cgroups, and the servers' cgroups below ours.

    `available` is False (with `reason` saying why) where limits cannot be enforced."""

    def __init__(self, tag, probe=True):
        self.tag = tag
        self.version = None
        self.parents = []  # v2: [dir]; v1: [memory dir, cpu dir]
        self.reason = None
        try:
            self._detect()
            if probe:
                self._probe()
        except (CgroupError, OSError) as e:
            self.version, self.parents, self.reason = None, [], str(e)

    @property
    def available(self):
        return self.version is not None

    def describe(self):
        return f"cgroup v{self.version}" if self.available else f"not enforced: {self.reason}"

    def _detect(self):
        if os.geteuid() != 0:
            raise CgroupError("the hub does not run as root")
        mounts, own = _mounts(), _own_cgroups()
        for mount, fstype, _ in mounts:
            if fstype != "cgroup2" or "" not in own:
                continue
            with open(os.path.join(mount, "cgroup.controllers")) as f:
                controllers = set(f.read().split())
            if {"memory", "cpu"} <= controllers:
                self.version = 2
                self.parents = [os.path.join(mount + own[""], f"tljh-{self.tag}")]
                return
        v1 = {}
        for mount, fstype, options in mounts:
            for controller in ("memory", "cpu"):
                if fstype == "cgroup" and controller in options and controller in own:
                    v1[controller] = os.path.join(mount + own[controller], f"tljh-{self.tag}")
        if set(v1) == {"memory", "cpu"}:
            self.version = 1
            self.parents = [v1["memory"], v1["cpu"]]
            return
        raise CgroupError("no cgroup hierarchy with the memory and cpu controllers is mounted")

    def _probe(self):
        """Make and remove a throwaway cgroup: mounted is not the same as writable."""
        probe = self.create(f".probe-{os.getpid()}", {})
        probe.remove()

    def _dirs(self, name):
        leaf = "server-" + quote(name, safe="")
        return [os.path.join(parent, leaf) for parent in self.parents]

    def get(self, name):
        """The cgroup of server `name` (which may not exist)."""
        if not self.available:
            return None
        return ServerCgroup(name, self._dirs(name), self.version)

    def create(self, name, limits, pid=None):
        """Make (or reuse) the cgroup of server `name` with `limits`; put `pid` in it if given."""
        if not self.version:
            raise CgroupError(self.reason or "cgroups are not available")
        group = ServerCgroup(name, self._dirs(name), self.version)
        try:
            if self.version == 2:
                self._enable_v2_controllers()
            for parent, d in zip(self.parents, group.dirs):
                os.makedirs(parent, exist_ok=True)
                os.makedirs(d, exist_ok=True)
            self._set_limits(group, limits)
        except OSError as e:
            raise CgroupError(f"cannot set up the cgroup {group.dirs[0]}: {e.strerror or e}") from None
        if pid is not None:
            group.attach(pid)
        return group

    def _enable_v2_controllers(self):
        """Memory and cpu must be enabled in every ancestor's subtree_control down to ours."""
        parent = self.parents[0]
        os.makedirs(parent, exist_ok=True)
        for d in (os.path.dirname(parent), parent):
            try:
                _write(os.path.join(d, "cgroup.subtree_control"), "+memory +cpu")
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise CgroupError(
                        f"cgroup v2: {d} holds processes, so controllers cannot be enabled below it"
                    ) from None
                raise

    def _set_limits(self, group, limits):
        memory, cpu = limits.get("memory"), limits.get("cpu")
        if self.version == 2:
            d = group.dirs[0]
            _write(os.path.join(d, "memory.max"), memory_bytes(memory) if memory else "max")
            if os.path.exists(os.path.join(d, "memory.swap.max")):
                _write(os.path.join(d, "memory.swap.max"), 0 if memory else "max")
            _write(os.path.join(d, "cpu.max"),
                   f"{int(float(cpu) * CPU_PERIOD_US) if cpu else 'max'} {CPU_PERIOD_US}")
            return
        memory_dir, cpu_dir = group.dirs
        limit = memory_bytes(memory) if memory else -1
        swap_file = os.path.join(memory_dir, "memory.memsw.limit_in_bytes")
        if limit == -1 and os.path.exists(swap_file):
            _write(swap_file, -1)  # memsw must stay >= the memory limit
        _write(os.path.join(memory_dir, "memory.limit_in_bytes"), limit)
        if os.path.exists(swap_file):
            _write(swap_file, limit)  # no swapping past the limit either
        _write(os.path.join(cpu_dir, "cpu.cfs_period_us"), CPU_PERIOD_US)
        _write(os.path.join(cpu_dir, "cpu.cfs_quota_us"), int(float(cpu) * CPU_PERIOD_US) if cpu else -1)
