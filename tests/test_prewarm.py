"""spawner.prewarm (process mode): servers forked by the pre-warm launcher, end to end through Traefik.

One hub serves the module; the tests run in order: a pre-warmed server runs exactly as the user,
servers outlive the launcher, a dead launcher means a fresh spawn, a package installed afterwards
reaches the next server, Spawner.args/default_url reach pre-warmed servers (another Spawner.cmd
starts fresh), and `spawner.prewarm: false` turns it off. Fresh servers are confined like
pre-warmed ones (private /tmp, NoNewPrivs).
"""

import ast
import base64
import hashlib
import io
import os
import pwd
import signal
import sqlite3
import subprocess
import time
import zipfile
from urllib.parse import urlsplit

import psutil
import pytest

from hubclient import HubClient
from hubprocess import needs_root
from waiting import wait_for

pytestmark = needs_root
PASSWORD = "prewarm-password"


@pytest.fixture(scope="module")
def names(run_id, unix_accounts):
    names = {role: f"{run_id}-pw{role}" for role in ("alice", "bob")}
    unix_accounts.extend(f"jupyter-{n}" for n in names.values())
    return names


@pytest.fixture(scope="module")
def hub(make_hub, user_env, names):
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
        "user_environment": {"path": user_env},
    })


def client(hub, name):
    c = HubClient(hub.url)
    assert c.login(name, PASSWORD).status_code == 302
    return c


@pytest.fixture(scope="module")
def alice(hub, names):
    return client(hub, names["alice"])


@pytest.fixture(scope="module")
def bob(hub, names):
    return client(hub, names["bob"])


def server_pid(hub, name):
    db = sqlite3.connect(os.path.join(hub.prefix, "state", "tljh.sqlite"))
    try:
        return db.execute("SELECT json_extract(spawner_state, '$.pid') FROM servers WHERE user=?", (name,)).fetchone()[0]
    finally:
        db.close()


def launcher(hub):
    """The live launcher process of this hub (a child of the daemon, unlike the servers it forks), or None."""
    sock = os.path.join(hub.prefix, "state", "launcher.sock")
    for proc in psutil.process_iter(["cmdline", "status", "ppid"]):
        if (sock in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE
                and proc.info["ppid"] == hub.proc.pid):
            return proc
    return None


def is_prewarmed(pid):
    return any(a.endswith("launcher.py") for a in psutil.Process(pid).cmdline())


def run(c, name, code):
    return c.run(name, code)


def fd_targets(pid):
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return targets


def assert_confined(c, name):
    """A kernel of `name`'s (non-admin) server has its own /tmp (the host's files are not there, its
    files do not reach the host) and NoNewPrivs, as a systemd unit with PrivateTmp= and NoNewPrivileges=."""
    marker = f"/tmp/tljh-prewarm-host-{name}"
    with open(marker, "w"):
        pass
    try:
        tmp = ast.literal_eval(c.run(name, f"import os; open('/tmp/mine-{name}', 'w').close();"
                                           f" (os.path.exists({marker!r}), sorted(os.listdir('/tmp')))"))
        assert tmp[0] is False and f"mine-{name}" in tmp[1] and os.path.basename(marker) not in tmp[1]
        assert not os.path.exists(f"/tmp/mine-{name}")
        status = c.run(name, "[l for l in open('/proc/self/status').read().splitlines() if 'NoNewPrivs' in l][0]")
        assert ast.literal_eval(status).split() == ["NoNewPrivs:", "1"]
    finally:
        os.unlink(marker)


