"""Hardening, end to end (issue 18): each case an outside attempt to break a fresh install
found, replayed through the real interfaces (the CLI as a subprocess, the real daemon over
HTTP on loopback). The many small in-process checks are in tests/fast/test_fast_security.py."""

import grp
import json
import os
import pwd
import subprocess
import sys

import psutil
import pytest

from hubclient import HubClient
from hubprocess import needs_root
from tljh_daemon import install_marker
from tljh_daemon.accounts import USERS_GROUP, made_by
from waiting import wait_for

pytestmark = needs_root


def daemon_cli(*args, prefix):
    return subprocess.run([sys.executable, "-m", "tljh_daemon", *args, "--prefix", str(prefix)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture
def decoy(tmp_path):
    """A directory with something precious in it, and nothing of ours."""
    path = tmp_path / "decoy"
    path.mkdir()
    (path / "thesis.txt").write_text("years of work")
    return path


def assert_untouched(path):
    assert (path / "thesis.txt").read_text() == "years of work"


def test_uninstall_refuses_a_directory_without_an_install(decoy):
    result = daemon_cli("uninstall", "--yes", prefix=decoy)
    assert result.returncode != 0
    assert "does not hold an install" in result.stderr, result.stderr
    assert "removed:" not in result.stdout, result.stdout
    assert_untouched(decoy)


def test_stop_refuses_a_directory_without_an_install_and_claims_nothing(decoy):
    result = daemon_cli("stop", prefix=decoy)
    assert result.returncode != 0
    assert "Stopped" not in result.stdout, result.stdout
    assert "does not hold an install" in result.stderr, result.stderr
    assert_untouched(decoy)


def test_uninstall_refuses_a_marker_someone_else_could_have_written(decoy):
    """The marker counts only when root owns it, nobody else may write it and it names this
    directory: a copied, a user-owned or a world-writable one is refused."""
    marker = decoy / install_marker.FILENAME
    cases = {
        "written for": lambda: install_marker.write(decoy.parent),  # then copied in
        "owned by uid": lambda: os.chown(marker, pwd.getpwnam("nobody").pw_uid, -1),
        "writable by others": lambda: os.chmod(marker, 0o666),
    }
    for expected, spoil in cases.items():
        install_marker.write(decoy)
        spoil()
        if expected == "written for":
            os.replace(decoy.parent / install_marker.FILENAME, marker)
        result = daemon_cli("uninstall", "--yes", prefix=decoy)
        assert result.returncode != 0, (expected, result.stdout)
        assert expected in result.stderr, (expected, result.stderr)
        assert_untouched(decoy)


def test_uninstall_refuses_system_and_home_directories_even_with_a_marker(tmp_path):
    """A directory holding someone's home is refused outright (as `/`, `/usr` and homes are:
    those are never tried here, the old code would have deleted them)."""
    homes = tmp_path / "homes"
    homes.mkdir()
    name = f"tljhsec{os.getpid() % 100000}"
    subprocess.run(["useradd", "--home-dir", str(homes / name), "--create-home", name], check=True)
    try:
        install_marker.write(homes)
        result = daemon_cli("uninstall", "--yes", prefix=homes)
        assert result.returncode != 0
        assert f"holding the home of {name}" in result.stderr, result.stderr
        assert (homes / name).is_dir()
        result = daemon_cli("uninstall", "--yes", prefix=homes / name)
        assert result.returncode != 0 and f"the home directory of {name}" in result.stderr, result.stderr
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
    for path in ("/", "/usr", "/home", "/root"):
        assert install_marker.refusal(path), path


def test_uninstall_without_a_terminal_asks_for_yes(decoy):
    install_marker.write(decoy)
    result = daemon_cli("uninstall", prefix=decoy)
    assert result.returncode != 0
    assert "add --yes" in result.stderr, result.stderr
    assert "Aborted" not in result.stderr + result.stdout
    assert_untouched(decoy)


def useradd(name, comment=None, groups=()):
    cmd = ["useradd", "--create-home", *(["--comment", comment] if comment else []),
           *(["--groups", ",".join(groups)] if groups else []), name]
    subprocess.run(cmd, check=True, capture_output=True)
    return pwd.getpwnam(name)


def test_uninstall_of_a_running_hub_reports_what_it_stopped_and_finds_every_account(make_hub, run_id, tmp_path):
    """A real daemon with Traefik: uninstall --remove-users stops both (and says so), removes the
    prefix, and removes the accounts the install made even when its database no longer lists
    them (made before a reinstall); another install's jupyter- account stays."""
    hub = make_hub({"auth": {"type": "dummy"},
                    "shared_folders": {"course": {"path": str(tmp_path / "course"), "group": f"{run_id}-readers"}}})
    traefik = [p for p in psutil.process_iter(["cmdline"]) if hub.prefix in " ".join(p.info["cmdline"] or [])
               and "traefik" in " ".join(p.info["cmdline"] or [])]
    assert traefik, "Traefik runs"
    ours = useradd(f"jupyter-{run_id}-old", comment=made_by(hub.prefix), groups=[USERS_GROUP])
    theirs = useradd(f"jupyter-{run_id}-other", comment=made_by("/somewhere/else"), groups=[USERS_GROUP])
    try:
        assert HubClient(hub.url).login(f"{run_id}-new", "x").status_code == 302
        result = daemon_cli("uninstall", "--yes", "--remove-users", prefix=hub.prefix)
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert f"stopped: tljh-daemon (pid {hub.proc.pid})" in out, out
        assert "stopped: Traefik" in out, out
        assert f"removed: {hub.prefix} (" in out
        assert f"removed: Unix account {ours.pw_name} and its home {ours.pw_dir} (made by this install" in out
        assert not [line for line in out.splitlines() if line.startswith("removed:") and theirs.pw_name in line]
        assert f"kept:    group {run_id}-readers (named by a shared folder" in out, out
        assert not os.path.exists(hub.prefix) and not os.path.exists(ours.pw_dir)
        with pytest.raises(KeyError):
            pwd.getpwnam(ours.pw_name)
        assert pwd.getpwnam(theirs.pw_name) and os.path.isdir(theirs.pw_dir)
        wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in traefik),
                 "Traefik to be gone", timeout=30)
        assert hub.proc.wait(30) is not None
    finally:
        for name in (ours.pw_name, theirs.pw_name):
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        subprocess.run(["groupdel", f"{run_id}-readers"], capture_output=True)
        assert grp.getgrnam(USERS_GROUP)


