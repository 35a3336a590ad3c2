"""REST semantics of /hub/api, /hub/api/users and friends (JupyterHub's shapes and status codes)."""

PAGINATED = {"Accept": "application/jupyterhub-pagination+json"}


async def test_api_root_and_health_need_no_credentials(hub):
    async with hub.api("GET", "") as resp:
        assert resp.status == 200
        assert (await resp.json())["version"] == hub.hub.jupyterhub_version
        assert resp.headers["X-JupyterHub-Version"] == hub.hub.jupyterhub_version
    for path in ("/hub/health", "/hub/api/health"):
        async with hub.request("GET", path) as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}


async def test_info_needs_read_hub(hub):
    async with hub.api("GET", "/info", hub.token("alice")) as resp:
        assert resp.status == 403
    async with hub.api("GET", "/info", hub.token("root1", admin=True)) as resp:
        assert resp.status == 200
        info = await resp.json()
    assert info["spawner"]["class"] == "FakeSpawner"
    assert info["authenticator"]["class"] == "DummyAuthenticator"
    assert info["version"] == hub.hub.jupyterhub_version


async def test_errors_are_json_with_status_and_message(hub):
    async with hub.api("GET", "/users") as resp:
        assert resp.status == 403
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["status"] == 403 and body["message"]
    async with hub.api("GET", "/no-such-endpoint", hub.token("a", admin=True)) as resp:
        assert resp.status == 404
        assert (await resp.json())["status"] == 404
    async with hub.api("POST", "/users", hub.token("a", admin=True), data="{not json") as resp:
        assert resp.status == 400
        assert "Invalid JSON" in (await resp.json())["message"]
    async with hub.api("POST", "/users", hub.token("a", admin=True), json=["a list"]) as resp:
        assert resp.status == 400
        assert "JSON object" in (await resp.json())["message"]


async def test_unknown_or_malformed_token_is_403_on_user(hub):
    for header in ("token not-a-real-token", "bearer nope", "Basic abc"):
        async with hub.request("GET", "/hub/api/user", headers={"Authorization": header}) as resp:
            assert resp.status == 403, header
            assert (await resp.json())["status"] == 403


async def test_user_model_of_self(hub):
    token = hub.token("alice")
    async with hub.api("GET", "/user", token) as resp:
        assert resp.status == 200
        model = await resp.json()
    assert model["kind"] == "user" and model["name"] == "alice"
    assert model["admin"] is False
    assert model["roles"] == ["user"]
    assert model["servers"] == {} and model["server"] is None and model["pending"] is None
    assert "servers!user=alice" in model["scopes"]
    assert "admin:users" not in model["scopes"]


async def test_create_read_modify_delete_user(hub):
    admin = hub.token("boss", admin=True)
    async with hub.api("POST", "/users", admin, json={"usernames": ["Carol", "dave", "dave"]}) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert [u["name"] for u in created] == ["carol", "dave"]  # normalized, deduplicated
    async with hub.api("POST", "/users", admin, json={"usernames": ["carol"]}) as resp:
        assert resp.status == 409
    async with hub.api("POST", "/users/erin", admin, json={"admin": True}) as resp:
        assert resp.status == 201
        assert (await resp.json())["admin"] is True
    async with hub.api("POST", "/users/erin", admin) as resp:
        assert resp.status == 409
    async with hub.api("GET", "/users/carol", admin) as resp:
        assert resp.status == 200
        assert (await resp.json())["name"] == "carol"
    async with hub.api("PATCH", "/users/carol", admin, json={"admin": True}) as resp:
        assert resp.status == 200
        assert (await resp.json())["admin"] is True
    async with hub.api("PATCH", "/users/carol", admin, json={"name": "caroline"}) as resp:
        assert resp.status == 400
        assert "Renaming" in (await resp.json())["message"]
    async with hub.api("PATCH", "/users/carol", admin, json={"shoe_size": 9}) as resp:
        assert resp.status == 400
        assert "shoe_size" in (await resp.json())["message"]
    async with hub.api("DELETE", "/users/carol", admin) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/users/carol", admin) as resp:
        assert resp.status == 404
    async with hub.api("DELETE", "/users/carol", admin) as resp:
        assert resp.status == 404


async def test_create_users_rejects_bad_bodies(hub):
    admin = hub.token("boss", admin=True)
    bad = [{}, {"usernames": []}, {"usernames": "alice"}, {"usernames": [3]}, {"usernames": ["a/b"]},
           {"usernames": ["ok"], "admin": "yes"}, {"usernames": [" "]}]
    for body in bad:
        async with hub.api("POST", "/users", admin, json=body) as resp:
            assert resp.status == 400, body
            assert (await resp.json())["message"], body
    async with hub.api("POST", "/users/x%2Fy", admin) as resp:
        assert resp.status in (400, 404)
    async with hub.api("PATCH", "/users/boss", admin, json={"admin": "no"}) as resp:
        assert resp.status == 400


