"""Named servers with JupyterHub's REST semantics, through Traefik with real jupyterhub-singleuser
servers: start, reach /user/<name>/<server>/, the limit, stop, delete with remove."""

import json

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root
from waiting import wait_for

pytestmark = needs_root


@pytest.fixture(scope="module")
def me(run_id, unix_accounts):
    name = f"{run_id}-named"
    unix_accounts.append(f"jupyter-{name}")
    return name


@pytest.fixture(scope="module")
def hub(make_hub, user_env):
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "user_environment": {"path": user_env},
        "named_servers": {"enabled": True, "limit_per_user": 1},
    })


@pytest.fixture(scope="module")
def browser(hub, me):
    client = HubClient(hub.url)
    assert client.login(me, "pw").status_code == 302
    return client


@pytest.fixture(scope="module")
def api(hub, me, browser):
    xsrf = next(c.value for c in browser.cookies if c.name == "_xsrf")
    r = browser.post(browser.url(f"/hub/api/users/{me}/tokens"), json={}, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"token {r.json()['token']}"}

    def call(method, path, **kwargs):
        return requests.request(method, hub.url + "/hub/api" + path, headers=headers, timeout=60, **kwargs)
    return call


def _server_log(hub, me, server):
    import glob
    import os
    found = glob.glob(os.path.join(hub.prefix, "**", f"jupyter-{me}-{server}.log"), recursive=True)
    return open(found[0]).read()[-3000:] if found else "no log"


def _progress(api, path):
    events = []
    with api("GET", path, stream=True) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def test_named_server_lifecycle_through_traefik(hub, api, browser, me):
    r = api("POST", f"/users/{me}/servers/proj")
    assert r.status_code == 202, r.text
    events = _progress(api, f"/users/{me}/servers/proj/progress")
    assert events[-1].get("ready") is True, events
    assert events[-1]["url"] == f"/user/{me}/proj/"

    # Reached through Traefik (the OAuth flow of its own client included).
    lab = browser.get(browser.url(f"/user/{me}/proj/lab"))
    assert lab.status_code == 200 and lab.url.endswith(f"/user/{me}/proj/lab"), lab.url
    status = browser.get(browser.url(f"/user/{me}/proj/api/status"))
    assert status.status_code == 200, _server_log(hub, me, "proj")
    assert "started" in status.json()

    model = api("GET", f"/users/{me}").json()
    assert model["server"] is None and list(model["servers"]) == ["proj"]
    assert model["servers"]["proj"]["ready"] is True

    # The limit (1) counts it: a second named server is refused with JupyterHub's message.
    r = api("POST", f"/users/{me}/servers/second")
    assert r.status_code == 400
    assert r.json()["message"].startswith(f"User {me} already has the maximum of 1 named servers.")

    # The default server runs beside it; each answers under its own prefix.
    assert api("POST", f"/users/{me}/server").status_code == 202
    assert browser.progress_events(me)[-1]["ready"] is True
    assert browser.get(browser.url(f"/user/{me}/lab")).status_code == 200
    assert browser.get(browser.url(f"/user/{me}/api/status")).status_code == 200
    assert browser.get(browser.url(f"/user/{me}/proj/api/status")).status_code == 200

    # Stop keeps it (stopped, listed with include_stopped_servers); the default keeps running.
    r = api("DELETE", f"/users/{me}/servers/proj")
    assert r.status_code in (202, 204)
    wait_for(lambda: "proj" not in api("GET", f"/users/{me}").json()["servers"], "proj to stop", timeout=60)
    stopped = api("GET", f"/users/{me}", params={"include_stopped_servers": "1"}).json()["servers"]
    assert stopped["proj"]["stopped"] is True and stopped[""]["ready"] is True
    gone = browser.get(browser.url(f"/user/{me}/proj/api/status"), allow_redirects=False)
    assert gone.status_code != 200
    assert browser.get(browser.url(f"/user/{me}/api/status")).status_code == 200

    # Remove deletes it; then a new name fits under the limit.
    r = api("DELETE", f"/users/{me}/servers/proj", json={"remove": True})
    assert r.status_code == 204
    assert "proj" not in api("GET", f"/users/{me}", params={"include_stopped_servers": "1"}).json()["servers"]
    assert api("DELETE", f"/users/{me}/servers/proj").status_code == 404
    assert api("DELETE", f"/users/{me}/server").status_code in (202, 204)
    log = hub.log()
    assert "Traceback" not in log, log


