"""Taking over a machine that runs The Littlest JupyterHub.

TLJH's own installer downloads Miniforge, which these machines cannot reach, so the test
builds TLJH's layout in a test prefix the way TLJH leaves it: a hub environment with real
JupyterHub from PyPI, whose own start-up writes users, admins and groups into
state/jupyterhub.sqlite; first-use passwords in state/passwords.dbm (bcrypt hashes by name,
as FirstUseAuthenticator keeps them); a TLJH config.yaml; a venv as the user environment
(a conda environment is the same to us: a prefix with bin/jupyterhub-singleuser); Unix
accounts with homes. Then bootstrap.py runs into that prefix, as an admin would run it.
"""

import dbm
import os
import pwd
import shutil
import subprocess
import tempfile

import bcrypt
import pytest
from ruamel.yaml import YAML

from hubclient import HubClient
from hubprocess import free_port, needs_root

pytestmark = needs_root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP = os.path.join(ROOT, "bootstrap.py")
SYSTEM_PYTHON = "/usr/bin/python3"
TLJH_JUPYTERHUB = "jupyterhub>=5,<6"  # what TLJH 1.x installs in its hub environment
USER_ENV = ["jupyterhub>=5,<6", "jupyterlab>=4,<5", "ipykernel"]

TLJH_CONFIG = """\
# Written by an admin with TLJH's tljh-config
auth:
  type: firstuseauthenticator.FirstUseAuthenticator
  FirstUseAuthenticator:
    create_users: false
users:
  admin:
  - {teacher}
limits:
  memory: 1G
http:
  address: 127.0.0.1
  port: {port}
services:
  cull:
    timeout: 3600
"""

JUPYTERHUB_CONFIG = """\
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.admin_users = {{"{teacher}"}}
c.Authenticator.allowed_users = {{"{ann}", "{bob}"}}
c.JupyterHub.load_groups = {{
    "{run}-class-a": {{"users": ["{ann}", "{teacher}"], "properties": {{"room": "B12"}}}},
    "{run}-class-b": {{"users": ["{bob}"]}},
}}
"""

# JupyterHub's own start-up (database, users, admins, groups), stopped before its proxy starts.
INITIALIZE = ("import asyncio, sys\nfrom jupyterhub.app import JupyterHub\n"
              "asyncio.run(JupyterHub.instance().initialize(['-f', sys.argv[1]]))\n")


