"""state/daemon.pid: which process is this install's running daemon.

The daemon holds an exclusive lock on the file for its lifetime (a second daemon for
the same prefix is refused) and writes its pid and process start time there; it
removes the file when it stops cleanly. Anything that signals the daemon first
checks, as servers are re-adopted, that the pid still names *that* process: same
start time and a `tljh-daemon run` command line. A file left behind by a daemon
that was killed may name a pid the kernel has since given to a stranger.
"""

import fcntl
import json
import os
from dataclasses import dataclass

import psutil

FILENAME = "daemon.pid"


class AlreadyRunning(Exception):
    pass


def path(paths):
    return os.path.join(paths.state_dir, FILENAME)


def acquire(paths):
    """Lock the pid file and record this process in it; returns the fd to keep open."""
    os.makedirs(paths.state_dir, mode=0o700, exist_ok=True)
    fd = os.open(path(paths), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"another tljh-daemon is already running for {paths.prefix}") from None
    me = psutil.Process()
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": me.pid, "create_time": me.create_time()}).encode())
    return fd


def release(paths, fd):
    """On a clean stop: the file goes first, then the lock."""
    try:
        os.unlink(path(paths))
    except FileNotFoundError:
        pass
    os.close(fd)


def locked(paths):
    """True while some process holds the daemon's lock on the pid file."""
    try:
        fd = os.open(path(paths), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@dataclass
class Recorded:
    pid: int
    create_time: float = None  # None in files written before start times were recorded


def read(paths):
    """What the pid file records, or None when there is no usable file."""
    try:
        with open(path(paths)) as f:
            text = f.read().strip()
    except OSError:
        return None
    try:
        data = json.loads(text)
        if isinstance(data, int):  # an older daemon wrote the bare pid
            return Recorded(data) if data > 0 else None
        return Recorded(int(data["pid"]), float(data["create_time"]))
    except (ValueError, TypeError, KeyError):
        return None


def looks_like_daemon(cmdline):
    """`tljh-daemon run ...` or `python -m tljh_daemon run ...`."""
    if "run" not in cmdline:
        return False
    program = os.path.basename(cmdline[0]) if cmdline else ""
    if program == "tljh-daemon":
        return True
    if not program.startswith("python"):
        return False
    return (len(cmdline) > 1 and os.path.basename(cmdline[1]) == "tljh-daemon"
            or cmdline[1:3] in (["-m", "tljh_daemon"], ["-m", "tljh_daemon.cli"]))


def identify(paths):
    """(process, None) when the pid file names this install's live daemon, else (None, why not).
    `why not` is None when there simply is no pid file."""
    recorded = read(paths)
    if recorded is None:
        return None, None
    try:
        proc = psutil.Process(recorded.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None, f"pid {recorded.pid} has already exited"
        started, cmdline = proc.create_time(), proc.cmdline()
    except psutil.NoSuchProcess:
        return None, f"no process has pid {recorded.pid} any more"
    except psutil.Error as e:
        return None, f"pid {recorded.pid} cannot be inspected ({e})"
    if recorded.create_time is not None and abs(started - recorded.create_time) > 0.01:
        return None, f"pid {recorded.pid} now belongs to another process ({describe(cmdline)}), started later"
    if not looks_like_daemon(cmdline):
        return None, f"pid {recorded.pid} is not a tljh-daemon ({describe(cmdline)})"
    if recorded.create_time is None and not locked(paths):
        return None, f"pid {recorded.pid} is a tljh-daemon that does not hold this install's lock"
    return proc, None


def describe(cmdline, limit=80):
    text = " ".join(cmdline) or "no command line"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def remove_stale(paths):
    """Remove the file unless a daemon holds its lock; True if removed."""
    if locked(paths):
        return False
    try:
        os.unlink(path(paths))
    except FileNotFoundError:
        pass
    return True
