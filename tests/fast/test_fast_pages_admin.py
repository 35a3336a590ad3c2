"""HTML pages (home, spawn, progress, failure, redirects), the admin panel and its actions,
and re-adoption of servers when the hub restarts."""

import asyncio
from urllib.parse import parse_qs, urlsplit


async def test_root_and_hub_redirects(hub):
    async with hub.request("GET", "/") as r:
        assert r.headers["Location"] == "/hub/"
    async with hub.request("GET", "/hub/") as r:
        assert r.headers["Location"] == "/hub/login"
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/") as r:
        assert r.headers["Location"] == "/hub/home"
    async with browser.request("GET", "/hub/login") as r:
        assert r.headers["Location"] == "/hub/spawn"  # already logged in


async def test_pages_need_login(hub):
    for path in ("/hub/home", "/hub/spawn", "/hub/token", "/hub/admin", "/hub/spawn-pending/alice",
                 "/hub/user-redirect/lab"):
        async with hub.request("GET", path) as r:
            assert r.status == 302, path
            assert r.headers["Location"].startswith("/hub/login?next="), path


async def test_security_headers_and_html_errors(hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as r:
        assert r.status == 200
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-JupyterHub-Version"] == hub.hub.jupyterhub_version
    async with browser.request("GET", "/hub/admin") as r:
        assert r.status == 403
        assert r.content_type == "text/html"  # pages get pages, the API gets JSON
        assert "Only admins" in await r.text()


async def test_spawn_page_flow(hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/spawn") as r:
        assert r.status == 302 and r.headers["Location"] == "/hub/spawn-pending/alice"
    await hub.wait_for_state("alice", "running")
    async with browser.request("GET", "/hub/spawn-pending/alice") as r:
        assert r.headers["Location"] == "/user/alice/"
    async with browser.request("GET", "/hub/spawn?next=/user/alice/lab/tree/x.ipynb") as r:
        assert r.headers["Location"] == "/user/alice/lab/tree/x.ipynb"
    async with browser.request("GET", "/hub/home") as r:
        assert "/user/alice/" in await r.text()
    assert len(hub.spawner.requests) == 1


async def test_pending_page_shows_progress_url(hub):
    hub.spawner.never_answer = True
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/spawn"):
        pass
    async with browser.request("GET", "/hub/spawn-pending/alice") as r:
        assert r.status == 200
        assert "/hub/api/users/alice/server/progress" in await r.text()
    async with browser.request("GET", "/hub/spawn") as r:  # a second click joins the same spawn
        assert r.headers["Location"] == "/hub/spawn-pending/alice"
    # The start reaches the spawner after the account step, which may lag on a busy machine.
    await hub.wait_for(lambda: hub.spawner.requests, "the spawner to be asked to start")
    assert len(hub.spawner.requests) == 1


async def test_failed_spawn_page_tells_why_and_offers_retry(hub):
    hub.spawner.fail_start = "no space left on device"
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "failed")
    async with browser.request("GET", "/hub/spawn-pending/alice") as r:
        assert r.status == 500
        text = await r.text()
    assert "no space left on device" in text
    assert "/hub/spawn/alice" in text
    async with browser.request("GET", "/hub/home") as r:
        assert "no space left on device" in await r.text()
    hub.spawner.fail_start = None
    async with browser.request("GET", "/hub/spawn/alice") as r:
        assert r.headers["Location"] == "/hub/spawn-pending/alice"
    await hub.wait_for_state("alice", "running")


async def test_users_cannot_use_others_pages(hub):
    hub.add_user("bob")
    browser = await hub.browser("alice")
    for path in ("/hub/spawn/bob", "/hub/spawn-pending/bob", "/hub/user/bob/lab"):
        async with browser.request("GET", path) as r:
            assert r.status == 403, path
    async with browser.request("POST", "/hub/stop/bob", data={"_xsrf": browser.xsrf}) as r:
        assert r.status == 403
    assert hub.spawner.requests == []


async def test_user_redirect_and_fallbacks(hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/user-redirect/lab/tree/a%20b.ipynb?kernel=x") as r:
        assert r.headers["Location"] == "/user/alice/lab/tree/a%20b.ipynb?kernel=x"
    async with browser.request("GET", "/user/alice/lab") as r:  # no route yet: back to the hub
        assert r.headers["Location"] == "/hub/user/alice/lab"
    async with browser.request("GET", "/hub/user/alice/lab") as r:
        location = urlsplit(r.headers["Location"])
    assert location.path == "/hub/spawn/alice" and parse_qs(location.query) == {"next": ["/user/alice/lab"]}
    await hub.start_server("alice", hub.token("alice"))
    async with browser.request("GET", "/hub/user/alice/lab") as r:
        assert r.headers["Location"] == "/user/alice/lab?redirects=1"
    async with browser.request("GET", "/hub/user/alice/lab?redirects=1") as r:
        assert r.status == 503  # no redirect loop


async def test_admin_panel_lists_searches_and_pages(hub):
    hub.add_user("boss", admin=True)
    for i in range(7):
        hub.add_user(f"student{i}")
    hub.add_user("teacher")
    browser = await hub.browser("boss")
    async with browser.request("GET", "/hub/admin?search=student&limit=5&sort=-name") as r:
        assert r.status == 200
        text = await r.text()
    assert "student6" in text and "student2" in text and "student1" not in text
    assert "teacher" not in text
    assert browser.xsrf in text  # buttons send the XSRF header
    async with browser.request("GET", "/hub/admin?offset=abc") as r:
        assert r.status == 400
    async with browser.request("GET", "/hub/admin/usage") as r:
        assert r.status == 200
        assert await r.json() == {}


async def test_admin_usage_and_token_page_access(hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/admin/usage") as r:
        assert r.status == 403
    async with browser.request("GET", "/hub/token") as r:
        assert r.status == 200


async def test_admin_actions_start_stop_promote_delete_others(hub):
    hub.add_user("boss", admin=True)
    hub.add_user("bob")
    boss = await hub.browser("boss")
    async with boss.request("POST", "/hub/spawn/bob", data={"_xsrf": boss.xsrf}) as r:
        assert r.headers["Location"] == "/hub/spawn-pending/bob"
    await hub.wait_for_state("bob", "running")
    async with boss.request("GET", "/hub/user/bob/lab") as r:
        assert r.headers["Location"] == "/user/bob/lab?redirects=1"  # admins may reach others' servers
    async with boss.request("POST", "/hub/stop/bob", data={"_xsrf": boss.xsrf}) as r:
        assert r.headers["Location"] == "/hub/home"
    assert (await hub.hub.servers.state("bob")) == "stopped"
    # The admin panel's buttons call the REST API with the cookie and the XSRF header.
    async with boss.api("PATCH", "/users/bob", json={"admin": True}) as r:
        assert r.status == 200 and (await r.json())["admin"] is True
    async with boss.api("POST", "/users/newbie", json={}) as r:
        assert r.status == 201
    async with boss.api("DELETE", "/users/newbie") as r:
        assert r.status == 204
    async with boss.api("DELETE", "/users/bob", xsrf=False) as r:
        assert r.status == 403
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name='bob'")[0] == 1


class _WritesNothing:
    """A server store that writes nothing (a daemon that died)."""

    def __getattr__(self, name):
        async def nothing(*args, **kwargs):
            return None
        return nothing


async def crash(fast_hub):
    """As if the daemon died: its starts in flight end without storing anything, so the next
    daemon finds the servers as this one left them (else this one's late "failed" races it)."""
    manager = fast_hub.hub.servers
    manager.store = _WritesNothing()
    tasks = list(manager.tasks.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_restart_readopts_live_servers_and_forgets_dead_ones(hub, start_hub):
    for name in ("alive", "dead"):
        await hub.start_server(name, hub.token(name))
    hub.spawner.never_answer = True
    async with hub.api("POST", "/users/half/server", hub.token("half")) as resp:
        assert resp.status == 202
    async def launched():
        return (await hub.hub.servers.row("half")).spawner_state

    await hub.wait_for(launched, "half's server to be launched")
    await hub.spawner.exit("dead")
    await crash(hub)
    # A second hub on the same state directory, as after a daemon restart.
    again = await start_hub(spawner=hub.spawner, prefix=hub.prefix)
    assert again.proxy_runner.started
    assert set(again.proxy.routes) == {"/user/alive/"}
    assert (await again.hub.servers.state("alive")) == "running"
    assert (await again.hub.servers.state("dead")) == "stopped"
    assert "while the hub was down" in (await again.hub.servers.row("dead")).message
    assert (await again.hub.servers.state("half")) == "stopped"
    assert "half" in hub.spawner.stopped  # a server left starting is stopped, not adopted
    # Logins and tokens survive the restart.
    async with again.api("GET", "/user", hub.token("alive")) as resp:
        assert resp.status == 200
