"""The home page and the admin panel offer what a server's state allows (the templates compare
with `ServerState`, the one source of the state names)."""


import re


def _row(panel, name):
    """The admin panel's table row of `name`."""
    return re.search(rf'<tr data-user="{name}".*?</tr>', panel, re.S).group(0)


async def _text(browser, path):
    async with browser.request("GET", path) as r:
        assert r.status == 200, path
        return await r.text()


async def test_home_and_admin_follow_the_server_state(hub):
    hub.add_user("boss", admin=True)
    alice, admin = await hub.browser("alice"), await hub.browser("boss")
    home = await _text(alice, "/hub/home")
    assert 'id="start"' in home and 'id="open"' not in home
    row = _row(await _text(admin, "/hub/admin"), "alice")
    assert 'class="small start"' in row and ' stop"' not in row

    hub.spawner.never_answer = True
    async with alice.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "pending")
    home = await _text(alice, "/hub/home")
    assert "Your server is starting." in home and 'id="start"' not in home
    row = _row(await _text(admin, "/hub/admin"), "alice")
    assert ">Starting<" in row and ">Cancel start<" in row and ' start"' not in row

    hub.spawner.never_answer = False
    await hub.hub.servers.stop("alice")
    async with alice.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "running")
    home = await _text(alice, "/hub/home")
    assert 'id="open"' in home and 'id="stop"' in home and 'id="start"' not in home
    panel = await _text(admin, "/hub/admin")
    row = _row(panel, "alice")
    assert 'class="small secondary stop"' in row and '<a href="/user/alice/">Open' in row and ' start"' not in row