def tljh_config(prefix, *args):
    return subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", str(prefix), *args],
                          capture_output=True, text=True, timeout=120)


def test_a_bad_admin_name_is_refused_and_never_takes_the_hub_down(make_hub):
    """add-item refuses it; written by hand, `reload` refuses it while the hub keeps serving;
    a daemon (re)started on that file still comes up, without the bad name."""
    hub = make_hub({"auth": {"type": "dummy"}, "users": {"admin": ["teacher"]}})
    before = open(hub.config_file).read()
    for bad in ("..", "a b"):
        result = tljh_config(hub.prefix, "add-item", "users.admin", bad)
        assert result.returncode == 1, result.stdout
        assert "config key 'users.admin'" in result.stderr and "not a valid user name" in result.stderr
        assert "Traceback" not in result.stderr
    assert open(hub.config_file).read() == before

    hub.update_config(users={"admin": ["teacher", ".."]})  # edited by hand
    result = tljh_config(hub.prefix, "reload")
    assert result.returncode == 1 and "config key 'users.admin'" in result.stderr, result.stderr
    assert "the running hub is unchanged" in result.stderr
    assert hub.proc.poll() is None
    assert HubClient(hub.url).get(hub.url + "/hub/health").status_code == 200

    hub.kill()  # a reboot, or a restart by systemd
    hub.start()
    wait_for(lambda: "Ignoring config key users.admin" in hub.log(), "the daemon to log the ignored name")
    client = HubClient(hub.url)
    assert client.login("teacher", "x").status_code == 302
    assert client.get(hub.url + "/hub/api/user").json()["admin"] is True