def test_prewarmed_server_runs_exactly_as_the_user(hub, alice, bob, names):
    wait_for(lambda: launcher(hub), "the launcher to start", 60)
    name = names["alice"]
    assert bob.spawn(names["bob"])[-1]["ready"] is True
    started = time.monotonic()
    assert alice.spawn(name)[-1]["ready"] is True
    print(f"pre-warmed start -> ready: {time.monotonic() - started:.2f}s")
    pid = server_pid(hub, name)
    assert is_prewarmed(pid), psutil.Process(pid).cmdline()
    assert psutil.Process(pid).ppid() == launcher(hub).pid

    account = pwd.getpwnam(f"jupyter-{name}")
    assert run(alice, name, "6*7") == "42"
    ident = ast.literal_eval(run(alice, name, "import os; (os.getresuid(), os.getresgid(), sorted(os.getgroups()))"))
    assert ident == ((account.pw_uid,) * 3, (account.pw_gid,) * 3,
                     sorted(set(os.getgrouplist(account.pw_name, account.pw_gid))))
    seen = ast.literal_eval(run(alice, name, "import os; (os.environ['HOME'], os.getcwd(), os.environ['USER'],"
                                             " os.environ['JUPYTERHUB_USER'], os.environ['PATH'])"))
    assert seen == (account.pw_dir, account.pw_dir, account.pw_name, name,
                    f"{hub_user_env(hub)}/bin:/usr/local/bin:/usr/bin:/bin")
    assert_confined(alice, name)
    # No descriptor of the launcher or the daemon leaked into the server or its kernels: none of
    # their sockets, pipes or files (the user's own log, opened for the server, is the one file of the hub's;
    # anonymous inodes such as epoll have no identity to compare).
    own_log = os.path.join(hub.prefix, "state", "logs", f"{account.pw_name}.log")
    theirs = {t for p in (launcher(hub).pid, hub.proc.pid) for t in fd_targets(p)
              if t.startswith(("socket:", "pipe:")) or hub.prefix in t} - {own_log}
    assert theirs, "expected the launcher and the daemon to hold sockets"
    assert fd_targets(pid) & theirs == set()
    kernel_fds = run(alice, name, "import os\ndef links():\n out = []\n for fd in os.listdir('/proc/self/fd'):\n"
                                  "  try: out.append(os.readlink('/proc/self/fd/' + fd))\n  except OSError: pass\n"
                                  " return out\nlinks()")
    kernel_fds = set(ast.literal_eval(kernel_fds))
    assert any(t.startswith("socket:") for t in kernel_fds), kernel_fds  # it did list its own
    assert kernel_fds & theirs == set()
    # Not another user's files, not the hub's.
    bob_home = pwd.getpwnam(f"jupyter-{names['bob']}").pw_dir
    denied = run(alice, name, f"import os\ndef denied(p):\n try: os.listdir(p)\n except PermissionError: return True\n"
                              f" return False\n(denied({bob_home!r}), denied({hub.prefix + '/state'!r}))")
    assert denied == "(True, True)"


def test_servers_outlive_the_launcher_and_spawns_fall_back_to_fresh(hub, alice, bob, names):
    proc = launcher(hub)
    alice_pid = server_pid(hub, names["alice"])
    proc.kill()
    proc.wait(10)
    # Running servers are not the launcher's to take down.
    assert alice.get(alice.url(f"/user/{names['alice']}/api/status")).status_code == 200
    assert psutil.Process(alice_pid).is_running()

    name = names["bob"]
    assert bob.stop(name).status_code == 302
    assert bob.spawn(name)[-1]["ready"] is True
    assert not is_prewarmed(server_pid(hub, name)), "expected a fresh spawn while the launcher is down"
    assert run(bob, name, "6*7") == "42"
    assert_confined(bob, name)
    fallbacks = [line for line in hub.log().splitlines() if "starting" in line and "server fresh" in line]
    assert len(fallbacks) == 1 and "Pre-warm launcher unavailable" in fallbacks[0], fallbacks
    # The supervisor brings the launcher back for later spawns.
    wait_for(lambda: launcher(hub), "the launcher to be restarted", 90)


def hub_user_env(hub):
    from ruamel.yaml import YAML
    with open(hub.config_file) as f:
        return YAML().load(f)["user_environment"]["path"]


