"""spawner.prewarm (process mode): servers forked by the pre-warm launcher, end to end through Traefik.

One hub serves the module; the tests run in order: a pre-warmed server runs exactly as the user,
servers outlive the launcher, a dead launcher means a fresh spawn, a package installed afterwards
reaches the next server, and `spawner.prewarm: false` turns it off.
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

import psutil
import pytest

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = needs_root
PASSWORD = "prewarm-password"


def wait_for(condition, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(message)


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
        return db.execute("SELECT pid FROM servers WHERE user=?", (name,)).fetchone()[0]
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
    if not any(ck.name == "_xsrf" and ck.path.startswith(f"/user/{name}/") for ck in c.cookies):
        lab = c.get(c.url(f"/user/{name}/lab"))  # the OAuth round trip gives the server's cookies
        assert lab.status_code == 200 and "JupyterLab" in lab.text
    kernel = c.start_kernel(name)
    return c.execute(name, kernel, code)


def test_prewarmed_server_runs_exactly_as_the_user(hub, alice, bob, names):
    wait_for(lambda: launcher(hub), 60, "no launcher started")
    name = names["alice"]
    marker = f"/tmp/tljh-prewarm-host-{name}"
    with open(marker, "w"):
        pass
    try:
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
        # Its own /tmp: the host's files are not there, its files do not reach the host.
        tmp = ast.literal_eval(run(alice, name, f"import os; open('/tmp/mine-{name}', 'w').close();"
                                                f" (os.path.exists({marker!r}), sorted(os.listdir('/tmp')))"))
        assert tmp[0] is False and f"mine-{name}" in tmp[1] and os.path.basename(marker) not in tmp[1]
        assert not os.path.exists(f"/tmp/mine-{name}")
        status = run(alice, name, "[l for l in open('/proc/self/status').read().splitlines() if 'NoNewPrivs' in l][0]")
        assert ast.literal_eval(status).split() == ["NoNewPrivs:", "1"]
        # No descriptor of the launcher or the daemon leaked into the server (only the user's log).
        own_log = os.path.join(hub.prefix, "state", "logs", f"{account.pw_name}.log")
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            assert hub.prefix not in target or target == own_log, (fd, target)
        leaked = run(alice, name, "import os\ndef links():\n out = []\n for fd in os.listdir('/proc/self/fd'):\n"
                                  "  try: out.append(os.readlink('/proc/self/fd/' + fd))\n  except OSError: pass\n"
                                  " return out\nlinks()")
        assert [t for t in ast.literal_eval(leaked) if hub.prefix in t and t != own_log] == []
        # Not another user's files, not the hub's.
        bob_home = pwd.getpwnam(f"jupyter-{names['bob']}").pw_dir
        denied = run(alice, name, f"import os\ndef denied(p):\n try: os.listdir(p)\n except PermissionError: return True\n"
                                  f" return False\n(denied({bob_home!r}), denied({hub.prefix + '/state'!r}))")
        assert denied == "(True, True)"
    finally:
        os.unlink(marker)


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
    fallbacks = [line for line in hub.log().splitlines() if "starting" in line and "server fresh" in line]
    assert len(fallbacks) == 1 and "Pre-warm launcher unavailable" in fallbacks[0], fallbacks
    # The supervisor brings the launcher back for later spawns.
    wait_for(lambda: launcher(hub), 90, "the launcher was not restarted")


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


def test_prewarm_false_starts_servers_fresh(hub, alice, names):
    name = names["alice"]
    assert alice.stop(name).status_code == 302
    hub.update_config(spawner={"prewarm": False})
    hub.kill(signal.SIGTERM)
    hub.start()
    assert launcher(hub) is None
    assert alice.spawn(name)[-1]["ready"] is True
    assert not is_prewarmed(server_pid(hub, name))
    assert run(alice, name, "6*7") == "42"
