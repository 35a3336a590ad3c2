"""The home page and the admin panel offer what a server's state allows (the templates compare
with `ServerState`, the one source of the state names)."""


async def _text(browser, path):
    async with browser.request("GET", path) as r:
        assert r.status == 200, path
        return await r.text()


async def test_home_and_admin_follow_the_server_state(hub):
    hub.add_user("boss", admin=True)
    alice, admin = await hub.browser("alice"), await hub.browser("boss")
    home = await _text(alice, "/hub/home")
    assert 'id="start"' in home and 'id="open"' not in home
    assert '<button class="start">' in await _text(admin, "/hub/admin")

    hub.spawner.never_answer = True
    async with alice.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "pending")
    home = await _text(alice, "/hub/home")
    assert "Your server is starting." in home and 'id="start"' not in home

    hub.spawner.never_answer = False
    await hub.hub.servers.stop("alice")
    async with alice.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "running")
    home = await _text(alice, "/hub/home")
    assert 'id="open"' in home and 'id="stop"' in home and 'id="start"' not in home
    panel = await _text(admin, "/hub/admin")
    assert '<button class="stop">' in panel and "— <a href=\"/user/alice/\">open</a>" in panel
