"""The pre-warm launcher's supervision, without root or JupyterLab: stand-in "user environments"
whose bin/python is a shell script (ready and idle, or failing at once)."""

import asyncio
import os
import socket
import stat
import subprocess
import sys

import pytest

from tljh_daemon.spawner import prewarm
from tljh_daemon.spawner.base import SpawnRequest
from tljh_daemon.spawner.prewarm import Launcher, LauncherUnavailable, environment_stamp
from tljh_daemon.spawner.systemd import SystemdSpawner, unit_name

sys.path.insert(0, os.path.dirname(prewarm.LAUNCHER_SOURCE))
import launcher as launcher_program  # noqa: E402 (the program the user environment's Python runs)

READY = "#!/bin/sh\necho READY '{}'\nexec sleep 600\n"


async def until(condition, timeout=20):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def fake_env(root, script):
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "bin").mkdir()
    python = root / "bin" / "python"
    python.write_text(script)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return site


@pytest.fixture
async def launchers(tmp_path):
    made = []

    def make(script=READY):
        env = tmp_path / f"env{len(made)}"
        site = fake_env(env, script)
        state = tmp_path / f"state{len(made)}"
        state.mkdir()
        launcher = Launcher(str(env), str(state), str(state / "logs" / "launcher.log"))
        launcher.restart_delay = 0.2
        made.append(launcher)
        return launcher, site

    yield make
    for launcher in made:
        await launcher.close()


def test_the_stamp_follows_installs_not_bytecode(tmp_path):
    site = fake_env(tmp_path, READY)
    before = environment_stamp(str(tmp_path))
    (site / "__pycache__").mkdir()  # what importing as root writes
    (site / "six.py").write_text("")
    assert environment_stamp(str(tmp_path)) == before
    (site / "six-1.0.dist-info").mkdir()
    assert environment_stamp(str(tmp_path)) != before


def test_variables_read_at_interpreter_start_need_a_fresh_spawn():
    assert prewarm.needs_fresh_interpreter({"PYTHONPATH": "/x", "HOME": "/h"}) == ["PYTHONPATH"]
    assert prewarm.needs_fresh_interpreter({"JUPYTERHUB_USER": "a", "LANG": "C"}) == []


async def test_a_spawn_waits_for_a_starting_launcher_and_restarts_it_when_packages_change(launchers):
    launcher, site = launchers()
    await launcher.open()
    await launcher.ensure_ready(10)
    first = launcher.launcher_pid()
    assert first
    await launcher.ensure_ready(10)
    assert launcher.launcher_pid() == first  # nothing changed: the same launcher
    (site / "newpkg-1.0.dist-info").mkdir()
    await launcher.ensure_ready(10)
    assert launcher.launcher_pid() not in (None, first)


async def test_a_dead_launcher_means_fresh_spawns_until_it_is_back(launchers):
    launcher, _ = launchers()
    launcher.restart_delay = 2.0
    await launcher.open()
    await launcher.ensure_ready(10)
    old = launcher.launcher_pid()
    os.kill(old, 9)
    await until(lambda: launcher.ready.done() and not launcher.ready.result())
    with pytest.raises(LauncherUnavailable, match="exited"):
        await launcher.ensure_ready(10)
    await until(lambda: launcher.launcher_pid() not in (None, old))  # restarted after restart_delay
    await launcher.ensure_ready(10)


async def test_a_launcher_that_cannot_start_is_reported(launchers):
    launcher, _ = launchers("#!/bin/sh\necho 'ImportError: no jupyterhub' >&2\nexit 1\n")
    await launcher.open()
    with pytest.raises(LauncherUnavailable, match="did not start"):
        await launcher.ensure_ready(10)
    assert "no jupyterhub" in open(launcher.log_path).read()


@pytest.mark.parametrize("change, message", [
    ({"uid": "1000"}, "uid"),
    ({"argv": []}, "argv"),
    ({"env": {"A": 1}}, "env"),
    ({"groups": ["wheel"]}, "groups"),
    ({"no_new_privs": None}, "no_new_privs"),
    ({"hold": "yes"}, "hold"),
    ({"host_mounts": 1}, "host_mounts"),
    ({"journal": ["x"]}, "journal"),
])
def test_the_launcher_refuses_malformed_requests(change, message):
    request = {"uid": 1000, "gid": 1000, "groups": [1000], "home": "/home/a", "cwd": "/home/a", "env": {},
               "argv": ["/env/bin/jupyterhub-singleuser"], "log_path": "/var/log/a.log", "no_new_privs": True,
               "private_tmp": True}
    launcher_program.validate(request)
    with pytest.raises(ValueError, match=message):
        launcher_program.validate({**request, **change})


