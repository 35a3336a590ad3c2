"""JupyterHub's REST example (examples/server-api): a service defined by a name and an
api_token, given a role with load_roles in jupyterhub_config.d, starts a user's default server
through the empty server name, follows the progress stream, talks to the server, and stops it.
The client below does what that example documents, step by step, with the same URLs."""

import json
import os

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root
from waiting import wait_for

pytestmark = needs_root

# As the example's jupyterhub_config.py: a role for the launcher service, and the service's
# token kept in a file beside the config so the client can read it.
CONFIG_D = '''
import pathlib
import secrets

c.JupyterHub.load_roles = [
    {"name": "launcher", "scopes": ["servers", "access:servers"], "services": ["launcher"]},
]
token_file = pathlib.Path(__file__).parent / "service-token"
if not token_file.exists():
    token_file.write_text(secrets.token_hex(16))
c.JupyterHub.services = [{"name": "launcher", "api_token": token_file.read_text().strip()}]
'''


def events(session, url):
    """The JSON events of a progress stream (lines starting with `data:`)."""
    with session.get(url, stream=True) as r:
        r.raise_for_status()
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                yield json.loads(line.split(":", 1)[1])


def start_server(session, hub_url, user, server_name=""):
    """The example's start: read the user; if the server is not there, POST .../servers/<name>
    (201 or 202); the server is then pending or ready; wait on its progress_url for `ready`."""
    user_url = f"{hub_url}/hub/api/users/{user}"
    r = session.get(user_url)
    r.raise_for_status()
    model = r.json()
    if server_name not in model.get("servers", {}):
        r = session.post(f"{user_url}/servers/{server_name}")
        r.raise_for_status()
        assert r.status_code in (201, 202), r.status_code
        r = session.get(user_url)
        r.raise_for_status()
        model = r.json()
    server = model["servers"][server_name]
    assert server["pending"] or server["ready"], server
    for event in events(session, f"{hub_url}{server['progress_url']}"):
        if event.get("ready"):
            return f"{hub_url}{event['url']}"
    raise AssertionError(f"{user}'s server never became ready")


def stop_server(session, hub_url, user, server_name=""):
    """The example's stop: DELETE .../servers/<name>; 204 is done, 202 means poll the user
    until the server is gone (pending all the while)."""
    user_url = f"{hub_url}/hub/api/users/{user}"
    r = session.delete(f"{user_url}/servers/{server_name}")
    if r.status_code == 404:
        return "already stopped"
    r.raise_for_status()
    if r.status_code == 204:
        return "stopped"

    def gone():
        model = session.get(user_url).json()
        if server_name not in model.get("servers", {}):
            return True
        assert model["servers"][server_name]["pending"], "no longer pending but still there"
        return False

    wait_for(gone, f"{user}'s server to stop", timeout=60)
    return "stopped after waiting"


@pytest.fixture(scope="module")
def hub(make_hub, user_env):
    hub = make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "user_environment": {"path": user_env},
    }, start=False)
    config_d = os.path.join(hub.prefix, "config", "jupyterhub_config.d")
    os.makedirs(config_d)
    with open(os.path.join(config_d, "launcher.py"), "w") as f:
        f.write(CONFIG_D)
    return hub.start()


def test_start_stop_example(hub, run_id, unix_accounts):
    user = f"{run_id}-launched"
    unix_accounts.append(f"jupyter-{user}")
    assert HubClient(hub.url).login(user, "pw").status_code == 302  # the user exists, as in the example
    with open(os.path.join(hub.prefix, "config", "jupyterhub_config.d", "service-token")) as f:
        token = f.read().strip()
    session = requests.Session()
    session.headers = {"Authorization": f"token {token}"}

    server_url = start_server(session, hub.url, user)
    assert server_url == f"{hub.url}/user/{user}/"
    status = session.get(f"{server_url}/api/status")  # as the example writes it
    assert status.status_code == 200 and "started" in status.json(), status.text
    assert stop_server(session, hub.url, user) in ("stopped", "stopped after waiting")
    assert stop_server(session, hub.url, user) in ("stopped", "already stopped"), "stopping again is fine"
    model = session.get(f"{hub.url}/hub/api/users/{user}").json()
    assert model["servers"] == {}
    # Only what the role grants: the launcher cannot delete users.
    assert session.delete(f"{hub.url}/hub/api/users/{user}").status_code == 403
