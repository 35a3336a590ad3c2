"""The REST API through Traefik, with JupyterHub's semantics, status codes and scopes."""

import datetime
import pathlib
import shutil
import tempfile
import time

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root
from waiting import wait_for

pytestmark = needs_root
PAGINATION = "application/jupyterhub-pagination+json"


@pytest.fixture(scope="module")
def names(run_id, unix_accounts):
    names = {role: f"{run_id}-{role}" for role in ("admin", "bob", "carl")}
    unix_accounts.extend(f"jupyter-{n}" for n in names.values())
    return names


@pytest.fixture(scope="module")
def hub(make_hub, user_env, names):
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "users": {"admin": [names["admin"]]},
        "user_environment": {"path": user_env},
    })


def token_for(hub, name, **body):
    """Log in with the browser flow, then create an API token with cookie + XSRF auth."""
    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    r = client.post(client.url(f"/hub/api/users/{name}/tokens"), json=body, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    return r.json()["token"]


class Api:
    def __init__(self, hub, token=None):
        self.base = hub.url + "/hub/api"
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def __getattr__(self, method):
        def call(path, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return requests.request(method.upper(), self.base + path, headers=headers, timeout=30, **kwargs)
        return call


@pytest.fixture(scope="module")
def admin(hub, names):
    return Api(hub, token_for(hub, names["admin"], note="admin tests"))


@pytest.fixture(scope="module")
def bob(hub, names):
    return Api(hub, token_for(hub, names["bob"]))


def test_unauthenticated_requests_get_json_403(hub):
    r = Api(hub).get("/users")
    assert r.status_code == 403
    assert r.json()["status"] == 403 and r.json()["message"]
    assert r.headers["X-JupyterHub-Version"].split(".")[0] in ("5", "6")
    assert Api(hub, "not-a-token").get("/user").status_code == 403


def test_create_list_paginate_filter_sort(admin, run_id):
    new = [f"{run_id}-p{i}" for i in range(5)]
    r = admin.post("/users", json={"usernames": new})
    assert r.status_code == 201 and sorted(u["name"] for u in r.json()) == new
    assert admin.post("/users", json={"usernames": new}).status_code == 409

    page = admin.get("/users", params={"limit": 2, "name_filter": f"{run_id}-p"}, headers={"Accept": PAGINATION})
    body = page.json()
    assert page.headers["Content-Type"].startswith(PAGINATION)
    assert [u["name"] for u in body["items"]] == new[:2]
    assert body["_pagination"]["total"] == 5
    assert body["_pagination"]["next"]["offset"] == 2
    last = admin.get("/users", params={"offset": 4, "limit": 2, "name_filter": f"{run_id}-p"},
                     headers={"Accept": PAGINATION}).json()
    assert [u["name"] for u in last["items"]] == new[4:] and last["_pagination"]["next"] is None

    plain = admin.get("/users", params={"name_filter": f"{run_id}-p", "sort": "-name"}).json()
    assert [u["name"] for u in plain] == list(reversed(new))
    assert all(u["server"] is None for u in admin.get("/users", params={"state": "inactive"}).json())
    assert admin.get("/users", params={"sort": "height"}).status_code == 400
    assert admin.get("/users", params={"state": "sleepy"}).status_code == 400

    one = admin.get(f"/users/{new[0]}").json()
    assert one["name"] == new[0] and one["admin"] is False and one["servers"] == {}
    assert admin.patch(f"/users/{new[0]}", json={"admin": True}).json()["admin"] is True
    assert admin.delete(f"/users/{new[0]}").status_code == 204
    assert admin.get(f"/users/{new[0]}").status_code == 404


@pytest.mark.parametrize("method, path, kwargs", [
    ("post", "/users", {"data": "not json"}),
    ("post", "/users", {"json": {"usernames": 5}}),
    ("post", "/users", {"json": ["a", "b"]}),
    ("post", "/users", {"json": {"usernames": ["a/b"]}}),
    ("patch", "/users/{admin}", {"json": {"admin": "yes"}}),
    ("post", "/users/{admin}/activity", {"json": {"last_activity": "yesterday"}}),
    ("post", "/users/{admin}/tokens", {"json": {"expires_in": -5}}),
    ("post", "/users/{admin}/tokens", {"json": {"scopes": ["fly:planes"]}}),
    ("post", "/groups", {"json": {"groups": "g"}}),
    ("get", "/users", {"params": {"limit": "many"}}),
    # Issue 10, item 6: these were 500s.
    ("post", "/users", {"data": b'\xff\xfe{"usernames": ["x"]}'}),
    ("post", "/users/{admin}/tokens", {"data": b"\xff"}),
    ("post", "/users", {"data": "[" * 100_000}),
    ("get", "/users", {"params": {"offset": "99999999999999999999999"}}),
    ("get", "/users", {"params": {"offset": "-1"}}),
    ("get", "/users", {"params": {"limit": "-1"}}),
    # Item 7: JupyterHub refuses activity more than an hour ahead.
    ("post", "/users/{admin}/activity", {"json": {"last_activity": "2099-01-01T00:00:00Z"}}),
])
def test_bad_bodies_get_a_json_400(admin, names, method, path, kwargs):
    r = getattr(admin, method)(path.format(admin=names["admin"]), **kwargs)
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400 and r.json()["message"]


def test_trace_is_refused_and_user_names_its_token(admin, names):
    r = admin.trace("/users")
    assert r.status_code == 405 and r.json()["status"] == 405
    me = admin.get("/user").json()
    assert me["name"] == names["admin"]
    assert me["token_id"] in [t["id"] for t in admin.get(f"/users/{names['admin']}/tokens").json()["api_tokens"]]


def test_non_admin_token_limits(bob, names):
    assert bob.get("/users").status_code == 403
    assert bob.get(f"/users/{names['bob']}").status_code == 200
    assert bob.post(f"/users/{names['admin']}/server").status_code in (403, 404)
    assert bob.get(f"/users/{names['admin']}/tokens").status_code in (403, 404)
    assert bob.post("/users", json={"usernames": ["x"]}).status_code == 403
    too_wide = bob.post(f"/users/{names['bob']}/tokens", json={"scopes": ["admin:users"]})
    assert too_wide.status_code == 403


def test_token_lifecycle_expiry_and_narrow_scopes(bob, hub, names):
    me = names["bob"]
    r = bob.post(f"/users/{me}/tokens", json={"note": "short", "expires_in": 1})
    assert r.status_code == 201 and r.json()["note"] == "short" and r.json()["expires_at"]
    short = Api(hub, r.json()["token"])
    assert short.get("/user").json()["name"] == me
    time.sleep(1.2)
    assert short.get("/user").status_code == 403

    narrow = bob.post(f"/users/{me}/tokens", json={"scopes": [f"read:users!user={me}"]}).json()
    reader = Api(hub, narrow["token"])
    assert reader.get(f"/users/{me}").status_code == 200
    assert reader.post(f"/users/{me}/server").status_code == 403
    listed = bob.get(f"/users/{me}/tokens").json()["api_tokens"]
    assert narrow["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    assert bob.delete(f"/users/{me}/tokens/{narrow['id']}").status_code == 204
    assert reader.get(f"/users/{me}").status_code == 403
    assert bob.get(f"/users/{me}/tokens/{narrow['id']}").status_code == 404


def test_scope_hierarchy_and_models_filtered_by_scope(admin, hub, names):
    """JupyterHub 6's scopes: `list:users` shows names only, `read:servers` adds servers,
    `delete:servers` stops but does not start, `start:servers` starts."""
    carl = names["carl"]
    admin.post(f"/users/{carl}")

    def token(*scopes):
        r = admin.post(f"/users/{names['admin']}/tokens", json={"scopes": list(scopes)})
        assert r.status_code == 201, r.text
        return Api(hub, r.json()["token"])

    lister = token("list:users")
    listed = lister.get("/users").json()
    assert listed and all(set(u) == {"kind", "name", "admin"} for u in listed), listed
    assert set(lister.get(f"/users/{carl}").json()) == {"kind", "name", "admin"}
    assert set(token("read:servers").get(f"/users/{carl}").json()) == {"kind", "name", "admin", "servers"}
    assert set(token("read:users:activity", "list:users").get(f"/users/{carl}").json()) == {
        "kind", "name", "admin", "last_activity"}
    assert "servers" in admin.get(f"/users/{carl}").json()

    stopper = token("delete:servers", "list:users")
    assert stopper.delete(f"/users/{carl}/server").status_code == 204  # not running: nothing to do
    refused = stopper.post(f"/users/{carl}/server")
    assert refused.status_code == 403 and "start:servers" in refused.json()["message"]
    # Without start:servers in any form it is a 403 even where carl cannot be seen (as in JupyterHub:
    # the 404 is for scopes held only for others).
    assert token("delete:servers").post(f"/users/{carl}/server").status_code == 403
    assert token("start:servers", "list:users").delete(f"/users/{carl}/server").status_code == 403
    me = lister.get("/user").json()
    assert me["name"] == names["admin"] and me["scopes"] == ["list:users"] and "groups" in me


def test_groups_and_group_filtered_scopes(admin, hub, names, run_id):
    group = f"{run_id}-class"
    assert admin.post(f"/groups/{group}", json={"users": [names["bob"]]}).status_code == 201
    assert admin.post(f"/groups/{group}").status_code == 409
    assert admin.get(f"/users/{names['bob']}").json()["groups"] == [group]
    assert admin.post(f"/groups/{group}/users", json={"users": [names["admin"]]}).json()["users"] == sorted(
        [names["admin"], names["bob"]])
    assert admin.post(f"/groups/{group}/users", json={"users": ["ghost"]}).status_code == 400
    member_reader = Api(hub, admin.post(f"/users/{names['admin']}/tokens",
                                        json={"scopes": [f"read:users!group={group}"]}).json()["token"])
    assert member_reader.get(f"/users/{names['bob']}").status_code == 200
    admin.post(f"/users/{names['carl']}")
    assert member_reader.get(f"/users/{names['carl']}").status_code in (403, 404)
    assert admin.delete(f"/groups/{group}/users", json={"users": [names["bob"]]}).json()["users"] == [names["admin"]]
    assert group in [g["name"] for g in admin.get("/groups").json()]
    assert admin.delete(f"/groups/{group}").status_code == 204
    assert admin.get(f"/groups/{group}").status_code == 404


def test_start_stop_via_api_and_server_token_reports_only_its_own_activity(bob, admin, hub, names):
    me = names["bob"]
    assert bob.post(f"/users/{me}/server").status_code == 202
    assert bob.post(f"/users/{me}/server").status_code == 400  # already pending
    browser = HubClient(hub.url)
    browser.login(me, "pw")
    assert browser.progress_events(me)[-1]["ready"] is True
    model = bob.get(f"/users/{me}").json()
    assert model["server"] == f"/user/{me}/" and model["servers"][""]["ready"] is True
    assert [u["name"] for u in admin.get("/users", params={"state": "ready"}).json()] == [me]

    browser.get(browser.url(f"/user/{me}/lab"))
    kernel = browser.start_kernel(me)
    server_token = browser.execute(me, kernel, "__import__('os').environ['JUPYTERHUB_API_TOKEN']").strip("'")
    server = Api(hub, server_token)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ok = server.post(f"/users/{me}/activity", json={"last_activity": stamp, "servers": {"": {"last_activity": stamp}}})
    assert ok.status_code == 200  # as JupyterHub answers
    assert bob.get(f"/users/{me}").json()["last_activity"] == stamp
    older = (now - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    server.post(f"/users/{me}/activity", json={"last_activity": older})
    assert bob.get(f"/users/{me}").json()["last_activity"] == stamp, "activity only moves forward"
    assert server.post(f"/users/{names['admin']}/activity", json={"last_activity": stamp}).status_code in (403, 404)
    assert server.get("/users").status_code == 403

    assert bob.delete(f"/users/{me}/server").status_code in (202, 204)
    deadline = time.monotonic() + 30
    while bob.get(f"/users/{me}").json()["servers"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bob.get(f"/users/{me}").json()["servers"] == {}
    assert bob.post(f"/users/{me}/servers/other").status_code == 400


def test_a_client_leaving_the_progress_stream_is_logged_as_such(make_hub, user_env, run_id, unix_accounts):
    """A browser tab closed while a server starts: the hub notes it, no error, no traceback
    (the daemon's aiohttp does not cancel handlers when a client leaves, so the stream's next
    write meets the closed connection). Its own hub: the module's counts its spawns."""
    boss, me = f"{run_id}-lboss", f"{run_id}-leaver"
    unix_accounts.append(f"jupyter-{me}")
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [boss]}, "user_environment": {"path": user_env}})
    admin = Api(hub, token_for(hub, boss))
    assert admin.post(f"/users/{me}").status_code == 201
    seen = len(hub.log())
    assert admin.post(f"/users/{me}/server").status_code == 202
    stream = requests.get(f"{admin.base}/users/{me}/server/progress", headers=admin.headers, stream=True,
                          timeout=60)
    first = next(line for line in stream.iter_lines(decode_unicode=True) if line)
    assert first.startswith("data:"), first
    stream.close()
    wait_for(lambda: f"A client left the progress stream of {me}'s server" in hub.log()[seen:],
             "the daemon to log that the client left", timeout=120)
    log = hub.log()[seen:]
    assert "Unhandled error" not in log and "Traceback" not in log, log
    wait_for(lambda: admin.get(f"/users/{me}").json()["servers"].get("", {}).get("ready"),
             "the server to start anyway", timeout=120)
    assert admin.delete(f"/users/{me}/server").status_code in (202, 204)


def test_concurrent_spawn_limit_answers_429(make_hub, run_id, unix_accounts):
    slow = pathlib.Path(tempfile.mkdtemp(dir="/var/tmp"))
    (slow / "bin").mkdir()
    (slow / "bin" / "jupyterhub-singleuser").write_text("#!/bin/sh\nexec sleep 60\n")
    for p in (slow, slow / "bin", slow / "bin" / "jupyterhub-singleuser"):
        p.chmod(0o755)
    first, second = f"{run_id}-q1", f"{run_id}-q2"
    unix_accounts.extend([f"jupyter-{first}", f"jupyter-{second}"])
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": str(slow)},
                    "spawner": {"concurrent_spawn_limit": 1, "start_timeout": 30}})
    one, two = Api(hub, token_for(hub, first)), Api(hub, token_for(hub, second))
    assert one.post(f"/users/{first}/server").status_code == 202
    r = two.post(f"/users/{second}/server")
    assert r.status_code == 429 and 5 <= int(r.headers["Retry-After"]) <= 15
    assert one.delete(f"/users/{first}/server").status_code in (202, 204)
    shutil.rmtree(slow)


def test_metrics_need_the_scope_and_count_spawns(admin, bob, hub):
    assert requests.get(f"{hub.url}/hub/metrics", headers=bob.headers).status_code == 403
    r = requests.get(f"{hub.url}/hub/metrics", headers=admin.headers)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    assert 'jupyterhub_server_spawn_duration_seconds_count{status="success"} 1.0' in text
    assert "jupyterhub_running_servers 0.0" in text
    assert 'jupyterhub_request_duration_seconds_count{code="200",handler="/hub/api/users",method="GET"}' in text
    assert requests.get(f"{hub.url}/hub/metrics").status_code == 403
