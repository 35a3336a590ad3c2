"""Named servers (named_servers.*) with JupyterHub's REST semantics, through ServerManager's
real code path (the spawner only is fake)."""

import json
from datetime import timedelta

import pytest

from tljh_daemon import timeutil, tokens
from tljh_daemon.server_store import server_name_for
from tljh_daemon.servers import spawner_key, valid_server_name

NAMED = {"named_servers": {"enabled": True, "limit_per_user": 2}}


async def _events(hub, path, token):
    async with hub.api("GET", path, token) as resp:
        assert resp.status == 200, await resp.text()
        text = await resp.text()
    return [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]


async def _wait_state(hub, name, server, state):
    async def reached():
        return await hub.hub.servers.state(name, server) == state

    await hub.wait_for(reached, f"{name}/{server} to be {state}", 10)


async def test_named_servers_are_refused_when_not_enabled(start_hub):
    hub = await start_hub()
    token = hub.token("alice")
    for method in ("POST", "DELETE"):
        async with hub.api(method, "/users/alice/servers/project", token) as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == "Named servers are not enabled."
    # Renaming or naming the default server needs them too.
    await hub.hub.servers.store.pending("alice", "2026-01-01T00:00:00Z")
    await hub.hub.servers.store.down("alice")
    for body in ({"name": "project"}, {"display_name": "Mine"}):
        async with hub.api("PATCH", "/users/alice/server", token, json=body) as resp:
            assert resp.status == 400 and (await resp.json())["message"] == "Named servers are not enabled."