def test_the_launcher_never_runs_a_server_as_root():
    with pytest.raises(PermissionError, match="root"):
        launcher_program.become_user(0, 1000, [1000], True)
    with pytest.raises(PermissionError, match="root"):
        launcher_program.become_user(1000, 0, [0], True)


async def test_a_launcher_that_started_before_an_install_is_replaced_before_use(launchers):
    launcher, site = launchers("#!/bin/sh\nsleep 0.5\necho READY '{}'\nexec sleep 600\n")
    await launcher.open()
    await until(lambda: launcher.proc is not None)
    first = launcher.proc.pid
    (site / "newpkg-1.0.dist-info").mkdir()  # while it is still importing
    await launcher.ensure_ready(20)
    assert launcher.launcher_pid() not in (None, first)


def test_a_held_child_runs_only_on_go():
    for said, runs in ((b"go\n", True), (b"", False), (b"nope\n", False)):
        daemon, child = socket.socketpair()
        with daemon, child:
            daemon.sendall(said)
            daemon.shutdown(socket.SHUT_WR)
            if runs:
                launcher_program.wait_for_go(child)
            else:
                with pytest.raises(RuntimeError, match="withdrew"):
                    launcher_program.wait_for_go(child)


def test_a_prewarmed_server_scope_has_the_slice_and_limits():
    spawner = SystemdSpawner("/nonexistent", stop_timeout=20)
    request = SpawnRequest(user="zoë", username="jupyter-zo", uid=1000, gid=1000, home="/home/jupyter-zo",
                           admin=False, cmd=["/env/bin/jupyterhub-singleuser"], env={}, log_path="/x.log",
                           limits={"memory": "1.5G", "cpu": 0.5})
    props = dict(spawner.scope_properties(request))
    assert props["Slice"] == ("s", "tljh-users.slice")
    assert props["MemoryMax"] == ("t", 3 * 2**29)
    assert props["CPUQuotaPerSecUSec"] == ("t", 500_000)
    assert props["TimeoutStopUSec"] == ("t", 20_000_000)
    assert "OOMPolicy" not in props, "scopes know OOMPolicy only since systemd 253"
    spawner._systemd_version = 253
    assert dict(spawner.scope_properties(request))["OOMPolicy"] == ("s", "continue")
    assert unit_name("zoë", "scope") == "jupyter-zo\\xc3\\xab.scope"


def test_only_the_environments_jupyterhub_singleuser_is_forked(tmp_path):
    fake_env(tmp_path, READY)
    singleuser = tmp_path / "bin" / "jupyterhub-singleuser"
    singleuser.write_text("#!/bin/sh\n")
    other = tmp_path / "bin" / "wrapper"
    other.write_text("#!/bin/sh\n")
    launcher = Launcher(str(tmp_path), str(tmp_path), str(tmp_path / "launcher.log"))
    assert launcher.runs([str(singleuser), "--debug"])
    assert not launcher.runs([str(other)])
    assert not launcher.runs(["/nonexistent/jupyterhub-singleuser"])
    assert not launcher.is_ready()  # not started


def test_a_server_gets_a_session_keyring_of_its_own():
    """(Not testable in the booted containers: systemd-nspawn filters keyctl.)"""
    script = ("import ctypes, sys; sys.path.insert(0, sys.argv[1]); import launcher\n"
              "number = launcher.SYS_KEYCTL[__import__('os').uname().machine]\n"
              "ring = lambda: ctypes.CDLL(None).syscall(number, 0, -3, 0)\n"
              "before = ring(); launcher.own_session_keyring(); print(before, ring())")
    out = subprocess.run([sys.executable, "-c", script, os.path.dirname(prewarm.LAUNCHER_SOURCE)],
                         capture_output=True, text=True, check=True).stdout.split()
    before, after = map(int, out)
    assert before > 0 and after > 0 and after != before