@pytest.fixture(scope="module")
def gzip_bomb():
    """1 GiB of zeros, gzip-compressed: about 1 MiB on the wire."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    body = b"".join(packer.compress(zeros) for _ in range(1024)) + packer.flush()
    assert len(body) < 2 << 20
    return body


def test_a_gzip_bomb_is_refused_unread_and_the_hub_stays_responsive(make_hub, gzip_bomb):
    """Two senders post the bomb to /hub/login (unauthenticated) through Traefik for 8 s;
    meanwhile every /hub/health answers within 1 s."""
    import statistics
    import threading
    import time

    import requests

    hub = make_hub({"auth": {"type": "dummy"}})
    stop = threading.Event()
    statuses = []

    def send():
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.post(hub.url + "/hub/login", data=gzip_bomb, timeout=30,
                               headers={"Content-Encoding": "gzip",
                                        "Content-Type": "application/x-www-form-urlencoded"})
                    statuses.append(r.status_code)
                except requests.RequestException as e:
                    statuses.append(type(e).__name__)

    senders = [threading.Thread(target=send) for _ in range(2)]
    for t in senders:
        t.start()
    latencies = []
    try:
        wait_for(lambda: statuses, "the first bomb to be answered", timeout=30)
        end = time.monotonic() + 8
        with requests.Session() as s:
            while time.monotonic() < end:
                started = time.monotonic()
                assert s.get(hub.url + "/hub/health", timeout=30).status_code == 200
                latencies.append(time.monotonic() - started)
                stop.wait(0.1)
    finally:
        stop.set()
        for t in senders:
            t.join(60)
    print(f"\n/hub/health under a gzip bomb from 2 senders ({len(statuses)} bombs sent): "
          f"n={len(latencies)} median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")
    assert len(latencies) > 20 and max(latencies) < 1.0, sorted(latencies)[-5:]
    assert set(statuses) == {415}, statuses[:10]
    assert hub.proc.poll() is None


def test_parallel_password_guesses_are_no_faster_than_serial_ones(make_hub, run_id):
    """21 guesses at once for one name through Traefik: they are checked one at a time, each
    after its delay (0, 0, 1, 2, 4, 8 s ...), and those beyond the queue are refused unchecked."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    hub = make_hub({"auth": {"type": "firstuse"}})
    name = f"{run_id}-guessed"
    assert HubClient(hub.url).login(name, "the-password").status_code == 302
    started = time.monotonic()

    def guess(_):
        response = HubClient(hub.url).login(name, f"guess-{_}")
        return time.monotonic() - started, response.status_code, response.text

    with ThreadPoolExecutor(21) as pool:
        answers = sorted(pool.map(guess, range(21)))
    checked = [t for t, status, text in answers if "Invalid username or password" in text]
    refused = [t for t, status, text in answers if "Too many login attempts at once" in text]
    print(f"\n21 parallel guesses: {len(checked)} checked, answered at "
          f"{', '.join(f'{t:.1f}' for t in checked)} s; {len(refused)} refused unchecked")
    assert len(checked) + len(refused) == 21 and all(status == 403 for _, status, _ in answers)
    assert 3 <= len(checked) <= 6
    # serial guesses: the k-th checked one (k >= 3) waited 1 + 2 + ... + 2**(k-3) s in all
    assert checked[-1] >= 2 ** (len(checked) - 2) - 1 - 0.5, checked


def test_workshop_accounts_are_capped(make_hub):
    """Anonymous visits to /hub/tmplogin through Traefik: max_users of them get a user, the
    rest a clear page; one address beyond its rate is told to wait."""
    import requests

    hub = make_hub({"auth": {"type": "tmp", "TmpAuthenticator": {"max_users": 5, "rate_per_client": "7/minute"}},
                    "services": {"cull": {"enabled": False}}})
    answers = [requests.get(hub.url + "/hub/tmplogin", allow_redirects=False, timeout=30) for _ in range(8)]
    assert [r.status_code for r in answers] == [302] * 5 + [503] * 2 + [429]
    assert "This workshop is full: all 5 places are taken" in answers[5].text
    assert answers[5].headers["Retry-After"] == "60"
    assert "Too many new workshop accounts from your network" in answers[7].text


