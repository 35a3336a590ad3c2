"""Idle servers are stopped: by the real jupyterhub-idle-culler as a managed service, and by the
built-in culler. A server whose activity is reported keeps running."""

import os
import subprocess
import threading
import time

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = needs_root


def start_servers(hub, names):
    for name in names:
        client = HubClient(hub.url)
        assert client.login(name, "pw").status_code == 302
        assert client.spawn(name)[-1]["ready"] is True


class ActivityReporter(threading.Thread):
    """Reports activity for one user every half second, as a busy single-user server would."""

    def __init__(self, hub, token, name):
        super().__init__(daemon=True)
        self.url = f"{hub.url}/hub/api/users/{name}/activity"
        self.headers = {"Authorization": f"token {token}"}
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.5):
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            requests.post(self.url, json={"last_activity": now, "servers": {"": {"last_activity": now}}},
                          headers=self.headers, timeout=5)


#: the scopes jupyterhub-idle-culler's README tells admins to grant it, and nothing more
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def admin_token(hub, name, scopes=None):
    client = HubClient(hub.url)
    client.login(name, "pw")
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    body = {} if scopes is None else {"scopes": scopes}
    r = client.post(client.url(f"/hub/api/users/{name}/tokens"), json=body, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def wait_until_stopped(hub, token, name, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        user = requests.get(f"{hub.url}/hub/api/users/{name}", headers={"Authorization": f"token {token}"}).json()
        if not user["servers"]:
            return True
        time.sleep(0.5)
    return False


#: jupyterhub-idle-culler's README configuration for jupyterhub_config.py (the role first, then the
#: service), with this machine's Python and short timeouts
README_CONFIG = """
c.JupyterHub.load_roles = [
    {
        "name": "jupyterhub-idle-culler-role",
        "scopes": %(scopes)r,
        "services": ["jupyterhub-idle-culler-service"],
    }
]
c.JupyterHub.services = [
    {
        "name": "jupyterhub-idle-culler-service",
        "command": %(command)r,
    }
]
"""


@pytest.mark.parametrize("culler", ["jupyterhub-idle-culler", "external-idle-culler", "readme-load-roles",
                                    "built-in"])
def test_idle_server_is_culled_and_active_one_kept(make_hub, user_env, run_id, unix_accounts, culler, tmp_path):
    """The real jupyterhub-idle-culler runs with exactly its README's scopes, as a managed service
    (config.yaml, or its README's load_roles in jupyterhub_config.d) and as an outside program
    with an API token."""
    admin, idle, busy = (f"{run_id}-{r}{culler[:2]}" for r in ("admin", "idle", "busy"))
    unix_accounts.extend(f"jupyter-{n}" for n in (idle, busy))
    config = {"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
              "users": {"admin": [admin]}, "user_environment": {"path": user_env}}
    if culler == "built-in":
        config["services"] = {"cull": {"timeout": 4, "every": 1}}
    else:
        config["services"] = {"cull": {"enabled": False}}
    culler_command = [os.path.join(user_env, "bin", "python"), "-m", "jupyterhub_idle_culler",
                      "--timeout=4", "--cull-every=1"]
    if culler == "jupyterhub-idle-culler":
        config["services"]["idle-culler"] = {"command": culler_command, "scopes": CULLER_SCOPES}
    hub = make_hub(config, start=False)
    log_path = os.path.join(hub.prefix, "state", "logs", "service-idle-culler.log")
    if culler == "readme-load-roles":
        config_d = os.path.join(hub.prefix, "config", "jupyterhub_config.d")
        os.makedirs(config_d)
        with open(os.path.join(config_d, "idle-culler.py"), "w") as f:
            f.write(README_CONFIG % {"scopes": CULLER_SCOPES, "command": culler_command})
        log_path = os.path.join(hub.prefix, "state", "logs", "service-jupyterhub-idle-culler-service.log")
    hub.start()
    token = admin_token(hub, admin)
    start_servers(hub, [idle, busy])
    external = None
    if culler == "external-idle-culler":
        log_path = str(tmp_path / "culler.log")
        env = {"PATH": os.environ["PATH"], "JUPYTERHUB_API_TOKEN": admin_token(hub, admin, CULLER_SCOPES)}
        with open(log_path, "wb") as log_file:
            external = subprocess.Popen([*culler_command, f"--url={hub.url}/hub/api"], env=env,
                                        stdout=log_file, stderr=subprocess.STDOUT)
    reporter = ActivityReporter(hub, token, busy)
    reporter.start()
    try:
        assert wait_until_stopped(hub, token, idle, timeout=60), f"{culler} did not stop the idle server"
        time.sleep(2)
        busy_model = requests.get(f"{hub.url}/hub/api/users/{busy}", headers={"Authorization": f"token {token}"}).json()
        assert busy_model["servers"][""]["ready"] is True, "the active server must keep running"
    finally:
        reporter.stopped.set()
        if external is not None:
            external.terminate()
            external.wait(30)
    if culler != "built-in":
        if external is None:
            services = requests.get(f"{hub.url}/hub/api/services", headers={"Authorization": f"token {token}"}).json()
            service = "jupyterhub-idle-culler-service" if culler == "readme-load-roles" else "idle-culler"
            assert services[service]["pid"] > 0
        with open(log_path) as f:
            log = f.read()
        assert f"Culling server {idle}" in log and busy not in log.split("Culling server")[-1], log
        assert " 403 " not in log and " 404 " not in log and "Traceback" not in log, log