async def test_start_reach_stop_and_remove_a_named_server(start_hub):
    hub = await start_hub(NAMED)
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/servers/project", token) as resp:
        assert resp.status == 202, await resp.text()
    events = await _events(hub, "/users/alice/servers/project/progress", token)
    assert events[-1]["ready"] is True and events[-1]["url"] == "/user/alice/project/"
    assert hub.proxy.routes["/user/alice/project/"].startswith("http://127.0.0.1:")
    assert "/user/alice/" not in hub.proxy.routes  # the default server is not started
    request = hub.spawner.requests[-1]
    assert request.user == "alice-project"  # its own unit/cgroup: jupyter-alice-project
    assert request.log_path.endswith("jupyter-alice-project.log")
    env = request.env
    assert env["JUPYTERHUB_SERVER_NAME"] == "project"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/alice/project/"
    assert env["JUPYTERHUB_CLIENT_ID"] == "jupyterhub-user-alice-project"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/user/alice/project/oauth_callback"
    assert json.loads(env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"])[0] == "access:servers!server=alice/project"
    row = tokens.lookup(hub.db, env["JUPYTERHUB_API_TOKEN"])
    assert "access:servers!server=alice/project" in tokens.scopes_of(row)

    async with hub.api("GET", "/users/alice", token) as resp:
        model = await resp.json()
    assert model["server"] is None and list(model["servers"]) == ["project"]
    named = model["servers"]["project"]
    assert named["name"] == "project" and named["ready"] is True and named["url"] == "/user/alice/project/"
    assert named["progress_url"] == "/hub/api/users/alice/servers/project/progress"

    # Activity for servers.project moves that server's last_activity.
    body = {"servers": {"project": {"last_activity": "2030-01-01T00:00:00Z"}}}
    async with hub.api("POST", "/users/alice/activity", env["JUPYTERHUB_API_TOKEN"], json=body) as resp:
        assert resp.status == 400  # an hour in the future is refused, as in JupyterHub
    body = {"servers": {"project": {"last_activity": "2025-01-01T00:00:00Z"}}}
    before = (await hub.hub.servers.row("alice", "project")).last_activity
    async with hub.api("POST", "/users/alice/activity", env["JUPYTERHUB_API_TOKEN"], json=body) as resp:
        assert resp.status == 200
    assert (await hub.hub.servers.row("alice", "project")).last_activity == before  # older: not moved back
    soon = timeutil.isoformat(timeutil.now() + timedelta(minutes=1))
    body = {"servers": {"project": {"last_activity": soon}}}
    async with hub.api("POST", "/users/alice/activity", env["JUPYTERHUB_API_TOKEN"], json=body) as resp:
        assert resp.status == 200
    assert (await hub.hub.servers.row("alice", "project")).last_activity == soon
    body = {"servers": {"nope": {"last_activity": "2020-01-01T00:00:00Z"}}}
    async with hub.api("POST", "/users/alice/activity", env["JUPYTERHUB_API_TOKEN"], json=body) as resp:
        assert resp.status == 400 and "No such server" in (await resp.json())["message"]

    # The default server starts beside it.
    await hub.start_server("alice", token)
    assert hub.spawner.requests[-1].user == "alice"
    assert tokens.lookup(hub.db, env["JUPYTERHUB_API_TOKEN"]) is not None  # its token survives

    async with hub.api("DELETE", "/users/alice/servers/project", token) as resp:
        assert resp.status == 204
    assert await hub.hub.servers.state("alice", "project") == "stopped"
    assert await hub.hub.servers.state("alice") == "running"
    assert "/user/alice/project/" not in hub.proxy.routes and "/user/alice/" in hub.proxy.routes
    assert tokens.lookup(hub.db, env["JUPYTERHUB_API_TOKEN"]) is None
    async with hub.api("GET", "/users/alice?include_stopped_servers", token) as resp:
        assert (await resp.json())["servers"]["project"]["stopped"] is True

    async with hub.api("DELETE", "/users/alice/servers/project", token, json={"remove": True}) as resp:
        assert resp.status == 204
    assert await hub.hub.servers.row("alice", "project") is None
    async with hub.api("DELETE", "/users/alice/servers/project", token) as resp:
        assert resp.status == 404
    async with hub.api("GET", "/users/alice/servers/project/progress", token) as resp:
        assert resp.status == 404
    async with hub.api("DELETE", "/users/alice/server", token, json={"remove": True}) as resp:
        assert resp.status == 400 and (await resp.json())["message"] == "Cannot delete the default server"


async def test_remove_stops_a_running_named_server(start_hub):
    hub = await start_hub(NAMED)
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/servers/a1", token) as resp:
        assert resp.status == 202
    await _wait_state(hub, "alice", "a1", "running")
    async with hub.api("DELETE", "/users/alice/servers/a1", token, json={"remove": True}) as resp:
        assert resp.status == 204
    assert hub.spawner.stopped == ["alice-a1"]
    assert await hub.hub.servers.row("alice", "a1") is None


async def test_the_limit_counts_named_servers_stopped_or_not(start_hub):
    hub = await start_hub(NAMED)
    token = hub.token("alice")
    for server in ("one", "two"):
        async with hub.api("POST", f"/users/alice/servers/{server}", token) as resp:
            assert resp.status == 202
        await _wait_state(hub, "alice", server, "running")
    async with hub.api("DELETE", "/users/alice/servers/two", token) as resp:
        assert resp.status == 204
    async with hub.api("POST", "/users/alice/servers/three", token) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == ("User alice already has the maximum of 2 named servers."
                                                  "  One must be deleted before a new server can be created")
    async with hub.api("POST", "/users/alice/servers/two", token) as resp:
        assert resp.status == 202  # an existing one starts again
    await _wait_state(hub, "alice", "two", "running")
    async with hub.api("DELETE", "/users/alice/servers/one", token, json={"remove": True}) as resp:
        assert resp.status == 204
    async with hub.api("POST", "/users/alice/servers/three", token) as resp:
        assert resp.status == 202
    # Another user's limit is their own.
    bob = hub.token("bob")
    async with hub.api("POST", "/users/bob/servers/one", bob) as resp:
        assert resp.status == 202


@pytest.mark.parametrize("name", ["Project", "1st", "a--b", "a-", "a_b", "x" * 31, "caf\u00e9"])
async def test_an_invalid_new_server_name_is_refused(start_hub, name):
    hub = await start_hub(NAMED)
    async with hub.api("POST", f"/users/alice/servers/{name}", hub.token("alice")) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == f"Invalid server_name: {name}"


def test_server_names_follow_jupyterhubs_rule():
    assert all(valid_server_name(n) for n in ("a", "project", "ml-2", "x" * 30))
    assert not any(valid_server_name(n) for n in ("", "-a", "a-", "a--b", "A", "x" * 31))
    assert spawner_key("alice") == "alice" and spawner_key("alice", "ml") == "alice-ml"


async def test_another_users_token_cannot_start_a_named_server(start_hub):
    hub = await start_hub(NAMED)
    hub.token("alice")
    async with hub.api("POST", "/users/alice/servers/project", hub.token("bob")) as resp:
        assert resp.status == 404  # JupyterHub hides users one may not see


async def test_server_scoped_token_reaches_only_its_server(start_hub):
    hub = await start_hub(NAMED)
    hub.token("alice")
    token = hub.token("admin", ["delete:servers!server=alice/project", "start:servers!server=alice/project"])
    async with hub.api("POST", "/users/alice/servers/project", token) as resp:
        assert resp.status == 202
    async with hub.api("POST", "/users/alice/servers/other", token) as resp:
        assert resp.status in (403, 404)


async def test_the_culler_removes_idle_named_servers_when_told(start_hub):
    from tljh_daemon.culler import Culler
    from tljh_daemon.settings import CullSettings

    hub = await start_hub(NAMED)
    token = hub.token("alice")
    for server in ("keep", "gone"):
        async with hub.api("POST", f"/users/alice/servers/{server}", token) as resp:
            assert resp.status == 202
        await _wait_state(hub, "alice", server, "running")
    await hub.hub.db.execute("UPDATE servers SET last_activity='2000-01-01T00:00:00Z' WHERE name='gone'")
    culled = await Culler(hub.hub, CullSettings(timeout=600, remove_named_servers=True)).cull_once()
    assert culled == ["alice"]
    assert await hub.hub.servers.row("alice", "gone") is None
    assert await hub.hub.servers.state("alice", "keep") == "running"
    await hub.hub.db.execute("UPDATE servers SET last_activity='2000-01-01T00:00:00Z' WHERE name='keep'")
    await Culler(hub.hub, CullSettings(timeout=600)).cull_once()
    assert (await hub.hub.servers.row("alice", "keep")).state == "stopped"  # stopped, kept


async def test_home_page_lists_starts_stops_and_deletes_named_servers(start_hub):
    hub = await start_hub({"named_servers": {"enabled": True, "limit_per_user": 1}})
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert 'id="named-servers"' in page and 'name="server_name"' in page and "up to 1" in page
    form = {"_xsrf": browser.xsrf, "server_name": "\u200bBad"}
    async with browser.request("POST", "/hub/named-servers", data=form) as resp:
        assert resp.status == 400 and "Invalid server name" in await resp.text()
    form["server_name"] = "ml"
    async with browser.request("POST", "/hub/named-servers", data=form) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/hub/spawn-pending/alice/ml"
    await _wait_state(hub, "alice", "ml", "running")
    async with browser.request("GET", "/hub/spawn-pending/alice/ml") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/user/alice/ml/"
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert 'id="named-ml"' in page and 'href="/user/alice/ml/"' in page and 'action="/hub/stop/alice/ml"' in page
    assert 'name="server_name"' not in page  # the limit is reached: no name field
    assert 'id="server-status">Stopped' in page  # the default server is its own
    async with browser.request("POST", "/hub/stop/alice/ml", data={"_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
    assert await hub.hub.servers.state("alice", "ml") == "stopped"
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert 'action="/hub/delete/alice/ml"' in page and 'action="/hub/spawn/alice/ml"' in page
    async with browser.request("POST", "/hub/delete/alice/ml", data={"_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
    assert await hub.hub.servers.row("alice", "ml") is None
    # Another user's servers are not yours to manage.
    other = await hub.browser("bob")
    async with other.request("POST", "/hub/spawn/alice/ml", data={"_xsrf": other.xsrf}) as resp:
        assert resp.status == 403


@pytest.mark.parametrize("text", ["Homework 3", "Über Analyse", "2024 data", "数据", "a" * 40, "x--y", "ml"])
def test_a_server_name_is_made_from_any_display_name(text):
    name = server_name_for(text)
    assert valid_server_name(name), name
    if valid_server_name(text):
        assert name == text
    else:
        assert name != server_name_for(text + ".") and name == server_name_for(text)
    assert server_name_for("Homework 3").startswith("homework-3-")
    assert server_name_for("Über Analyse").startswith("uber-analyse-")


async def test_the_home_page_takes_a_display_name_for_a_new_server(start_hub):
    hub = await start_hub(NAMED)
    browser = await hub.browser("alice")
    form = {"_xsrf": browser.xsrf, "server_name": "  Homework   3 "}
    async with browser.request("POST", "/hub/named-servers", data=form) as resp:
        assert resp.status == 302
    server = server_name_for("Homework 3")
    assert resp.headers["Location"] == f"/hub/spawn-pending/alice/{server}"
    await _wait_state(hub, "alice", server, "running")
    async with hub.api("GET", f"/users/alice/servers/{server}", hub.token("alice")) as resp:
        assert (await resp.json())["display_name"] == "Homework 3"
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert f'>Homework 3</a>\n      <span class="muted">({server})</span>' in page


async def test_home_page_has_no_named_servers_when_off(start_hub):
    hub = await start_hub()
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        assert 'id="named-servers"' not in await resp.text()


async def test_admin_panel_shows_named_servers(start_hub):
    hub = await start_hub(NAMED)
    async with hub.api("POST", "/users/alice/servers/ml", hub.token("alice")) as resp:
        assert resp.status == 202
    await _wait_state(hub, "alice", "ml", "running")
    browser = await hub.browser("root")
    hub.db.execute("UPDATE users SET admin=1 WHERE name='root'")
    async with browser.request("GET", "/hub/admin") as resp:
        page = await resp.text()
    assert 'Named: <a href="/user/alice/ml/">ml</a> (running)' in page


async def test_a_demoted_admins_named_servers_restart_too(start_hub):
    from tljh_daemon import admins

    hub = await start_hub(NAMED)
    token = hub.token("root", admin=True)
    for path in ("/users/root/server", "/users/root/servers/ml"):
        async with hub.api("POST", path, token) as resp:
            assert resp.status == 202
    await _wait_state(hub, "root", "ml", "running")
    await hub.wait_for_state("root", "running")
    started = len(hub.spawner.requests)
    message = await admins.demoted_server(hub.hub, "root")
    assert "restarted without admin rights" in message

    async def both_started():
        return sorted(r.user for r in hub.spawner.requests[started:]) == ["root", "root-ml"]

    await hub.wait_for(both_started, "the default and the named server to start again")


async def test_get_and_put_a_named_server_as_jupyterhub_6_does(start_hub):
    hub = await start_hub(NAMED)
    token = hub.token("alice")
    async with hub.api("GET", "/users/alice/servers/ml", token) as resp:
        assert resp.status == 404
    async with hub.api("PUT", "/users/alice/servers/ml", token, json={}) as resp:
        assert resp.status == 201
        model = await resp.json()
    assert model["name"] == "ml" and model["stopped"] is True and model["ready"] is False
    assert hub.spawner.requests == []  # made, not started
    async with hub.api("PUT", "/users/alice/servers/ml", token) as resp:
        assert resp.status == 409
    async with hub.api("PUT", "/users/alice/servers/Bad", token) as resp:
        assert resp.status == 400
    async with hub.api("PUT", "/users/alice/servers/ok", token, json={"user_options": 3}) as resp:
        assert resp.status == 400
    async with hub.api("GET", "/users/alice/servers/ml", token) as resp:
        assert resp.status == 200 and (await resp.json())["url"] == "/user/alice/ml/"
    async with hub.api("POST", "/users/alice/servers/ml", token) as resp:
        assert resp.status == 202
    await _wait_state(hub, "alice", "ml", "running")
    async with hub.api("PUT", "/users/alice/servers/two", token) as resp:
        assert resp.status == 201
    async with hub.api("PUT", "/users/alice/servers/three", token) as resp:
        assert resp.status == 400 and "maximum of 2" in (await resp.json())["message"]


async def _call(hub, method, path, token, **kwargs):
    async with hub.api(method, path, token, **kwargs) as resp:
        return resp.status, (await resp.json() if resp.content_type.endswith("json") else None)


async def test_display_names_as_jupyterhub_6_sets_them(start_hub):
    hub = await start_hub(NAMED)
    token = hub.token("alice")
    status, model = await _call(hub, "PUT", "/users/alice/servers/ml", token, json={"display_name": "Cafe\u0301 ML"})
    assert status == 201 and model["display_name"] == "Caf\u00e9 ML"  # NFC, as JupyterHub stores it
    status, model = await _call(hub, "GET", "/users/alice/servers/ml", token)
    assert model["display_name"] == "Caf\u00e9 ML" and model["name"] == "ml"
    for bad in (" lead", "two  spaces", "tab\there", "", "x" * 256, 7):
        status, error = await _call(hub, "PUT", "/users/alice/servers/two", token, json={"display_name": bad})
        assert status == 400 and "display_name" in error["message"], bad
    # A start may name one; without one the name shows. A body of neither key is the user_options.
    assert (await _call(hub, "POST", "/users/alice/servers/two", token, json={"display_name": "Second"}))[0] == 202
    await _wait_state(hub, "alice", "two", "running")
    status, user = await _call(hub, "GET", "/users/alice", token, params={"include_stopped_servers": "1"})
    assert {k: v["display_name"] for k, v in user["servers"].items()} == {"ml": "Caf\u00e9 ML", "two": "Second"}
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert "Caf\u00e9 ML" in page and "(ml)" in page and ">Second</a>" in page


async def test_patch_renames_a_stopped_server_as_jupyterhub_6_does(start_hub):
    hub = await start_hub({**NAMED, "sharing": {"enabled": True}, "profiles": [
        {"slug": "small", "display_name": "Small", "limits": {"memory": "1G"}},
        {"slug": "big", "display_name": "Big", "default": True, "limits": {"memory": "4G"}}]})
    token = hub.token("alice", ["inherit"])
    hub.add_user("bob")
    assert (await _call(hub, "POST", "/users/alice/servers/draft", token))[0] == 202
    await _wait_state(hub, "alice", "draft", "running")
    assert (await _call(hub, "POST", "/shares/alice/draft", token, json={"user": "bob"}))[0] == 200

    status, error = await _call(hub, "PATCH", "/users/alice/servers/draft", token, json={"name": "final"})
    assert status == 400 and "Please stop it before modifying it" in error["message"]
    async with hub.api("DELETE", "/users/alice/servers/draft", token) as resp:
        assert resp.status in (202, 204)
    await _wait_state(hub, "alice", "draft", "stopped")

    for body, code in (({}, 400), ({"colour": "red"}, 400), ({"name": 3}, 400), ({"name": "Bad Name"}, 400),
                       ({"user_options": []}, 400), ({"user_options": {"profile": "huge"}}, 400),
                       ({"display_name": "  "}, 400)):
        status, error = await _call(hub, "PATCH", "/users/alice/servers/draft", token, json=body)
        assert status == code and error["message"], body
    assert (await _call(hub, "PATCH", "/users/alice/servers/nope", token, json={"name": "x"}))[0] == 404
    assert (await _call(hub, "PUT", "/users/alice/servers/other", token))[0] == 201
    status, error = await _call(hub, "PATCH", "/users/alice/servers/draft", token, json={"name": "other"})
    assert status == 409, error
    # At the limit (2) a rename still fits: it adds no server.
    status, model = await _call(hub, "PATCH", "/users/alice/servers/draft", token,
                                json={"name": "final", "display_name": "Final report", "user_options": {"profile": "small"}})
    assert status == 200, model
    assert (model["name"], model["display_name"], model["stopped"]) == ("final", "Final report", True)
    assert model["url"] == "/user/alice/final/" and model["user_options"] == {"profile": "small"}
    assert (await _call(hub, "GET", "/users/alice/servers/draft", token))[0] == 404

    # bob's share followed it, scopes and all.
    status, page = await _call(hub, "GET", "/shares/alice/final", token)
    assert [(s["user"]["name"], s["scopes"]) for s in page["items"]] == [("bob", ["access:servers!server=alice/final"])]
    assert (await _call(hub, "GET", "/shares/alice/draft", token))[0] == 404  # no such server now

    # It starts under its new name with the options PATCH gave it (a POST without body reuses them).
    assert (await _call(hub, "POST", "/users/alice/servers/final", token))[0] == 202
    await _wait_state(hub, "alice", "final", "running")
    request = hub.spawner.requests[-1]
    assert request.user == "alice-final" and request.limits == {"memory": "1G"}
    assert request.env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/alice/final/"
    assert "/user/alice/final/" in hub.proxy.routes and "/user/alice/draft/" not in hub.proxy.routes


async def test_a_link_to_a_stopped_named_server_starts_it(start_hub):
    hub = await start_hub(NAMED)
    token = hub.token("alice")
    async with hub.api("PUT", "/users/alice/servers/ml", token) as resp:
        assert resp.status == 201
    browser = await hub.browser("alice")
    # Traefik sends /user/alice/ml/... to the hub while ml has no route.
    async with browser.request("GET", "/hub/user/alice/ml/lab/tree/a.ipynb") as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/hub/spawn/alice/ml?next=/user/alice/ml/lab/tree/a.ipynb"
    async with browser.request("GET", resp.headers["Location"]) as resp:
        assert resp.status == 302
        assert resp.headers["Location"].startswith("/hub/spawn-pending/alice/ml?next=")
    await _wait_state(hub, "alice", "ml", "running")
    async with browser.request("GET", "/hub/spawn-pending/alice/ml?next=%2Fuser%2Falice%2Fml%2Flab") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/user/alice/ml/lab"
    async with browser.request("GET", "/hub/spawn/alice/ml") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/user/alice/ml/"
    # A path under the default server that names no named server stays the default's.
    async with browser.request("GET", "/hub/user/alice/lab") as resp:
        assert resp.status == 302 and resp.headers["Location"].startswith("/hub/spawn/alice?")


async def test_a_new_named_server_gets_the_profile_chosen_beside_its_name(start_hub):
    hub = await start_hub({**NAMED, "profiles": [
        {"slug": "small", "display_name": "Small", "limits": {"memory": "1G"}},
        {"slug": "big", "display_name": "Big", "default": True, "limits": {"memory": "4G"}}]})
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert '<select id="server-profile" name="profile">' in page and '<option value="big" selected>' in page
    form = {"_xsrf": browser.xsrf, "server_name": "ml", "profile": "small"}
    async with browser.request("POST", "/hub/named-servers", data=form) as resp:
        assert resp.status == 302
    await _wait_state(hub, "alice", "ml", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "1G"}
    async with browser.request("POST", "/hub/stop/alice/ml", data={"_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
    async with browser.request("POST", "/hub/spawn/alice/ml", data={"_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
    await _wait_state(hub, "alice", "ml", "running")
    assert hub.spawner.requests[-1].limits == {"memory": "1G"}  # started again with its profile
    async with hub.api("GET", "/users/alice/servers/ml", hub.token("alice")) as resp:
        assert (await resp.json())["user_options"] == {"profile": "small"}


async def test_a_named_server_may_not_share_another_servers_unit(start_hub):
    hub = await start_hub(NAMED)
    hub.token("a-b")  # user a-b: its default server is jupyter-a-b
    async with hub.api("POST", "/users/a/servers/b", hub.token("a")) as resp:
        assert resp.status == 400 and "not available" in (await resp.json())["message"]
    async with hub.api("PUT", "/users/a/servers/c-d", hub.token("a")) as resp:
        assert resp.status == 201
    async with hub.api("PUT", "/users/a-c/servers/d", hub.token("a-c")) as resp:
        assert resp.status == 400  # jupyter-a-c-d is a/c-d's
