"""Groups, managed services (their model, token identity and routes), metrics, shutdown checks."""

import json
import sys

PAGINATED = {"Accept": "application/jupyterhub-pagination+json"}


async def test_group_lifecycle(hub):
    admin = hub.token("boss", admin=True)
    for name in ("alice", "bob"):
        hub.add_user(name)
    async with hub.api("POST", "/groups", admin, json={"groups": ["g1", "g2"]}) as resp:
        assert resp.status == 201
        assert [g["name"] for g in await resp.json()] == ["g1", "g2"]
    async with hub.api("POST", "/groups", admin, json={"groups": ["g1"]}) as resp:
        assert resp.status == 409
    async with hub.api("POST", "/groups/g3", admin, json={"users": ["alice"], "properties": {"k": 1}}) as resp:
        assert resp.status == 201
        g3 = await resp.json()
    assert g3 == {"kind": "group", "name": "g3", "users": ["alice"], "properties": {"k": 1}, "roles": []}
    async with hub.api("POST", "/groups/g1/users", admin, json={"users": ["bob", "alice"]}) as resp:
        assert (await resp.json())["users"] == ["alice", "bob"]
    async with hub.api("DELETE", "/groups/g1/users", admin, json={"users": ["bob"]}) as resp:
        assert (await resp.json())["users"] == ["alice"]
    async with hub.api("PUT", "/groups/g1/properties", admin, json={"course": "101"}) as resp:
        assert (await resp.json())["properties"] == {"course": "101"}
    async with hub.api("GET", "/users/alice", admin) as resp:
        assert (await resp.json())["groups"] == ["g1", "g3"]
    async with hub.api("GET", "/groups?limit=2", admin, headers=PAGINATED) as resp:
        page = await resp.json()
    assert [g["name"] for g in page["items"]] == ["g1", "g2"]
    assert page["_pagination"]["total"] == 3
    async with hub.api("DELETE", "/groups/g1", admin) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/groups/g1", admin) as resp:
        assert resp.status == 404
    async with hub.api("GET", "/users/alice", admin) as resp:
        assert (await resp.json())["groups"] == ["g3"]


async def test_group_bad_requests(hub):
    admin = hub.token("boss", admin=True)
    bad = [("POST", "/groups", {"groups": []}), ("POST", "/groups", {"groups": ["a/b"]}),
           ("POST", "/groups", {"groups": "g"}), ("POST", "/groups/g", {"users": ["ghost"]}),
           ("POST", "/groups/g", {"users": "alice"})]
    for method, path, body in bad:
        async with hub.api(method, path, admin, json=body) as resp:
            assert resp.status == 400, (path, body)
            assert (await resp.json())["message"]
    async with hub.api("POST", "/groups/g", admin) as resp:
        assert resp.status == 201
    async with hub.api("POST", "/groups/g/users", admin, json={"users": ["ghost"]}) as resp:
        assert resp.status == 400
        assert "ghost" in (await resp.json())["message"]
    async with hub.api("POST", "/groups/nope/users", admin, json={"users": []}) as resp:
        assert resp.status == 404


async def test_users_cannot_manage_groups(hub):
    admin = hub.token("boss", admin=True)
    async with hub.api("POST", "/groups/g", admin) as resp:
        assert resp.status == 201
    alice = hub.token("alice")
    for method, path in (("GET", "/groups"), ("POST", "/groups/h"), ("DELETE", "/groups/g"),
                         ("GET", "/groups/g")):
        async with hub.api(method, path, alice) as resp:
            assert resp.status == 403, (method, path)


async def test_services_model_identity_and_route(start_hub):
    config = {"services": {
        "announcer": {"command": [sys.executable, "-c", "import time; time.sleep(60)"],
                      "url": "http://127.0.0.1:10101", "scopes": ["list:users", "read:users"]},
        "reporter": {"command": [sys.executable, "-c", "pass"], "admin": True, "display": False},
    }}
    hub = await start_hub(config)
    assert hub.proxy.routes["/services/announcer/"] == "http://127.0.0.1:10101"
    assert "/services/reporter/" not in hub.proxy.routes  # no url, no route
    admin = hub.token("boss", admin=True)
    async with hub.api("GET", "/services", admin) as resp:
        assert resp.status == 200
        services = await resp.json()
    assert set(services) == {"announcer", "reporter"}
    assert services["announcer"]["prefix"] == "/services/announcer/"
    assert services["announcer"]["kind"] == "service" and services["announcer"]["admin"] is False
    assert services["reporter"]["display"] is False and services["reporter"]["admin"] is True
    async with hub.api("GET", "/services", hub.token("alice")) as resp:
        assert resp.status == 403
    announcer = hub.hub.service_manager.services["announcer"].token
    async with hub.api("GET", "/user", announcer) as resp:
        me = await resp.json()
    assert me["kind"] == "service" and me["name"] == "announcer"
    assert set(me["scopes"]) == {"list:users", "read:users"}
    async with hub.api("GET", "/users", announcer) as resp:
        assert resp.status == 200
    async with hub.api("POST", "/users/x", announcer) as resp:
        assert resp.status == 403  # only the scopes it was given
    reporter = hub.hub.service_manager.services["reporter"].token
    async with hub.api("POST", "/users/x", reporter) as resp:
        assert resp.status == 201  # admin services may


