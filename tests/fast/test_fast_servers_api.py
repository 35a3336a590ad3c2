"""Server start/stop, the progress event stream, activity reports and spawn failures,
through ServerManager's real code path (the spawner only is fake)."""

import json
from datetime import timedelta

from tljh_daemon import timeutil, tokens


async def _events(hub, name, token):
    """The progress stream of `name`'s server, read to its end."""
    async with hub.api("GET", f"/users/{name}/server/progress", token) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"] == "text/event-stream"
        text = await resp.text()
    return [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]


async def test_start_stop_and_routes(hub):
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    events = await _events(hub, "alice", token)
    assert events[-1]["ready"] is True and events[-1]["url"] == "/user/alice/"
    assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)
    assert (await hub.hub.servers.state("alice")) == "running"
    assert hub.proxy.routes["/user/alice/"].startswith("http://127.0.0.1:")
    async with hub.api("GET", "/users/alice", token) as resp:
        model = await resp.json()
    assert model["server"] == "/user/alice/" and model["pending"] is None
    assert model["servers"][""]["ready"] is True
    assert model["servers"][""]["progress_url"] == "/hub/api/users/alice/server/progress"
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 400
        assert "already running" in (await resp.json())["message"]
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 204
    assert (await hub.hub.servers.state("alice")) == "stopped"
    assert "/user/alice/" not in hub.proxy.routes
    assert hub.spawner.stopped == ["alice"]
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 204  # stopping a stopped server is fine
    async with hub.api("GET", "/users/alice/server/progress", token) as resp:
        assert resp.status == 400  # nothing to report for a stopped server


