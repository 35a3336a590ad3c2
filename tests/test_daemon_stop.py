"""`tljh-daemon stop` as an admin runs it (process mode): it signals only this install's own
daemon, cleans up its pid file, and stops every user server at once within stop_timeout."""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = needs_root
STOP_TIMEOUT = 4


def pidfile(hub):
    return os.path.join(hub.prefix, "state", "daemon.pid")


def traefik_pid(hub):
    with open(os.path.join(hub.prefix, "state", "traefik", "traefik.pid")) as f:
        return json.load(f)["pid"]


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop(hub):
    return subprocess.run(hub.command("stop"), capture_output=True, text=True, timeout=120)


@pytest.fixture
def stranger():
    """A real process that is none of the hub's business."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield proc
    proc.kill()
    proc.wait()


def test_clean_stop_removes_the_pid_file(make_hub):
    hub = make_hub({"auth": {"type": "dummy"}})
    with open(pidfile(hub)) as f:
        recorded = json.load(f)
    assert recorded["pid"] == hub.proc.pid
    assert recorded["create_time"] == pytest.approx(psutil.Process(hub.proc.pid).create_time(), abs=0.01)
    traefik = traefik_pid(hub)
    result = stop(hub)
    assert result.returncode == 0, result.stderr
    assert f"Stopped tljh-daemon (pid {hub.proc.pid})" in result.stdout
    assert hub.proc.wait(10) == 0
    assert not os.path.exists(pidfile(hub))
    assert not alive(traefik)
    again = stop(hub)  # nothing left to stop: says so, signals nobody
    assert again.returncode == 0 and "tljh-daemon was not running" in again.stdout, again.stdout


@pytest.mark.parametrize("recorded_as", ["recycled pid", "bare pid (older daemon)"])
def test_stale_pid_file_naming_a_stranger_leaves_it_alone(make_hub, stranger, recorded_as):
    hub = make_hub({"auth": {"type": "dummy"}})
    with open(pidfile(hub)) as f:
        daemon = json.load(f)
    traefik = traefik_pid(hub)
    hub.kill()  # SIGKILL: the daemon could not remove its pid file
    assert os.path.exists(pidfile(hub))
    # The kernel has given the daemon's pid to another program.
    with open(pidfile(hub), "w") as f:
        if recorded_as == "recycled pid":
            json.dump({"pid": stranger.pid, "create_time": daemon["create_time"]}, f)
        else:
            f.write(str(stranger.pid))
    result = stop(hub)
    assert result.returncode == 0, result.stderr
    assert alive(stranger.pid) and stranger.poll() is None
    assert f"Not signalling: pid {stranger.pid}" in result.stdout, result.stdout
    assert "stale" in result.stdout and "removed it" in result.stdout, result.stdout
    assert "Stopped tljh-daemon" not in result.stdout
    assert not os.path.exists(pidfile(hub))
    assert not alive(traefik), "the rest of the install is still stopped"


@pytest.fixture(scope="module")
def names(run_id, unix_accounts):
    names = [f"{run_id}-stop{i}" for i in range(4)]
    unix_accounts.extend(f"jupyter-{n}" for n in names)
    return names


def server_pids(names):
    """{hub user: pids of the processes running as that user's account} (its server, kernels)."""
    found = {}
    for proc in psutil.process_iter(["username", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        for name in names:
            if proc.info["username"] == f"jupyter-{name}":
                found.setdefault(name, []).append(proc.pid)
    return found


def test_stop_stops_every_server_at_once(make_hub, user_env, names):
    hub = make_hub({
        "auth": {"type": "dummy"},
        "user_environment": {"path": user_env},
        "spawner": {"stop_timeout": STOP_TIMEOUT},
    })

    def spawn(name):
        client = HubClient(hub.url)
        assert client.login(name, "any").status_code == 302
        return client.spawn(name)[-1]

    with ThreadPoolExecutor(len(names)) as pool:
        assert all(event["ready"] for event in pool.map(spawn, names))
    pids = server_pids(names)
    assert sorted(pids) == sorted(names)

    gone_at = {}

    def watch(name, pids):
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    time.sleep(0.05)
            except psutil.NoSuchProcess:
                pass
        gone_at[name] = time.monotonic()

    watchers = [threading.Thread(target=watch, args=item) for item in pids.items()]
    for t in watchers:
        t.start()
    started = time.monotonic()
    result = stop(hub)
    elapsed = time.monotonic() - started
    for t in watchers:
        t.join(60)
    assert result.returncode == 0, result.stderr
    for name in names:
        assert f"Stopped the server of {name}" in result.stdout
    assert server_pids(names) == {}
    spread = max(gone_at.values()) - min(gone_at.values())
    print(f"\n{len(names)} servers: `tljh-daemon stop` took {elapsed:.1f}s; "
          f"the servers ended within {spread:.1f}s of each other")
    # One after another, each real server takes ~2.6 s to exit: they would end >= 7 s apart.
    # At once, they all have SIGTERM together and SIGKILL after stop_timeout.
    assert spread < STOP_TIMEOUT + 1

    home = HubClient(hub.url)  # and the hub starts again with them stopped
    hub.start()
    assert home.login(names[0], "any").status_code == 302
    assert "Start my server" in home.get(home.url("/hub/home")).text