async def test_services_config_errors_name_the_key():
    import pytest

    from tljh_daemon import config as config_mod
    for spec, key in (({"command": "not-a-list"}, "services.x.command"),
                      ({"command": ["a"], "url": "http://0.0.0.0:80"}, "services.x.url"),
                      ({"command": ["a"], "colour": "red"}, "services.x.colour"),
                      ({"api_token": "short"}, "services.x.api_token")):
        with pytest.raises(config_mod.ConfigError) as e:
            config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"services": {"x": spec}}))
        assert e.value.key == key
    # Neither a command nor a token: refused when the hub starts or reloads (check), naming it.
    with pytest.raises(config_mod.ConfigError, match="needs a command .* or an api_token") as e:
        config_mod.check(config_mod.merge(config_mod.DEFAULTS, {"services": {"x": {"url": "http://127.0.0.1:9"}}}))
    assert e.value.key == "services.x"


async def test_metrics_need_read_metrics(hub):
    async with hub.request("GET", "/hub/metrics") as resp:
        assert resp.status == 403
    async with hub.request("GET", "/hub/metrics", hub.token("alice")) as resp:
        assert resp.status == 403
    await hub.start_server("alice", hub.token("alice"))
    async with hub.request("GET", "/hub/metrics", hub.token("boss", admin=True)) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "jupyterhub_running_servers 1.0" in text
    assert "jupyterhub_total_users 2.0" in text
    assert 'jupyterhub_server_spawn_duration_seconds_count{status="success"} 1.0' in text


async def test_shutdown_needs_the_scope_and_a_valid_body(hub):
    async with hub.api("POST", "/shutdown", hub.token("alice")) as resp:
        assert resp.status == 403
    async with hub.api("POST", "/shutdown", hub.token("boss", admin=True), json={"servers": "yes"}) as resp:
        assert resp.status == 400
    assert hub.hub.background == []  # nothing was scheduled


async def test_services_get_the_hub_environment_and_an_oauth_client(start_hub, tmp_path):
    """A routed service is told how to reach the hub and log browsers in, like a server."""
    dump = tmp_path / "env.json"
    script = (f"import json, os, time; json.dump(dict(os.environ), open({str(dump)!r} + '.tmp', 'w'));"
              f" os.replace({str(dump)!r} + '.tmp', {str(dump)!r}); time.sleep(60)")
    hub = await start_hub({"services": {"board": {
        "command": [sys.executable, "-c", script], "url": "http://127.0.0.1:10102",
        "environment": {"JUPYTERHUB_API_URL": "overridden?", "COLOUR": "red"}}},
        "roles": [{"name": "board-readers", "scopes": ["access:services!service=board"], "groups": ["readers"]}]})
    await hub.wait_for(dump.exists, "the service to start")
    env = json.loads(dump.read_text())
    service = hub.hub.service_manager.services["board"]
    assert env["JUPYTERHUB_SERVICE_NAME"] == "board" and env["COLOUR"] == "red"
    assert env["JUPYTERHUB_API_TOKEN"] == service.token
    assert env["JUPYTERHUB_API_URL"].endswith("/hub/api")  # the hub's own variables win
    assert env["JUPYTERHUB_CLIENT_ID"] == "service-board"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/services/board/"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/services/board/oauth_callback"
    assert json.loads(env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]) == ["access:services!service=board"]
    query = {"client_id": "service-board", "redirect_uri": "/services/board/oauth_callback",
             "response_type": "code", "state": "s"}
    # A plain user holds no access:services (JupyterHub's `user` role is `self`): refused.
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/api/oauth2/authorize", params=query) as resp:
        assert resp.status == 403
    # A member of the group the role goes to is let in, as soon as they join.
    async with hub.api("POST", "/groups/readers", hub.token("boss", admin=True),
                       json={"users": ["alice"]}) as resp:
        assert resp.status == 201, await resp.text()
    async with browser.request("GET", "/hub/api/oauth2/authorize", params=query) as resp:
        assert resp.status == 302
        assert resp.headers["Location"].startswith("/services/board/oauth_callback?code=")


async def test_a_service_with_a_user_gets_its_identity(start_hub, tmp_path):
    """As JupyterHub's service spawner: JUPYTERHUB_USER (the service's `user`), USER, HOME, SHELL;
    nbgrader's formgrader asks the hub for JUPYTERHUB_USER's groups. (The running user stands in
    for the account, so this runs unprivileged too.)"""
    import os
    import pwd

    me = pwd.getpwuid(os.geteuid())
    dump = tmp_path / "env.json"
    script = (f"import json, os, time; json.dump(dict(os.environ), open({str(dump)!r} + '.tmp', 'w'));"
              f" os.replace({str(dump)!r} + '.tmp', {str(dump)!r}); time.sleep(60)")
    hub = await start_hub({"services": {"grader": {
        "command": [sys.executable, "-c", script], "user": me.pw_name, "cwd": str(tmp_path),
        "environment": {"HOME": "/nowhere"}}}})
    await hub.wait_for(dump.exists, "the service to start")
    env = json.loads(dump.read_text())
    assert env["JUPYTERHUB_USER"] == env["USER"] == me.pw_name
    assert env["HOME"] == me.pw_dir and env["SHELL"] == (me.pw_shell or "/bin/sh")