async def test_spawn_request_carries_the_hub_contract(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    (request,) = hub.spawner.requests
    env = request.env
    assert request.username == "jupyter-alice" and request.user == "alice"
    assert env["JUPYTERHUB_USER"] == "alice"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/alice/"
    assert env["JUPYTERHUB_CLIENT_ID"] == "jupyterhub-user-alice"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/user/alice/oauth_callback"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert env["JUPYTERHUB_ACTIVITY_URL"].endswith("/hub/api/users/alice/activity")
    # The server's token works for its own identity, only with the server role's scopes.
    row = tokens.lookup(hub.db, env["JUPYTERHUB_API_TOKEN"])
    assert row["kind"] == "server" and row["user"] == "alice"
    async with hub.api("GET", "/user", env["JUPYTERHUB_API_TOKEN"]) as resp:
        assert resp.status == 200
        assert set((await resp.json())["scopes"]) == tokens.scopes_of(row)
    async with hub.api("GET", "/users", env["JUPYTERHUB_API_TOKEN"]) as resp:
        assert resp.status == 403
    # Stopping revokes it.
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 204
    assert tokens.lookup(hub.db, env["JUPYTERHUB_API_TOKEN"]) is None


async def test_limits_reach_the_server_environment_as_jupyterhub_sets_them(start_hub):
    hub = await start_hub()
    await hub.start_server("alice", hub.token("alice"))
    assert not {"MEM_LIMIT", "CPU_LIMIT", "MEM_GUARANTEE", "CPU_GUARANTEE"} & set(hub.spawner.requests[-1].env)
    hub = await start_hub({"limits": {"memory": "1.5G", "cpu": 2}})
    await hub.start_server("alice", hub.token("alice"))
    env = hub.spawner.requests[-1].env
    assert (env["MEM_LIMIT"], env["CPU_LIMIT"]) == (str(int(1.5 * 1024**3)), "2.0")


async def test_account_step_gets_admin_and_extra_groups(start_hub):
    hub = await start_hub({"users": {"extra_user_groups": {"teachers": ["tina"], "other": ["x"]}}})
    await hub.start_server("tina", hub.token("tina", admin=True))
    assert hub.accounts.calls == [("jupyter-tina", True, ["teachers"], True)]


async def test_default_app_and_public_url_env(start_hub, tmp_path):
    hub = await start_hub({"user_environment": {"default_app": "classic"}})
    await hub.start_server("alice", hub.token("alice"))
    assert hub.spawner.requests[0].env["JUPYTERHUB_DEFAULT_URL"] == "/tree"
    assert "JUPYTERHUB_PUBLIC_URL" not in hub.spawner.requests[0].env


async def test_start_while_pending_is_400_and_stop_cancels(hub):
    hub.spawner.never_answer = True
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    assert (await hub.hub.servers.state("alice")) == "pending"
    async with hub.api("GET", "/users/alice", token) as resp:
        assert (await resp.json())["pending"] == "spawn"
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 400
        assert "pending" in (await resp.json())["message"]
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status in (202, 204)
    # Cancelled, not failed: nothing went wrong (the admin panel and home page say so).
    await hub.wait_for_state("alice", "cancelled")
    assert "/user/alice/" not in hub.proxy.routes
    assert hub.spawner.running == {}
    async with hub.api("GET", "/users/alice?include_stopped_servers=1", token) as resp:
        model = await resp.json()
    assert model["pending"] is None and model["server"] is None
    assert model["servers"][""]["stopped"] is True and model["servers"][""]["ready"] is False
    async with hub.api("GET", "/users/alice/server/progress", token) as resp:
        text = await resp.text()
    assert '"cancelled": true' in text and "The start was cancelled" in text
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/spawn-pending/alice") as r:
        assert r.headers["Location"] == "/hub/home"  # not restarted behind the admin's back
    async with browser.request("GET", "/hub/home") as r:
        assert "The last start was cancelled" in await r.text()
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202  # and it can be started again


async def test_concurrent_spawn_limit_is_429_with_retry_after(start_hub):
    hub = await start_hub({"spawner": {"concurrent_spawn_limit": 1}})
    hub.spawner.never_answer = True
    async with hub.api("POST", "/users/a/server", hub.token("a")) as resp:
        assert resp.status == 202
    async with hub.api("POST", "/users/b/server", hub.token("b")) as resp:
        assert resp.status == 429
        assert 5 <= int(resp.headers["Retry-After"]) <= 15
        assert "Too many" in (await resp.json())["message"]
    assert (await hub.hub.servers.state("b")) == "stopped"


async def test_concurrent_spawn_limit_applies_to_the_browser_too(start_hub):
    """JupyterHub refuses a spawn from the spawn page as from the API: a 429 error page."""
    hub = await start_hub({"spawner": {"concurrent_spawn_limit": 1}})
    hub.spawner.never_answer = True
    a = await hub.browser("a")
    async with a.request("GET", "/hub/spawn") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/hub/spawn-pending/a"
    b = await hub.browser("b")
    for method, data in (("GET", None), ("POST", {"_xsrf": b.xsrf})):
        async with b.request(method, "/hub/spawn", data=data) as resp:
            assert resp.status == 429, method
            assert 5 <= int(resp.headers["Retry-After"]) <= 15
            assert resp.content_type == "text/html" and "Too many users" in await resp.text()
    assert (await hub.hub.servers.state("b")) == "stopped" and [r.user for r in hub.spawner.requests] == ["a"]
    async with a.request("GET", "/hub/spawn") as resp:  # a's own pending spawn is shown, not refused
        assert resp.status == 302 and resp.headers["Location"] == "/hub/spawn-pending/a"


async def test_named_servers_are_refused(hub):
    token = hub.token("alice")
    for method in ("POST", "DELETE"):
        async with hub.api(method, "/users/alice/servers/extra", token) as resp:
            assert resp.status == 400
            assert "Named servers" in (await resp.json())["message"]


async def test_an_empty_server_name_is_the_default_server(start_hub):
    """JupyterHub's router: /users/<name>/servers/ (empty name) is the default server."""
    hub = await start_hub({"base_url": "/jupyter/"})
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/servers/", token) as resp:
        assert resp.status == 202, await resp.text()
    async with hub.api("GET", "/users/alice/servers//progress", token) as resp:
        events = [line for line in (await resp.text()).splitlines() if line.startswith("data:")]
    assert '"ready": true' in events[-1], events
    assert (await hub.hub.servers.state("alice")) == "running"
    async with hub.api("GET", "/users/alice", token) as resp:
        assert "" in (await resp.json())["servers"]
    async with hub.api("DELETE", "/users/alice/servers/", token) as resp:
        assert resp.status in (202, 204)
    await hub.wait_for_state("alice", "stopped")
    bob = hub.token("bob")
    async with hub.api("POST", "/users/alice/servers/", bob) as resp:
        assert resp.status in (403, 404), "the same scope checks as /server"


async def test_users_cannot_start_or_stop_others(hub):
    hub.add_user("bob")
    alice = hub.token("alice")
    for method in ("POST", "DELETE"):
        async with hub.api(method, "/users/bob/server", alice) as resp:
            assert resp.status == 404
    assert hub.spawner.requests == []


async def test_admin_starts_and_stops_anyone(hub):
    admin = hub.token("boss", admin=True)
    hub.add_user("bob")
    await hub.start_server("bob", admin)
    async with hub.api("DELETE", "/users/bob/server", admin) as resp:
        assert resp.status == 204
    assert hub.spawner.stopped == ["bob"]


async def test_spawn_failure_is_reported_and_retry_works(hub):
    token = hub.token("alice")
    hub.spawner.fail_start = "the quota is exhausted"
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    events = await _events(hub, "alice", token)
    assert events[-1]["failed"] is True
    assert "the quota is exhausted" in events[-1]["message"]
    assert (await hub.hub.servers.row("alice")).message == "the quota is exhausted"
    assert hub.proxy.routes == {}
    assert hub.db.one("SELECT COUNT(*) FROM api_tokens WHERE user='alice' AND kind='server'")[0] == 0
    # A failed server is not "running" in the model, and the next start goes through.
    async with hub.api("GET", "/users/alice", token) as resp:
        assert (await resp.json())["servers"] == {}
    hub.spawner.fail_start = None
    await hub.start_server("alice", token)
    assert "/user/alice/" in hub.proxy.routes


async def test_server_exiting_before_ready_reports_log_tail(hub):
    token = hub.token("alice")
    hub.spawner.exit_on_start = "exited with status 1"
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    events = await _events(hub, "alice", token)
    assert events[-1]["failed"] is True
    assert "exited with status 1" in events[-1]["message"]
    assert "ImportError" in events[-1]["message"]  # the last lines of the server's log


async def test_start_timeout_names_the_config_key(start_hub):
    hub = await start_hub({"spawner": {"start_timeout": 0.3}})
    hub.spawner.never_answer = True
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    events = await _events(hub, "alice", token)
    assert events[-1]["failed"] is True
    assert "spawner.start_timeout" in events[-1]["message"]
    assert "alice" in hub.spawner.stopped  # the half-started server was stopped


async def test_missing_singleuser_and_account_errors_fail_clearly(hub, user_env_dir):
    import os
    token = hub.token("alice")
    hub.accounts.fail = "useradd failed: no space left"
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    events = await _events(hub, "alice", token)
    assert "useradd failed" in events[-1]["message"]
    hub.accounts.fail = None
    os.unlink(os.path.join(user_env_dir, "bin", "jupyterhub-singleuser"))
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    events = await _events(hub, "alice", token)
    assert "user_environment.path" in events[-1]["message"]
    assert hub.spawner.requests == []


async def test_progress_replay_after_the_fact(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    first = await _events(hub, "alice", token)
    again = await _events(hub, "alice", token)
    assert first == again  # replayable from the start
    assert first[0]["message"] == "Server requested"
    hub.hub.servers.progress.clear()  # as after a daemon restart
    (event,) = await _events(hub, "alice", token)
    assert event["ready"] is True and event["progress"] == 100


async def test_server_dying_is_noticed(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    await hub.spawner.exit("alice", "killed by signal 9")
    await hub.hub.servers.check_running()
    assert (await hub.hub.servers.state("alice")) == "stopped"
    assert (await hub.hub.servers.row("alice")).message == "killed by signal 9"
    assert "/user/alice/" not in hub.proxy.routes


async def test_activity_moves_forward_only(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    server_token = hub.spawner.requests[0].env["JUPYTERHUB_API_TOKEN"]
    # Ahead of the spawn's own activity, but within the hour JupyterHub allows a fast clock.
    stamp = timeutil.isoformat(timeutil.now() + timedelta(minutes=30))
    older = timeutil.isoformat(timeutil.now() - timedelta(days=1))
    body = {"last_activity": stamp, "servers": {"": {"last_activity": stamp}}}
    async with hub.api("POST", "/users/alice/activity", server_token, json=body) as resp:
        assert resp.status == 200  # as JupyterHub answers
    async with hub.api("POST", "/users/alice/activity", server_token, json={"last_activity": older}) as resp:
        assert resp.status == 200
    async with hub.api("GET", "/users/alice", token) as resp:
        model = await resp.json()
    assert model["last_activity"] == stamp
    assert model["servers"][""]["last_activity"] == stamp
    hub.add_user("bob")
    async with hub.api("POST", "/users/bob/activity", server_token, json={"last_activity": stamp}) as resp:
        assert resp.status in (403, 404)


async def test_activity_rejects_bad_bodies(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    bad = [{"last_activity": "yesterday"}, {"last_activity": 5}, {"servers": []},
           {"servers": {"": {}}}, {"servers": {"other": {"last_activity": "2030-01-01T00:00:00Z"}}}]
    for body in bad:
        async with hub.api("POST", "/users/alice/activity", token, json=body) as resp:
            assert resp.status == 400, body
            assert (await resp.json())["message"], body
    async with hub.api("POST", "/users/alice/activity", token) as resp:
        assert resp.status == 400  # a body is required


async def _read_until(resp, predicate, timeout=10):
    """Events of a live progress stream until one matches `predicate`."""
    import asyncio
    events = []

    async def read():
        async for line in resp.content:
            if line.startswith(b"data: "):
                events.append(json.loads(line[len(b"data: "):]))
                if predicate(events[-1]):
                    return

    await asyncio.wait_for(read(), timeout)
    return events


async def test_busy_machine_queues_starts_and_shows_the_place_in_line(start_hub):
    hub = await start_hub({"spawner": {"concurrent_starts": 1}})
    hub.spawner.silent = {"first"}
    first, second = hub.token("first"), hub.token("second")
    async with hub.api("POST", "/users/first/server", first) as resp:
        assert resp.status == 202
    await hub.wait_for(lambda: hub.spawner.requests, "the first server to be launched")
    async with hub.api("POST", "/users/second/server", second) as resp:
        assert resp.status == 202
    async with hub.api("GET", "/users/second/server/progress", second) as resp:
        events = await _read_until(resp, lambda e: "queue_position" in e)
    assert events[-1]["queue_position"] == 1
    assert "1 server is ahead" in events[-1]["message"]
    assert [r.user for r in hub.spawner.requests] == ["first"]  # the second waits its turn
    async with hub.api("DELETE", "/users/first/server", first) as resp:
        assert resp.status in (202, 204)
    await hub.wait_for_state("second", "running")  # the freed slot goes to the next in line


async def test_progress_streams_live_while_pending(hub):
    hub.spawner.never_answer = True
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/server", token) as resp:
        assert resp.status == 202
    async with hub.api("GET", "/users/alice/server/progress", token) as resp:
        events = await _read_until(resp, lambda e: e["progress"] >= 50)
    assert events[-1]["message"] == "Waiting for the server to respond"
    assert not any(e.get("ready") or e.get("failed") for e in events)