def uv(*args):
    subprocess.run(["uv", *args], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def tljh(run_id, unix_accounts):
    """A TLJH install in a test prefix (never /opt/tljh: that may be ours)."""
    prefix = tempfile.mkdtemp(prefix="tljh-test-migrate-", dir="/var/tmp")
    os.chmod(prefix, 0o755)
    # Names of this file only: accounts of other test files live until the session ends.
    names = {"teacher": f"{run_id}-mig-teacher", "ann": f"{run_id}-mig-ann", "bob": f"{run_id}-mig-bob"}
    state, config_dir = os.path.join(prefix, "state"), os.path.join(prefix, "config")
    os.makedirs(state, mode=0o700)
    os.makedirs(config_dir, mode=0o700)
    try:
        hub, user = os.path.join(prefix, "hub"), os.path.join(prefix, "user")
        uv("venv", "--quiet", "--python", SYSTEM_PYTHON, hub)
        uv("pip", "install", "--quiet", "--python", os.path.join(hub, "bin", "python"), TLJH_JUPYTERHUB)
        uv("venv", "--quiet", "--seed", "--python", SYSTEM_PYTHON, user)
        uv("pip", "install", "--quiet", "--python", os.path.join(user, "bin", "python"), *USER_ENV)
        subprocess.run(["chmod", "-R", "go-w,a+rX", user], check=True)

        hub_config = os.path.join(state, "jupyterhub_config.py")
        with open(hub_config, "w") as f:
            f.write(JUPYTERHUB_CONFIG.format(state=state, run=run_id, **names))
        subprocess.run([os.path.join(hub, "bin", "python"), "-c", INITIALIZE, hub_config], cwd=state,
                       check=True, capture_output=True, timeout=300)
        passwords = {"teacher": "teacher-pass-1", "ann": "ann-pass-1"}
        with dbm.open(os.path.join(state, "passwords.dbm"), "c", 0o600) as store:
            for key, password in passwords.items():
                store[names[key]] = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        port = free_port()
        with open(os.path.join(config_dir, "config.yaml"), "w") as f:
            f.write(TLJH_CONFIG.format(port=port, teacher=names["teacher"]))

        # The Unix account TLJH made for ann when she first started a server, with her work.
        subprocess.run(["groupadd", "--force", "--system", "jupyterhub-users"], check=True)
        account = f"jupyter-{names['ann']}"
        unix_accounts.append(account)
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "jupyterhub-users",
                        account], check=True)
        home = pwd.getpwnam(account).pw_dir
        with open(os.path.join(home, "thesis.ipynb"), "w") as f:
            f.write("{}")
        unix_accounts.extend(f"jupyter-{names[k]}" for k in ("teacher", "bob"))
        singleuser = os.path.join(user, "bin", "jupyterhub-singleuser")
        yield {"prefix": prefix, "port": port, "names": names, "passwords": passwords, "home": home,
               "singleuser": singleuser, "singleuser_inode": os.stat(singleuser).st_ino}
    finally:
        daemon = os.path.join(prefix, "hub", "bin", "tljh-daemon")
        if os.path.exists(daemon):
            subprocess.run([daemon, "stop", "--prefix", prefix], capture_output=True, timeout=120)
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(tljh):
    env = {"PATH": os.environ["PATH"], "HOME": "/root"}
    result = subprocess.run([SYSTEM_PYTHON, BOOTSTRAP, "--prefix", tljh["prefix"]],
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_summary_says_what_was_taken_over(tljh, installed, run_id):
    names, prefix = tljh["names"], tljh["prefix"]
    summary = installed.split("Taken over from The Littlest JupyterHub:", 1)[1]
    assert "3 user(s): " + ", ".join(sorted(names.values())) in summary
    assert f"admins: {names['teacher']}" in summary
    assert f"group {run_id}-class-a: {names['ann']}, {names['teacher']}" in summary
    assert f"group {run_id}-class-b: {names['bob']}" in summary
    assert f"first-use passwords of: {names['ann']}, {names['teacher']}" in summary
    assert f"user environment kept as it is: {prefix}/user (jupyterhub 5." in summary
    assert "no systemd here" in summary
    assert f"{prefix}/hub-tljh" in summary
    with open(os.path.join(prefix, "state", "migrated-from-tljh.txt")) as f:
        assert names["teacher"] in f.read()


def test_config_kept(tljh, installed):
    with open(os.path.join(tljh["prefix"], "config", "config.yaml")) as f:
        text = f.read()
    assert text.startswith("# Written by an admin with TLJH's tljh-config")
    config = YAML(typ="safe").load(text)
    assert config["limits"]["memory"] == "1G" and config["services"]["cull"]["timeout"] == 3600
    assert config["auth"]["type"] == "firstuseauthenticator.FirstUseAuthenticator"
    # TLJH's hub environment is kept aside, untouched; ours took its place.
    assert os.path.exists(os.path.join(tljh["prefix"], "hub-tljh", "bin", "jupyterhub"))
    assert os.path.exists(os.path.join(tljh["prefix"], "hub", "bin", "tljh-daemon"))


def test_users_admins_groups_and_passwords_kept(tljh, installed, run_id):
    names, passwords = tljh["names"], tljh["passwords"]
    client = HubClient(f"http://127.0.0.1:{tljh['port']}")
    # The TLJH password works, and nobody can claim the name with another one (first use).
    assert client.login(names["teacher"], "someone-else-1").status_code == 403
    assert client.login(names["teacher"], passwords["teacher"]).status_code == 302
    listed = {u["name"]: u for u in client.get(client.url("/hub/api/users")).json()}
    assert {n: listed[n]["admin"] for n in names.values()} == \
        {names["teacher"]: True, names["ann"]: False, names["bob"]: False}
    run = run_id
    assert sorted(listed[names["ann"]]["groups"]) == [f"{run}-class-a"]
    assert listed[names["bob"]]["groups"] == [f"{run}-class-b"]
    group = client.get(client.url(f"/hub/api/groups/{run}-class-a")).json()
    assert group["users"] == sorted([names["ann"], names["teacher"]]) and group["properties"] == {"room": "B12"}


def test_migrated_user_spawns_with_the_kept_environment_and_home(tljh, installed):
    names = tljh["names"]
    ann = names["ann"]
    client = HubClient(f"http://127.0.0.1:{tljh['port']}")
    assert client.login(ann, "wrong-password-1").status_code == 403
    assert client.login(ann, tljh["passwords"]["ann"]).status_code == 302
    assert client.spawn(ann)[-1]["ready"] is True
    assert client.get(client.url(f"/user/{ann}/lab")).status_code == 200  # OAuth with the hub
    kernel = client.start_kernel(ann)
    assert client.execute(ann, kernel, "sorted(__import__('os').listdir())").count("thesis.ipynb") == 1
    # Her server and kernel run from the kept environment (not rebuilt), as her account.
    assert os.stat(tljh["singleuser"]).st_ino == tljh["singleuser_inode"]
    assert client.execute(ann, kernel, "__import__('sys').prefix") == repr(os.path.join(tljh["prefix"], "user"))
    assert client.execute(ann, kernel, "__import__('os').getuid()") == str(pwd.getpwnam(f"jupyter-{ann}").pw_uid)
    with open(os.path.join(tljh["home"], "thesis.ipynb")) as f:
        assert f.read() == "{}"