def _server_process(hub, name):
    """(pid, supplementary gids, NoNewPrivs) of `name`'s running server, from the hub's state."""
    import sqlite3

    db = sqlite3.connect(os.path.join(hub.prefix, "state", "tljh.sqlite"))
    try:
        row = db.execute("SELECT json_extract(spawner_state, '$.pid'), state FROM servers WHERE user=?",
                         (name,)).fetchone()
    finally:
        db.close()
    if not row or row[1] != "running" or not row[0]:
        return None
    with open(f"/proc/{row[0]}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return row[0], {int(g) for g in fields["Groups"].split()}, fields["NoNewPrivs"].strip()


def test_a_demoted_admin_loses_sudo_in_the_running_server(make_hub, user_env, run_id, unix_accounts):
    """REST demotion, then `tljh-config remove-item users.admin` + reload: each time the real
    server is restarted, and its new process has neither the admins group nor NoNewPrivs=0."""
    from test_admin_rights import admin_api

    from tljh_daemon.accounts import ADMINS_GROUP

    boss, dave = f"{run_id}-chief", f"{run_id}-dora"
    unix_accounts.extend([f"jupyter-{dave}", f"jupyter-{boss}"])
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [boss, dave]}, "user_environment": {"path": user_env}})
    api = admin_api(hub, boss)
    assert api.post(f"{hub.url}/hub/api/users/{dave}", json={"admin": True}).status_code == 201

    def running_server():
        assert api.post(f"{hub.url}/hub/api/users/{dave}/server").status_code in (201, 202)
        return wait_for(lambda: api.get(f"{hub.url}/hub/api/users/{dave}").json()["servers"].get("", {})
                        .get("ready") and _server_process(hub, dave), f"{dave}'s server", timeout=180)

    pid, groups, no_new_privs = running_server()
    admins_gid = grp.getgrnam(ADMINS_GROUP).gr_gid
    assert admins_gid in groups and no_new_privs == "0", "an admin's server has sudo"

    # 1. users.admin removed, then reload: the hub restarts and so does the server
    result = tljh_config(hub.prefix, "remove-item", "users.admin", dave)
    assert result.returncode == 0 and "restarted without admin rights" in result.stdout, result.stdout
    hub.kill()
    hub.start()
    new = wait_for(lambda: (_server_process(hub, dave) or (pid,))[0] != pid and _server_process(hub, dave),
                   "the server to be restarted after the reload", timeout=180)
    assert admins_gid not in new[1] and new[2] == "1", new
    assert "still holds the group jupyterhub-admins" in hub.log()

    # 2. promoted again (the server is restarted by hand), then demoted through the REST API
    api = admin_api(hub, boss)
    assert api.patch(f"{hub.url}/hub/api/users/{dave}", json={"admin": True}).json()["admin"] is True
    assert api.delete(f"{hub.url}/hub/api/users/{dave}/server").status_code in (202, 204)
    wait_for(lambda: not _server_process(hub, dave) and
             not api.get(f"{hub.url}/hub/api/users/{dave}").json()["servers"], "the server to stop")
    pid, groups, _ = running_server()
    assert admins_gid in groups
    r = api.patch(f"{hub.url}/hub/api/users/{dave}", json={"admin": False})
    assert r.status_code == 200
    assert r.json()["server_note"] == f"{dave}'s running server was restarted without admin rights (sudo)."
    new = wait_for(lambda: (_server_process(hub, dave) or (pid,))[0] != pid and _server_process(hub, dave),
                   "the server to be restarted after the demotion", timeout=180)
    assert admins_gid not in new[1] and new[2] == "1", new


def test_stop_says_only_what_it_really_stopped(make_hub, run_id):
    """A server whose process had already exited is reported as such, not as stopped; with the
    daemon and Traefik gone too, nothing is claimed as stopped."""
    import sqlite3
    import time

    hub = make_hub({"auth": {"type": "dummy"}})
    name = f"{run_id}-gone"
    assert HubClient(hub.url).login(name, "x").status_code == 302
    assert daemon_cli("stop", prefix=hub.prefix).returncode == 0  # daemon and Traefik stopped
    exited = subprocess.Popen(["true"])
    exited.wait()
    db = sqlite3.connect(os.path.join(hub.prefix, "state", "tljh.sqlite"))
    with db:
        db.execute("INSERT INTO servers (user, name, state, spawner_state) VALUES (?, '', 'running', ?)",
                   (name, json.dumps({"pid": exited.pid, "create_time": time.time() - 5})))
    db.close()
    result = daemon_cli("stop", prefix=hub.prefix)
    assert result.returncode == 0, result.stderr
    assert "Stopped" not in result.stdout, result.stdout
    assert f"The server of {name} had already exited" in result.stdout
    assert "tljh-daemon was not running" in result.stdout and "Traefik was not running" in result.stdout