def test_a_renamed_server_starts_under_its_new_name(hub, api, browser, me):
    """JupyterHub 6's PUT with a display name, then PATCH: the stopped server, renamed, starts
    and answers at its new address through Traefik; the home page lists it by display name."""
    r = api("PUT", f"/users/{me}/servers/draft", json={"display_name": "Draft"})
    assert r.status_code == 201 and r.json()["display_name"] == "Draft", r.text
    r = api("PATCH", f"/users/{me}/servers/draft", json={"name": "final", "display_name": "Final report"})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["url"]) == ("final", f"/user/{me}/final/")
    assert api("POST", f"/users/{me}/servers/final").status_code == 202
    events = _progress(api, f"/users/{me}/servers/final/progress")
    assert events[-1].get("ready") is True and events[-1]["url"] == f"/user/{me}/final/", events
    lab = browser.get(browser.url(f"/user/{me}/final/lab"))  # its OAuth client is the new name's
    assert lab.status_code == 200 and lab.url.endswith(f"/user/{me}/final/lab"), lab.url
    status = browser.get(browser.url(f"/user/{me}/final/api/status"))
    assert status.status_code == 200, _server_log(hub, me, "final")
    assert browser.get(browser.url(f"/user/{me}/draft/api/status"), allow_redirects=False).status_code != 200
    r = api("PATCH", f"/users/{me}/servers/final", json={"name": "again"})
    assert r.status_code == 400 and "Please stop it" in r.json()["message"]
    home = browser.get(browser.url("/hub/home")).text
    assert "Final report" in home and "(final)" in home
    assert api("DELETE", f"/users/{me}/servers/final", json={"remove": True}).status_code in (202, 204)
    wait_for(lambda: "final" not in api("GET", f"/users/{me}", params={"include_stopped_servers": "1"}).json()["servers"],
             "final to be removed", timeout=60)


def test_daemon_stop_stops_named_servers(hub, api, me):
    """`tljh-daemon stop` (process mode) stops a named server's own process (its backend key)."""
    import os
    import sqlite3
    import subprocess

    import psutil

    assert api("POST", f"/users/{me}/servers/cli").status_code == 202
    assert _progress(api, f"/users/{me}/servers/cli/progress")[-1].get("ready") is True
    with sqlite3.connect(os.path.join(hub.prefix, "state", "tljh.sqlite")) as db:
        (state,) = db.execute("SELECT spawner_state FROM servers WHERE user=? AND name='cli'", (me,)).fetchone()
    pid = json.loads(state)["pid"]
    assert psutil.pid_exists(pid)
    result = subprocess.run(hub.command("stop"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Stopped the server of {me}/cli" in result.stdout, result.stdout
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             "the named server's process to end", timeout=30)


def test_real_idle_culler_removes_an_idle_named_server(make_hub, user_env, run_id, unix_accounts):
    """jupyterhub-idle-culler --remove-named-servers (a managed service with its README's scopes)
    deletes an idle named server through DELETE .../servers/<server> with {"remove": true}."""
    import os

    name = f"{run_id}-namedc"
    unix_accounts.append(f"jupyter-{name}")
    culler = [os.path.join(user_env, "bin", "python"), "-m", "jupyterhub_idle_culler",
              "--timeout=4", "--cull-every=1", "--remove-named-servers=true"]
    hub = make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "users": {"admin": [name]},
        "user_environment": {"path": user_env},
        "named_servers": {"enabled": True},
        "services": {"cull": {"enabled": False},
                     "idle-culler": {"command": culler,
                                     "scopes": ["list:users", "read:users:activity", "read:servers",
                                                "delete:servers"]}},
    })
    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    token = client.post(client.url(f"/hub/api/users/{name}/tokens"), json={},
                        headers={"X-XSRFToken": xsrf}).json()["token"]
    headers = {"Authorization": f"token {token}"}
    api = hub.url + "/hub/api"
    assert requests.post(f"{api}/users/{name}/servers/idle", headers=headers, timeout=60).status_code == 202

    def removed():
        model = requests.get(f"{api}/users/{name}", params={"include_stopped_servers": "1"}, headers=headers,
                             timeout=10).json()
        return "idle" not in model["servers"]

    wait_for(lambda: requests.get(f"{api}/users/{name}/servers/idle", headers=headers, timeout=10).json()
             .get("ready"), "the named server to start", timeout=120)
    log_path = os.path.join(hub.prefix, "state", "logs", "service-idle-culler.log")

    def culler_log():
        with open(log_path) as f:
            return f.read()

    try:
        wait_for(removed, "the culler to remove the idle named server", timeout=60)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{culler_log()[-3000:]}") from None
    log = culler_log()
    assert f"Culling server {name}/idle" in log and "Traceback" not in log and " 400 " not in log, log
