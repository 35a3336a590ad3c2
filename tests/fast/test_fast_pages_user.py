"""The pages every user sees (login, home, change password, token) share one stylesheet and
one set of components; password managers can fill the forms; the token page asks for scopes
and lists the OAuth applications the user authorized, which can be revoked."""

import re

from tljh_daemon import tokens

SERVER_CLIENT = "jupyterhub-user-alice"


def attrs_of(html, name):
    """The attributes of the <input name=...> tag, as one string."""
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input {name}"
    return match.group(0)


async def test_every_page_uses_the_shared_stylesheet(hub):
    async with hub.request("GET", "/hub/static/hub.css") as r:
        assert r.status == 200 and r.content_type == "text/css"
        css = await r.text()
    assert ".actions" in css and ".site-nav" in css and "://" not in css, "nothing from elsewhere"
    browser = await hub.browser("alice")
    for client, path in ((hub, "/hub/login"), (browser, "/hub/home"), (browser, "/hub/token")):
        async with client.request("GET", path) as r:
            html = await r.text()
        assert '<link rel="stylesheet" href="/hub/static/hub.css">' in html, path
        assert "<style>" not in html, f"{path}: styles belong in hub.css"


async def test_login_page_shows_site_and_lets_password_managers_fill_it(start_hub):
    hub = await start_hub({"branding": {"site_name": "Physics 101"}})
    async with hub.request("GET", "/hub/login") as r:
        html = await r.text()
    assert '<h1 class="site-name">Physics 101</h1>' in html
    assert '<img src="/hub/logo"' in html
    assert 'autocomplete="username"' in attrs_of(html, "username")
    assert 'autocomplete="current-password"' in attrs_of(html, "password")
    async with (await start_hub()).request("GET", "/hub/login") as r:
        assert '<h1 class="site-name">JupyterHub</h1>' in await r.text(), "a name even when none is set"


async def test_password_forms_say_which_password_is_which(start_hub):
    hub = await start_hub({"auth": {"type": "firstuse"}})
    browser = await hub.browser("alice", "a-long-password-1")
    async with browser.request("GET", "/hub/auth/change-password") as r:
        html = await r.text()
    assert 'autocomplete="current-password"' in attrs_of(html, "old_password")
    assert 'autocomplete="new-password"' in attrs_of(html, "new_password")


async def test_home_puts_buttons_in_one_row_and_the_user_apart_from_the_links(hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as r:
        html = await r.text()
    assert re.search(r'<div class="actions">\s*<form method="post" action="/hub/spawn">', html)
    nav = html[html.index('<nav class="site-nav"'):html.index("</nav>")]
    links = nav[:nav.index('<div class="nav-user">')]
    assert 'aria-current="page">Home</a>' in links and "alice" not in links
    assert '<span class="user-name" id="user-name" title="Signed in as alice">alice</span>' in nav
    await hub.start_server("alice", hub.token("alice"))
    async with browser.request("GET", "/hub/home") as r:
        html = await r.text()
    actions = html[html.index('<div class="actions">'):]
    assert actions.index('id="open"') < actions.index('id="stop"') < actions.index("</div>")


async def test_token_page_lists_own_scopes_and_authorized_applications(hub):
    alice = await hub.browser("alice")
    async with alice.request("GET", "/hub/token") as r:
        html = await r.text()
    assert 'id="scopes"' in html and "<li>access:servers!user=alice</li>" in html
    assert "admin:users" not in html, "only the user's own permissions are offered"
    assert 'id="oauth-apps"' not in html and 'id="no-apps" class="muted">' in html

    await hub.start_server("alice", hub.token("alice"))
    access = [tokens.create(hub.db, "alice", "oauth", ["access:servers!server=alice/"], client_id=SERVER_CLIENT)
              for _ in range(2)]
    hub.add_user("bob")
    bobs = tokens.create(hub.db, "bob", "oauth", ["access:servers!user=bob"], client_id=SERVER_CLIENT)
    async with alice.request("GET", "/hub/token") as r:
        html = await r.text()
    rows = re.findall(r'<tr data-client="([^"]+)" data-token="([^"]+)">', html)
    assert [client for client, _ in rows] == [SERVER_CLIENT], "one row per application"
    assert "<li>access:servers!server=alice/</li>" in html and "access:servers!user=bob" not in html

    # Revoking (the page's button: DELETE on one of its tokens, with the XSRF header) ends
    # every token that application holds for alice, and only those.
    async with alice.api("DELETE", f"/users/alice/tokens/{rows[0][1]}", xsrf=False) as r:
        assert r.status == 403, "a cookie request without the XSRF header is refused"
    async with alice.api("DELETE", f"/users/alice/tokens/{rows[0][1]}") as r:
        assert r.status == 204
    for secret in access:
        async with hub.api("GET", "/user", secret) as r:
            assert r.status == 403
    async with hub.api("GET", "/user", bobs) as r:
        assert r.status == 200
    async with alice.request("GET", "/hub/token") as r:
        assert 'id="oauth-apps"' not in await r.text()


async def test_token_list_tells_oauth_tokens_apart(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    tokens.create(hub.db, "alice", "oauth", ["access:servers!user=alice"], client_id=SERVER_CLIENT)
    async with hub.api("GET", "/users/alice/tokens", token) as r:
        listed = (await r.json())["api_tokens"]
    assert sorted(t["oauth_client"] or "" for t in listed) == ["", SERVER_CLIENT]


async def test_a_narrow_token_is_refused_where_its_scope_does_not_reach(hub):
    alice = await hub.browser("alice")
    async with alice.api("POST", "/users/alice/tokens", json={"scopes": ["read:users!user=alice"]}) as r:
        assert r.status == 201
        narrow = (await r.json())["token"]
    async with hub.api("GET", "/users/alice", narrow) as r:
        assert r.status == 200 and (await r.json())["name"] == "alice"
    for method, path in (("POST", "/users/alice/server"), ("GET", "/users/alice/tokens"),
                         ("POST", "/users/alice/tokens"), ("POST", "/users/alice/activity")):
        async with hub.api(method, path, narrow, json={}) as r:
            assert r.status == 403, (method, path, r.status)
    async with alice.api("POST", "/users/alice/tokens", json={"scopes": ["admin:users"]}) as r:
        assert r.status == 403 and "wider" in (await r.json())["message"]


async def test_a_scope_not_held_is_403_and_one_held_for_others_is_404(hub):
    """As JupyterHub's needs_scope: 404 only when the scope is held for other targets (so a
    missing user and someone else's look alike), else 403."""
    hub.add_user("bob")
    server_only = hub.token("alice", ["access:servers!user=alice"])
    for method, path in (("POST", "/users/alice/server"), ("GET", "/users/alice"), ("GET", "/users/alice/tokens")):
        async with hub.api(method, path, server_only) as r:
            assert r.status == 403, (method, path, r.status)
    own = hub.token("alice")
    for path in ("/users/bob", "/users/nobody-here"):
        async with hub.api("GET", path, own) as r:
            assert r.status == 404, path
