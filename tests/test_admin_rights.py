"""Admin rights and the Unix group that grants sudo stay in step: demoting an admin (REST API,
admin panel, users.admin in config) takes their account out of the group, and start-up fixes
any drift."""

import grp
import subprocess
import time

import requests

from hubclient import HubClient
from hubprocess import needs_root
from tljh_daemon.accounts import ADMINS_GROUP

pytestmark = needs_root


def in_admins_group(account):
    try:
        return account in grp.getgrnam(ADMINS_GROUP).gr_mem
    except KeyError:
        return False


def admin_api(hub, name):
    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    token = client.post(client.url(f"/hub/api/users/{name}/tokens"), json={},
                        headers={"X-XSRFToken": xsrf}).json()["token"]
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    return session


def test_demoted_admin_loses_the_sudo_group(make_hub, user_env, run_id, unix_accounts):
    boss, dave = f"{run_id}-boss", f"{run_id}-dave"
    account = f"jupyter-{dave}"
    unix_accounts.extend([account, f"jupyter-{boss}"])
    config = {"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
              "users": {"admin": [boss]}, "user_environment": {"path": user_env}}
    hub = make_hub(config)
    api = admin_api(hub, boss)
    assert api.post(f"{hub.url}/hub/api/users/{dave}", json={"admin": True}).status_code == 201
    assert api.post(f"{hub.url}/hub/api/users/{dave}/server").status_code == 202  # makes the account
    deadline = time.monotonic() + 180
    while not api.get(f"{hub.url}/hub/api/users/{dave}").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, "dave's server did not start"
        time.sleep(0.5)
    assert in_admins_group(account)

    r = api.patch(f"{hub.url}/hub/api/users/{dave}", json={"admin": False})
    assert r.status_code == 200 and r.json()["admin"] is False
    assert not in_admins_group(account), "a demoted admin must lose the group that grants sudo"
    assert api.patch(f"{hub.url}/hub/api/users/{dave}", json={"admin": True}).json()["admin"] is True
    assert in_admins_group(account)

    # users.admin in config: listed -> admin; taken out of the list -> demoted at the next start.
    hub.stop_all()
    hub.update_config(users={"admin": [boss, dave]})
    hub.start()
    hub.stop_all()
    hub.update_config(users={"admin": [boss]})
    hub.start()
    api = admin_api(hub, boss)
    assert api.get(f"{hub.url}/hub/api/users/{dave}").json()["admin"] is False
    assert not in_admins_group(account)

    # Drift while the hub is down (e.g. added by hand) is undone at start-up.
    hub.stop_all()
    subprocess.run(["usermod", "--append", "--groups", ADMINS_GROUP, account], check=True)
    hub.start()
    assert not in_admins_group(account)