async def test_admin_cannot_delete_self_and_users_cannot_manage_users(hub):
    admin = hub.token("boss", admin=True)
    async with hub.api("DELETE", "/users/boss", admin) as resp:
        assert resp.status == 400
        assert "yourself" in (await resp.json())["message"]
    alice = hub.token("alice")
    hub.add_user("bob")
    async with hub.api("POST", "/users", alice, json={"usernames": ["mallory"]}) as resp:
        assert resp.status == 403
    async with hub.api("PATCH", "/users/alice", alice, json={"admin": True}) as resp:
        assert resp.status == 403
    # Another user is not even revealed to exist.
    async with hub.api("GET", "/users/bob", alice) as resp:
        assert resp.status == 404
    async with hub.api("GET", "/users/nobody-here", alice) as resp:
        assert resp.status == 404
    async with hub.api("GET", "/users", alice) as resp:
        assert resp.status == 403


async def test_deleting_a_user_stops_their_server(hub):
    admin = hub.token("boss", admin=True)
    await hub.start_server("alice", hub.token("alice"))
    assert "/user/alice/" in hub.proxy.routes
    async with hub.api("DELETE", "/users/alice", admin) as resp:
        assert resp.status == 204
    await hub.wait_for_state("alice", "stopped")
    assert "/user/alice/" not in hub.proxy.routes
    assert "alice" in hub.spawner.stopped


async def _names(hub, token, query="", headers=None):
    async with hub.api("GET", "/users" + query, token, headers=headers or {}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return [u["name"] for u in (body["items"] if isinstance(body, dict) else body)]


async def test_list_users_sort_filter_offset_limit(hub):
    admin = hub.token("boss", admin=True)
    for name in ("zed", "amy", "mia", "tim_x", "timmy"):
        hub.add_user(name)
    assert await _names(hub, admin) == ["boss", "zed", "amy", "mia", "tim_x", "timmy"]  # id order
    assert await _names(hub, admin, "?sort=name") == ["amy", "boss", "mia", "tim_x", "timmy", "zed"]
    assert await _names(hub, admin, "?sort=-name") == ["zed", "timmy", "tim_x", "mia", "boss", "amy"]
    assert await _names(hub, admin, "?sort=name&offset=1&limit=2") == ["boss", "mia"]
    assert await _names(hub, admin, "?name_filter=tim") == ["tim_x", "timmy"]
    assert await _names(hub, admin, "?name_filter=_") == ["tim_x"]  # literal, not a LIKE wildcard
    assert await _names(hub, admin, "?name_filter=%25") == []
    for query in ("?sort=age", "?offset=x", "?limit=ten", "?state=sleepy"):
        async with hub.api("GET", "/users" + query, admin) as resp:
            assert resp.status == 400, query
            assert (await resp.json())["message"], query


async def test_list_users_sort_by_last_activity(hub):
    admin = hub.token("boss", admin=True)  # never active: NULL sorts lowest, as in SQLite
    for name, stamp in (("new", "2024-01-01T00:00:00.000000Z"), ("old", "2020-01-01T00:00:00.000000Z")):
        hub.add_user(name)
        hub.db.execute("UPDATE users SET last_activity=? WHERE name=?", (stamp, name))
    ascending = await _names(hub, admin, "?sort=last_activity")
    assert ascending == ["boss", "old", "new"]
    assert await _names(hub, admin, "?sort=-last_activity") == ascending[::-1]


async def test_list_users_state_filter(hub):
    admin = hub.token("boss", admin=True)
    hub.add_user("idle")
    await hub.start_server("busy", hub.token("busy"))
    assert await _names(hub, admin, "?state=ready") == ["busy"]
    assert await _names(hub, admin, "?state=active") == ["busy"]
    assert await _names(hub, admin, "?state=inactive") == ["boss", "idle"]


async def test_pagination_envelope_and_next_link(hub):
    admin = hub.token("boss", admin=True)
    for i in range(4):
        hub.add_user(f"u{i}")
    async with hub.api("GET", "/users?limit=2&sort=name", admin, headers=PAGINATED) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/jupyterhub-pagination+json"
        page = await resp.json()
    assert [u["name"] for u in page["items"]] == ["boss", "u0"]
    meta = page["_pagination"]
    assert (meta["offset"], meta["limit"], meta["total"]) == (0, 2, 5)
    assert meta["next"]["offset"] == 2
    assert meta["next"]["url"].startswith("http://") and "offset=2" in meta["next"]["url"]
    async with hub.api("GET", "/users?limit=2&offset=4&sort=name", admin, headers=PAGINATED) as resp:
        last = await resp.json()
    assert [u["name"] for u in last["items"]] == ["u3"]
    assert last["_pagination"]["next"] is None
    async with hub.api("GET", "/users?limit=100000", admin, headers=PAGINATED) as resp:
        assert (await resp.json())["_pagination"]["limit"] == 200  # capped


async def test_include_stopped_servers(hub):
    admin = hub.token("boss", admin=True)
    alice = hub.token("alice")
    await hub.start_server("alice", alice)
    async with hub.api("DELETE", "/users/alice/server", alice) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/users/alice", admin) as resp:
        assert (await resp.json())["servers"] == {}
    async with hub.api("GET", "/users/alice?include_stopped_servers=1", admin) as resp:
        server = (await resp.json())["servers"][""]
    assert server["stopped"] is True and server["ready"] is False
    assert "alice" in await _names(hub, admin, "?include_stopped_servers=true")
