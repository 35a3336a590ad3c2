"""API tokens (scopes, expiry, never wider than their owner) and scope filters."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tljh_daemon import scopes, tokens


async def test_token_lifecycle(hub):
    token = hub.token("alice")
    async with hub.api("POST", "/users/alice/tokens", token, json={"note": "ci", "expires_in": 3600}) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert created["note"] == "ci" and created["kind"] == "api_token"
    assert created["token"] and created["id"].startswith("a")
    assert created["expires_at"].endswith("Z")
    assert set(created["scopes"]) == scopes.role_scopes("alice", False)
    # Only the hash is stored.
    assert hub.db.one("SELECT COUNT(*) FROM api_tokens WHERE hash=?", (created["token"],))[0] == 0
    assert hub.db.one("SELECT COUNT(*) FROM api_tokens WHERE hash=?", (tokens.hash_token(created["token"]),))[0] == 1
    async with hub.api("GET", "/user", created["token"]) as resp:
        assert (await resp.json())["name"] == "alice"
    async with hub.api("GET", "/users/alice/tokens", token) as resp:
        listed = (await resp.json())["api_tokens"]
    assert created["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)  # secrets are shown once
    async with hub.api("GET", f"/users/alice/tokens/{created['id']}", token) as resp:
        assert resp.status == 200
        assert (await resp.json())["note"] == "ci"
    async with hub.api("DELETE", f"/users/alice/tokens/{created['id']}", token) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/user", created["token"]) as resp:
        assert resp.status == 403
    for token_id in (created["id"], "a999999", "xyz"):
        async with hub.api("GET", f"/users/alice/tokens/{token_id}", token) as resp:
            assert resp.status == 404


async def test_expired_tokens_stop_working_and_vanish(hub):
    secret = hub.token("alice", expires_in=60)
    async with hub.api("GET", "/user", secret) as resp:
        assert resp.status == 200
    hub.db.execute("UPDATE api_tokens SET expires_at=? WHERE hash=?", (time.time() - 1, tokens.hash_token(secret)))
    async with hub.api("GET", "/user", secret) as resp:
        assert resp.status == 403
    assert hub.db.one("SELECT COUNT(*) FROM api_tokens WHERE hash=?", (tokens.hash_token(secret),))[0] == 0


async def test_token_scopes_are_checked(hub):
    token = hub.token("alice")
    hub.add_user("bob")
    cases = [
        ({"scopes": ["read:users!user=alice"]}, 201),
        ({"scopes": ["admin:users"]}, 403),  # wider than its owner
        ({"scopes": ["read:users!user=bob"]}, 403),  # someone else's
        ({"scopes": ["no-such-scope"]}, 400),
        ({"scopes": ["read:users!colour=blue"]}, 400),
        ({"scopes": "read:users"}, 400),
        ({"expires_in": -5}, 400),
        ({"expires_in": True}, 400),
        ({"note": 7}, 400),
        ({"roles": ["admin"]}, 400),
    ]
    for body, status in cases:
        async with hub.api("POST", "/users/alice/tokens", token, json=body) as resp:
            assert resp.status == status, (body, await resp.text())
    async with hub.api("POST", "/users/alice/tokens", token, json={"scopes": ["read:users!user=alice"]}) as resp:
        narrow = (await resp.json())["token"]
    async with hub.api("GET", "/users/alice", narrow) as resp:
        assert resp.status == 200
    async with hub.api("POST", "/users/alice/tokens", narrow, json={}) as resp:
        assert resp.status == 403  # a narrow token cannot mint tokens
    async with hub.api("DELETE", "/users/alice/server", narrow) as resp:
        assert resp.status == 403


async def test_token_not_wider_than_its_creator(hub):
    admin = hub.token("boss", admin=True)
    hub.add_user("alice")
    async with hub.api("POST", "/users/alice/tokens", admin, json={"scopes": ["admin:users"]}) as resp:
        assert resp.status == 403  # alice does not hold admin:users
    async with hub.api("POST", "/users/alice/tokens", admin, json={"scopes": ["read:users!user=alice"]}) as resp:
        assert resp.status == 201
        assert (await resp.json())["user"] == "alice"
    narrow = hub.token("carl", ["tokens!user=carl"])
    async with hub.api("POST", "/users/carl/tokens", narrow, json={"scopes": ["servers!user=carl"]}) as resp:
        assert resp.status == 403  # carl could, but this token cannot


async def test_users_cannot_see_others_tokens(hub):
    hub.token("bob")
    alice = hub.token("alice")
    async with hub.api("GET", "/users/bob/tokens", alice) as resp:
        assert resp.status == 404
    async with hub.api("POST", "/users/bob/tokens", alice, json={}) as resp:
        assert resp.status == 404


async def test_user_filter(hub):
    for name in ("alice", "bob"):
        hub.add_user(name)
    token = hub.token("watcher", ["read:users!user=alice", "list:users!user=alice"])
    async with hub.api("GET", "/users/alice", token) as resp:
        assert resp.status == 200
    async with hub.api("GET", "/users/bob", token) as resp:
        assert resp.status == 404
    async with hub.api("GET", "/users", token) as resp:
        assert resp.status == 200
        assert [u["name"] for u in await resp.json()] == ["alice"]


async def test_server_filter(hub):
    admin = hub.token("boss", admin=True)
    hub.add_user("alice")
    await hub.start_server("alice", admin)
    token = hub.token("ops", ["read:servers!server=alice/", "read:users:name!user=alice"])
    async with hub.api("GET", "/users/alice/server/progress", token) as resp:
        assert resp.status == 200
    hub.add_user("bob")
    async with hub.api("GET", "/users/bob/server/progress", token) as resp:
        assert resp.status == 404
    async with hub.api("DELETE", "/users/alice/server", token) as resp:
        assert resp.status == 403  # read:servers does not imply servers


async def test_group_filter(hub):
    admin = hub.token("boss", admin=True)
    for name in ("alice", "bob"):
        hub.add_user(name)
    async with hub.api("POST", "/groups/class", admin, json={"users": ["alice"]}) as resp:
        assert resp.status == 201
    teacher = hub.token("teacher", ["servers!group=class", "read:users!group=class"])
    async with hub.api("GET", "/users/alice", teacher) as resp:
        assert resp.status == 200
    async with hub.api("GET", "/users/bob", teacher) as resp:
        assert resp.status == 404
    async with hub.api("POST", "/users/alice/server", teacher) as resp:
        assert resp.status == 202
    async with hub.api("POST", "/users/bob/server", teacher) as resp:
        assert resp.status == 404
    group_reader = hub.token("gr", ["read:groups!group=class"])
    async with hub.api("GET", "/groups/class", group_reader) as resp:
        assert resp.status == 200
    async with hub.api("POST", "/groups/other", admin) as resp:
        assert resp.status == 201
    async with hub.api("GET", "/groups/other", group_reader) as resp:
        assert resp.status == 403


@pytest.mark.parametrize("held, needed, target, expected", [
    ({"admin:users"}, "read:users:name", {"user": "x"}, True),  # implied through users, read:users
    ({"servers!user=a"}, "read:servers", {"user": "a"}, True),
    ({"servers!user=a"}, "read:servers", {"user": "b"}, False),
    ({"servers!server=a/"}, "servers", {"user": "a", "server": ""}, True),
    ({"servers!server=a/"}, "servers", {"user": "a"}, False),
    ({"read:servers"}, "servers", {}, False),  # narrower never implies broader
    ({"read:users!group=g"}, "read:users", {"user": "a", "user_groups": ["g"]}, True),
    ({"read:users!group=g"}, "read:users", {"user": "a", "user_groups": ["h"]}, False),
    ({"access:services!service=s"}, "access:services", {"service": "s"}, True),
    ({"access:services!service=s"}, "access:services", {"service": "t"}, False),
])
def test_scope_implication_and_filters(held, needed, target, expected):
    assert scopes.allows(held, needed, **target) is expected


def reference_allows(held, needed, *, user=None, server=None, group=None, user_groups=(), service=None):
    """The scope check as it was before grants were cached: every held scope, one by one."""
    for scope in held:
        names, flt = scopes._expand(scope)
        if needed not in names:
            continue
        if not flt:
            return True
        kind, _, value = flt.partition("=")
        if kind == "user" and user is not None and value == user:
            return True
        if kind == "server" and user is not None and server is not None and value == f"{user}/{server}":
            return True
        if kind == "group" and (value == group or value in user_groups):
            return True
        if kind == "service" and value == service:
            return True
    return False


NAMES = st.sampled_from(["a", "b", ""])
FILTERS = st.one_of(st.just(""), st.just("!"), st.builds(lambda k, v: f"!{k}={v}", st.sampled_from(
    ["user", "server", "group", "service", "other"]), st.sampled_from(["a", "b", "a/", "b/x", ""])))
HELD = st.sets(st.builds(lambda base, flt: base + flt, st.sampled_from(sorted(scopes.KNOWN)), FILTERS), max_size=8)


@settings(max_examples=400, deadline=None)
@given(held=HELD, needed=st.sampled_from(sorted(scopes.KNOWN)), user=st.none() | NAMES,
       server=st.none() | st.sampled_from(["", "x"]), group=st.none() | NAMES, user_groups=st.lists(NAMES, max_size=2),
       service=st.none() | NAMES)
def test_cached_grants_answer_as_checking_every_scope(held, needed, user, server, group, user_groups, service):
    target = dict(user=user, server=server, group=group, user_groups=user_groups, service=service)
    assert scopes.allows(held, needed, **target) is reference_allows(held, needed, **target)


@settings(max_examples=300, deadline=None)
@given(held=HELD, name=NAMES, groups=st.lists(NAMES, max_size=2))
def test_user_model_fields_follow_the_scopes_as_checked_one_by_one(held, name, groups):
    from tljh_daemon.api.models import field_filter, visible_fields
    from tljh_daemon.identity import Identity

    model = {"kind": "user", "name": name, "admin": False, "roles": ["user"], "groups": groups, "server": None,
             "pending": None, "created": "c", "last_activity": None, "servers": {}}
    allowed = set()
    for scope, fields in scopes.USER_MODEL_FIELDS.items():
        extra = {"server": ""} if scope == "read:servers" else {}
        if reference_allows(held, scope, user=name, user_groups=groups, **extra):
            allowed |= fields
    expected = {k: v for k, v in model.items() if k in allowed}
    identity = Identity("asker", False, held, "token")
    assert visible_fields(identity, model) == expected
    assert field_filter(identity)(model) == expected


def test_scope_validation_and_subsets():
    assert scopes.valid("read:users!user=a")
    assert not scopes.valid("read:users!user=")
    assert not scopes.valid("fly")
    assert scopes.subset_of(["read:users!user=a"], {"users!user=a"})
    assert not scopes.subset_of(["read:users"], {"users!user=a"})
    assert scopes.subset_of(["read:users"], {"admin:users"})


async def test_user_models_show_only_what_the_scopes_allow(hub):
    hub.add_user("alice")
    await hub.start_server("alice", hub.token("boss", admin=True))
    lister = hub.token("lister", ["list:users"])
    async with hub.api("GET", "/users", lister) as resp:
        assert resp.status == 200
        alice = next(u for u in await resp.json() if u["name"] == "alice")
    assert set(alice) == {"kind", "name", "admin"}  # names only: no servers, no activity
    watcher = hub.token("watcher", ["list:users", "read:servers", "read:users:activity"])
    async with hub.api("GET", "/users", watcher) as resp:
        alice = next(u for u in await resp.json() if u["name"] == "alice")
    assert alice["servers"][""]["ready"] is True
    assert "last_activity" in alice and "groups" not in alice


async def test_start_and_stop_are_separate_scopes(hub):
    hub.add_user("alice")
    starter = hub.token("starter", ["start:servers!user=alice", "read:users:name!user=alice"])
    stopper = hub.token("stopper", ["delete:servers!user=alice", "read:users:name!user=alice"])
    async with hub.api("POST", "/users/alice/server", stopper) as resp:
        assert resp.status == 403
    async with hub.api("POST", "/users/alice/server", starter) as resp:
        assert resp.status == 202
    await hub.wait_for_state("alice", "running")
    async with hub.api("DELETE", "/users/alice/server", starter) as resp:
        assert resp.status == 403
    async with hub.api("DELETE", "/users/alice/server", stopper) as resp:
        assert resp.status == 204
    assert hub.spawner.stopped == ["alice"]


async def test_idle_culler_service_scopes_suffice(hub):
    """jupyterhub-idle-culler's documented scopes: list, read activity and servers, stop servers."""
    hub.add_user("alice")
    await hub.start_server("alice", hub.token("boss", admin=True))
    culler = hub.token("culler", ["list:users", "read:users:activity", "read:servers", "delete:servers"])
    async with hub.api("GET", "/users?state=ready", culler) as resp:
        assert [u["name"] for u in await resp.json()] == ["alice"]
    async with hub.api("DELETE", "/users/alice/server", culler) as resp:
        assert resp.status == 204
    async with hub.api("DELETE", "/users/alice", culler) as resp:
        assert resp.status == 403  # deleting users needs delete:users


async def test_a_token_loses_what_its_owner_loses(hub):
    """Token scopes are intersected with the owner's scopes at each request (as in JupyterHub):
    an admin's token stops being an admin token when the admin flag goes."""
    boss = hub.token("boss", ["admin:users", "list:users", "read:users!user=boss"], admin=True)
    hub.add_user("alice")
    async with hub.api("GET", "/users/alice", boss) as r:
        assert r.status == 200
    hub.db.execute("UPDATE users SET admin=0 WHERE name='boss'")
    async with hub.api("GET", "/users", boss) as r:
        assert r.status == 403
    async with hub.api("GET", "/users/alice", boss) as r:
        assert r.status == 404  # read:users now reaches boss only
    async with hub.api("GET", "/user", boss) as r:
        assert (await r.json())["scopes"] == ["read:users!user=boss"]
