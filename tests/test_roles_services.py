"""Roles decide who opens a managed service, through Traefik, with JupyterHub's own OAuth client
(`HubOAuthenticated` from the user environment's jupyterhub) as the service: a user without a
role is refused (403), a group's member given `access:services!service=<name>` gets in, roles
from config.yaml and from jupyterhub_config.d both count, and `tljh-config reload` applies a
change. The service runs in its `cwd`; an external service's fixed api_token calls the API."""

import os
import subprocess
import sys

import requests

from hubclient import HubClient
from hubprocess import needs_root
from tljh_daemon.ports import free_port
from waiting import wait_for

pytestmark = needs_root

# A service as JupyterHub's docs write one (examples/service-whoami-oauth), answering with who
# logged in and the directory it runs in.
SERVICE = '''
import json, os
from urllib.parse import urlparse
from tornado import ioloop, web
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated

prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]


class WhoAmI(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self):
        self.write(json.dumps({"name": self.get_current_user()["name"], "cwd": os.getcwd()}))


app = web.Application([(prefix, WhoAmI), (prefix + "oauth_callback", HubOAuthCallbackHandler)],
                      cookie_secret=os.urandom(32))
url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
app.listen(url.port, url.hostname)
ioloop.IOLoop.current().start()
'''

CONFIG_D = '''
c.JupyterHub.load_roles = [
    {"name": "helpers", "scopes": ["access:services!service=grades"], "users": [%(helper)r]},
]
'''


def tljh_config(hub, *args):
    return subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", hub.prefix, *args],
                          capture_output=True, text=True, timeout=180)


def open_service(hub, name):
    """A browser logged in as `name` opening /services/grades/ (following the OAuth redirects)."""
    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    return client.get(f"{hub.url}/services/grades/", timeout=30)


def test_roles_decide_who_opens_a_service(make_hub, user_env, run_id, unix_accounts, tmp_path):
    admin, grader, student, helper = (f"{run_id}-{r}" for r in ("admin", "grader", "student", "helper"))
    workdir = tmp_path / "course"
    workdir.mkdir()
    script = tmp_path / "whoami.py"
    script.write_text(SERVICE)
    external_token = "external-" + run_id + "-0123456789"
    config = {
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "users": {"admin": [admin]},
        "user_environment": {"path": user_env},
        "services": {
            "cull": {"enabled": False},
            "grades": {"command": [os.path.join(user_env, "bin", "python"), str(script)],
                       "url": f"http://127.0.0.1:{free_port()}", "cwd": str(workdir)},
            "reports": {"api_token": external_token},
        },
        "roles": {
            "graders": {"scopes": ["access:services!service=grades"], "groups": ["formgrade-x"]},
            "reporter": {"scopes": ["list:users"], "services": ["reports"]},
        },
    }
    hub = make_hub(config, start=False)
    config_d = os.path.join(hub.prefix, "config", "jupyterhub_config.d")
    os.makedirs(config_d)
    with open(os.path.join(config_d, "helpers.py"), "w") as f:
        f.write(CONFIG_D % {"helper": helper})
    hub.start()
    api = requests.Session()
    admin_client = HubClient(hub.url)
    admin_client.login(admin, "pw")
    xsrf = next(c.value for c in admin_client.cookies if c.name == "_xsrf")
    r = admin_client.post(admin_client.url(f"/hub/api/users/{admin}/tokens"), json={}, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    api.headers["Authorization"] = f"token {r.json()['token']}"
    r = api.post(f"{hub.url}/hub/api/users", json={"usernames": [grader, student, helper]})
    assert r.status_code == 201, r.text
    for group, members in (("formgrade-x", [grader]), ("students", [student])):
        assert api.post(f"{hub.url}/hub/api/groups/{group}", json={"users": members}).status_code == 201

    # The service is up, in its cwd; a grader (role through a group, config.yaml) gets in.
    wait_for(lambda: open_service(hub, grader).status_code == 200, "the service to answer", timeout=60)
    r = open_service(hub, grader)
    assert r.json() == {"name": grader, "cwd": str(workdir)}
    # A helper (role from jupyterhub_config.d's load_roles, for a user) gets in too.
    r = open_service(hub, helper)
    assert r.status_code == 200 and r.json()["name"] == helper
    # A student holds no role granting access:services: the hub refuses, as JupyterHub does.
    r = open_service(hub, student)
    assert r.status_code == 403 and "You do not have permission to access Service grades" in r.text
    assert requests.get(f"{hub.url}/hub/api/users/{student}", headers=api.headers).json()["roles"] == ["user"]
    assert requests.get(f"{hub.url}/hub/api/users/{grader}", headers=api.headers).json()["roles"] == [
        "graders", "user"]

    # The external service calls the REST API with its fixed token and its role's scopes only.
    external = {"Authorization": f"token {external_token}"}
    r = requests.get(f"{hub.url}/hub/api/users", headers=external)
    assert r.status_code == 200 and student in {u["name"] for u in r.json()}
    assert requests.delete(f"{hub.url}/hub/api/users/{student}", headers=external).status_code == 403
    assert external_token not in hub.log()

    # The students group is given the role; `tljh-config reload` applies it.
    result = tljh_config(hub, "add-item", "roles.graders.groups", "students")
    assert result.returncode == 0, result.stderr
    result = tljh_config(hub, "reload")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: open_service(hub, student).status_code == 200, "the student to get in after the reload",
             timeout=60)
    assert open_service(hub, student).json()["name"] == student


def test_bad_roles_are_refused_by_tljh_config(tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "config").mkdir(parents=True)
    (prefix / "config" / "config.yaml").write_text("roles:\n  graders:\n    groups: [g]\n")
    before = (prefix / "config" / "config.yaml").read_text()
    result = subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", str(prefix),
                             "add-item", "roles.graders.scopes", "access:service!service=x"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "roles.graders.scopes" in result.stderr and "access:service!service=x" in result.stderr
    assert (prefix / "config" / "config.yaml").read_text() == before