def probe_wheel(path, module):
    """A wheel with a Jupyter server extension that answers `<prefix>tljh-probe` with `module`."""
    version = "1.0"
    files = {
        f"{module}.py": (
            "from jupyter_server.base.handlers import JupyterHandler\n"
            "from tornado import web\n"
            "class Probe(JupyterHandler):\n"
            "    @web.authenticated\n"
            "    def get(self):\n"
            f"        self.finish({module!r})\n"
            "def _jupyter_server_extension_points():\n"
            f"    return [{{'module': {module!r}}}]\n"
            "def _load_jupyter_server_extension(app):\n"
            "    app.web_app.add_handlers('.*', [(app.base_url + 'tljh-probe', Probe)])\n"
        ),
        f"{module}-{version}.data/data/etc/jupyter/jupyter_server_config.d/{module}.json":
            f'{{"ServerApp": {{"jpserver_extensions": {{"{module}": true}}}}}}\n',
        f"{module}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n",
        f"{module}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{module}-{version}.dist-info/RECORD,,")
    files[f"{module}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = os.path.join(path, f"{module}-{version}-py3-none-any.whl")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    with open(wheel, "wb") as f:
        f.write(buf.getvalue())
    return wheel


def test_a_package_installed_afterwards_reaches_the_next_server(hub, alice, names, run_id, tmp_path):
    name, module = names["alice"], f"tljh_probe_{run_id}"
    env = hub_user_env(hub)
    old_launcher = launcher(hub).pid
    assert alice.stop(name).status_code == 302
    wheel = probe_wheel(str(tmp_path), module)
    subprocess.run(["uv", "pip", "install", "--quiet", "--offline", "--python", f"{env}/bin/python", wheel], check=True)
    try:
        assert alice.spawn(name)[-1]["ready"] is True
        assert is_prewarmed(server_pid(hub, name))
        assert launcher(hub).pid != old_launcher, "the launcher was not restarted for the new package"
        r = alice.get(alice.url(f"/user/{name}/tljh-probe"))
        assert r.status_code == 200 and r.text == module, (r.status_code, r.text[:200])
    finally:
        subprocess.run(["uv", "pip", "uninstall", "--quiet", "--python", f"{env}/bin/python", module], check=True)


def restart(hub):
    hub.kill(signal.SIGTERM)
    hub.start()


def assert_spawner_settings_applied(c, name):
    """Spawner.args (a response header) and Spawner.default_url (where the server's root redirects)."""
    status = c.get(c.url(f"/user/{name}/api/status"))
    assert status.status_code == 200 and status.headers.get("X-Tljh-Args") == "applied", status.headers
    root = c.get(c.url(f"/user/{name}/"), allow_redirects=False)
    assert root.status_code == 302 and urlsplit(root.headers["Location"]).path == f"/user/{name}/tljh-default", root.headers


def test_spawner_args_and_default_url_reach_a_prewarmed_server_and_another_cmd_starts_fresh(hub, alice, names):
    name = names["alice"]
    assert alice.stop(name).status_code == 302
    config_d = os.path.join(hub.prefix, "config", "jupyterhub_config.d")
    os.makedirs(config_d, exist_ok=True)
    with open(os.path.join(config_d, "spawner.py"), "w") as f:
        f.write("c.Spawner.args = ['--ServerApp.tornado_settings={\"headers\": {\"X-Tljh-Args\": \"applied\"}}']\n"
                "c.Spawner.default_url = '/tljh-default'\n")
    restart(hub)
    wait_for(lambda: launcher(hub), "a launcher after the restart", 60)
    assert alice.spawn(name)[-1]["ready"] is True
    assert is_prewarmed(server_pid(hub, name))
    assert_spawner_settings_applied(alice, name)

    # A Spawner.cmd other than the environment's jupyterhub-singleuser cannot be forked: fresh, with one line.
    wrapper = os.path.join(hub.prefix, "wrapped-singleuser")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexport TLJH_WRAPPED=yes\nexec {hub_user_env(hub)}/bin/jupyterhub-singleuser \"$@\"\n")
    os.chmod(wrapper, 0o755)
    with open(os.path.join(config_d, "spawner.py"), "a") as f:
        f.write(f"c.Spawner.cmd = [{wrapper!r}]\n")
    assert alice.stop(name).status_code == 302
    restart(hub)
    assert alice.spawn(name)[-1]["ready"] is True
    assert not is_prewarmed(server_pid(hub, name))
    lines = [line for line in hub.log().splitlines() if "Spawner.cmd" in line and "fresh" in line]
    assert len(lines) == 1 and wrapper in lines[0], lines
    assert alice.run(name, "import os; os.environ.get('TLJH_WRAPPED')") == "'yes'"
    assert_spawner_settings_applied(alice, name)
    assert_confined(alice, name)
    os.unlink(os.path.join(config_d, "spawner.py"))


def test_prewarm_false_starts_servers_fresh_and_confined(hub, alice, names):
    name = names["alice"]
    assert alice.stop(name).status_code == 302
    hub.update_config(spawner={"prewarm": False})
    restart(hub)
    assert launcher(hub) is None
    assert alice.spawn(name)[-1]["ready"] is True
    assert not is_prewarmed(server_pid(hub, name))
    assert run(alice, name, "6*7") == "42"
    assert_confined(alice, name)
