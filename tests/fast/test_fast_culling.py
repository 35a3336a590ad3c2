"""The built-in culler's decisions, driven by activity timestamps (no waiting)."""

from dataclasses import replace
from datetime import timedelta

from tljh_daemon import timeutil
from tljh_daemon.culler import Culler
from tljh_daemon.settings import CullSettings

CULL = CullSettings(enabled=True, timeout=600, every=60, concurrency=2, max_age=0, users=False, exempt_admins=False)


def _ago(seconds):
    return timeutil.isoformat(timeutil.now() - timedelta(seconds=seconds))


def _set(hub, name, **fields):
    assignments = ", ".join(f"{k}=?" for k in fields)
    hub.db.execute(f"UPDATE servers SET {assignments} WHERE user=?", (*fields.values(), name))


async def _running(hub, *names, admin=False):
    for name in names:
        await hub.start_server(name, hub.token(name, admin=admin))


async def test_idle_servers_are_culled_active_ones_kept(hub):
    await _running(hub, "idle", "busy", "fresh")
    _set(hub, "idle", last_activity=_ago(601))
    _set(hub, "busy", last_activity=_ago(599))
    _set(hub, "fresh", last_activity=None, started=_ago(30))  # no report yet: counts from its start
    culled = await Culler(hub.hub, CULL).cull_once()
    assert culled == ["idle"]
    await hub.wait_for_state("idle", "stopped")
    assert (await hub.hub.servers.state("busy")) == "running"
    assert (await hub.hub.servers.state("fresh")) == "running"
    assert "/user/idle/" not in hub.proxy.routes
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name='idle'")[0] == 1  # users kept by default


async def test_never_active_server_is_culled_by_start_time(hub):
    await _running(hub, "ghost")
    _set(hub, "ghost", last_activity=None, started=_ago(700))
    assert await Culler(hub.hub, CULL).cull_once() == ["ghost"]


async def test_activity_report_saves_a_server(hub):
    await _running(hub, "alice")
    _set(hub, "alice", last_activity=_ago(900))
    server_token = hub.spawner.requests[0].env["JUPYTERHUB_API_TOKEN"]
    body = {"servers": {"": {"last_activity": _ago(5)}}}
    async with hub.api("POST", "/users/alice/activity", server_token, json=body) as resp:
        assert resp.status == 200
    assert await Culler(hub.hub, CULL).cull_once() == []


async def test_max_age_culls_busy_servers_too(hub):
    await _running(hub, "old", "young")
    _set(hub, "old", last_activity=_ago(1), started=_ago(3700))
    _set(hub, "young", last_activity=_ago(1), started=_ago(100))
    assert await Culler(hub.hub, replace(CULL, max_age=3600)).cull_once() == ["old"]
    assert await Culler(hub.hub, CULL).cull_once() == []  # max_age 0: no age limit


async def test_admins_exempt_only_when_configured(hub):
    await _running(hub, "boss", admin=True)
    _set(hub, "boss", last_activity=_ago(5000))
    assert await Culler(hub.hub, replace(CULL, exempt_admins=True)).cull_once() == []
    assert await Culler(hub.hub, CULL).cull_once() == ["boss"]


async def test_cull_users_deletes_non_admin_users(hub):
    await _running(hub, "student")
    await _running(hub, "teacher", admin=True)
    for name in ("student", "teacher"):
        _set(hub, name, last_activity=_ago(5000))
    culled = await Culler(hub.hub, replace(CULL, users=True)).cull_once()
    assert sorted(culled) == ["student", "teacher"]
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name='student'")[0] == 0
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name='teacher'")[0] == 1  # admins are kept


async def test_stopped_servers_are_not_culled(hub):
    await _running(hub, "alice")
    async with hub.api("DELETE", "/users/alice/server", hub.token("alice")) as resp:
        assert resp.status == 204
    _set(hub, "alice", last_activity=_ago(5000))
    assert await Culler(hub.hub, CULL).cull_once() == []
    assert hub.spawner.stopped == ["alice"]
