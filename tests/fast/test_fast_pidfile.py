"""state/daemon.pid: who may be signalled as "the daemon" (tljh_daemon.pidfile)."""

import json
import subprocess
import sys
import time

import psutil
import pytest

from tljh_daemon import pidfile
from tljh_daemon.paths import Paths


@pytest.fixture
def paths(tmp_path):
    return Paths(str(tmp_path))


@pytest.fixture
def stranger():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # Until it has exec'd, the child still shows pytest's command line: wait for its own.
    deadline = time.monotonic() + 30
    while "time.sleep" not in " ".join(psutil.Process(proc.pid).cmdline()) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield proc
    proc.kill()
    proc.wait()


def write(paths, content):
    paths.ensure()
    with open(pidfile.path(paths), "w") as f:
        f.write(content)


def test_no_file_is_not_an_error(paths):
    assert pidfile.identify(paths) == (None, None)


def test_a_stranger_is_never_named_the_daemon(paths, stranger):
    write(paths, str(stranger.pid))  # the bare pid an older daemon wrote
    proc, why = pidfile.identify(paths)
    assert proc is None and f"pid {stranger.pid} is not a tljh-daemon" in why and "time.sleep" in why
    write(paths, json.dumps({"pid": stranger.pid, "create_time": 1.0}))  # a recycled pid
    proc, why = pidfile.identify(paths)
    assert proc is None and "now belongs to another process" in why


def test_a_dead_pid_and_garbage(paths, stranger):
    stranger.kill()
    stranger.wait()
    write(paths, json.dumps({"pid": stranger.pid, "create_time": 1.0}))
    assert "no process has pid" in pidfile.identify(paths)[1]
    write(paths, "not a pid")
    assert pidfile.identify(paths) == (None, None)


def test_lock_is_exclusive_and_release_removes_the_file(paths):
    fd = pidfile.acquire(paths)
    try:
        assert pidfile.locked(paths)
        with pytest.raises(pidfile.AlreadyRunning, match=str(paths.prefix)):
            pidfile.acquire(paths)
        assert not pidfile.remove_stale(paths), "a file a live daemon holds is never removed"
        assert pidfile.read(paths).pid == __import__("os").getpid()
    finally:
        pidfile.release(paths, fd)
    assert pidfile.read(paths) is None and not pidfile.locked(paths)


@pytest.mark.parametrize("cmdline, expected", [
    (["/opt/tljh/hub/bin/python3", "/opt/tljh/hub/bin/tljh-daemon", "run", "--prefix", "/opt/tljh"], True),
    (["/usr/bin/python3", "-m", "tljh_daemon", "run", "--prefix", "/x"], True),
    (["/opt/tljh/hub/bin/tljh-daemon", "stop"], False),
    (["sleep", "tljh-daemon", "run"], False),
    (["/usr/bin/python3", "-c", "import time"], False),
])
def test_daemon_command_lines(cmdline, expected):
    assert pidfile.looks_like_daemon(cmdline) is expected
