"""User names through the real interfaces: a non-ASCII name logs in, spawns and is reached
through Traefik, its server running as a safe ASCII account; '.' and '..' are refused."""

import pwd
import subprocess
import sys
from urllib.parse import quote

import requests

from hubclient import HubClient
from hubprocess import needs_root
from tljh_daemon.users import system_username

pytestmark = needs_root


def test_non_ascii_name_runs_as_an_ascii_account_and_dots_are_refused(make_hub, user_env, run_id,
                                                                       unix_accounts):
    name, admin = f"zoë-{run_id}", f"{run_id}-namesadm"
    account = system_username(name)
    unix_accounts.append(account)
    assert account.isascii() and len(account) == 30
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [admin]}, "user_environment": {"path": user_env}})
    client = HubClient(hub.url)
    assert client.login(f"Zoë-{run_id}", "pw").status_code == 302  # the hub name is lowercased, kept as typed
    assert client.spawn(quote(name))[-1]["ready"] is True
    lab = client.get(client.url(f"/user/{quote(name)}/lab"))
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    kernel = client.start_kernel(quote(name))
    assert client.execute(quote(name), kernel, "import os; os.getuid()") == str(pwd.getpwnam(account).pw_uid)
    assert client.execute(quote(name), kernel, "os.environ['JUPYTERHUB_USER']") == repr(name)

    boss = HubClient(hub.url)
    assert boss.login(admin, "pw").status_code == 302
    xsrf = next(c.value for c in boss.cookies if c.name == "_xsrf")
    token = boss.post(boss.url(f"/hub/api/users/{admin}/tokens"), json={},
                      headers={"X-XSRFToken": xsrf}).json()["token"]
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    assert api.get(f"{hub.url}/hub/api/users/{quote(name)}").json()["name"] == name
    for bad in (".", "..", "．．"):
        r = api.post(f"{hub.url}/hub/api/users", json={"usernames": [bad]})
        assert r.status_code == 400 and "cannot be a user name" in r.json()["message"], r.text
        assert HubClient(hub.url).login(bad, "pw").status_code == 403
    assert api.delete(f"{hub.url}/hub/api/users/{quote(name)}").status_code == 204
    assert api.get(f"{hub.url}/hub/api/users/{quote(name)}").status_code == 404


def test_an_e_mail_style_name_gets_a_working_server(make_hub, user_env, run_id, unix_accounts):
    """`ann@example.org` (e-mail claims, Google, AD user principal names): jupyterhub-singleuser
    names its cookies after the OAuth client id, so that id is %-quoted as JupyterHub makes it
    (a cookie name cannot hold `@`); the server's URL keeps the `@`."""
    name = f"ann-{run_id}@example.org"
    unix_accounts.append(system_username(name))
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": user_env}})
    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    assert client.spawn(name)[-1]["ready"] is True
    lab = client.get(client.url(f"/user/{name}/lab"))  # the OAuth round trip: the server sets its cookies
    assert lab.status_code == 200 and "JupyterLab" in lab.text, (lab.status_code, lab.text[-1000:])
    assert any(c.name == f"jupyterhub-user-{quote(name)}" for c in client.cookies), [c.name for c in client.cookies]
    tree = client.get(client.url(f"/user/{name}/api/contents"))
    assert tree.status_code == 200, tree.text[-500:]
    kernel = client.start_kernel(name)
    assert client.execute(name, kernel, "import os; os.environ['JUPYTERHUB_CLIENT_ID']") == repr(
        f"jupyterhub-user-{quote(name)}")
    assert client.execute(name, kernel, "os.environ['JUPYTERHUB_USER']") == repr(name)
    # The documented logs command finds the server's output (process mode: its account's log file).
    logs = subprocess.run([sys.executable, "-m", "tljh_daemon", "logs", name, "--prefix", hub.prefix],
                          capture_output=True, text=True, timeout=60)
    assert logs.returncode == 0 and "Jupyter Server" in logs.stdout, logs.stdout[-1000:] + logs.stderr
