"""Workshop accounts (TmpAuthenticator): a visit is a new temporary user with a server; the
culler removes the user and its Unix account; the next visit gets a new user."""

from datetime import timedelta

from tljh_daemon import sessions, timeutil
from tljh_daemon.culler import Culler
from tljh_daemon.settings import CullSettings

TMP = {"auth": {"type": "tmpauthenticator.TmpAuthenticator"}}
CULL = CullSettings(enabled=True, timeout=600, every=60, concurrency=2, max_age=0, users=False, exempt_admins=False)


def _ago(seconds):
    return timeutil.isoformat(timeutil.now() - timedelta(seconds=seconds))


async def visit(browser):
    """Follow the hub's redirects from / as a browser would, up to the spawn page or (when the
    server is already up) its URL, which Traefik would route to the server."""
    path = "/hub/"
    for _ in range(6):
        async with browser.request("GET", path) as r:
            if r.status != 302:
                return r.status, await r.text()
            path = r.headers["Location"]
            if path.startswith("/user/"):
                return r.status, path
    raise AssertionError(f"too many redirects, last {path}")


async def whoami(browser):
    async with browser.api("GET", "/user") as r:
        return (await r.json())["name"] if r.status == 200 else None


async def test_a_visit_gets_a_temporary_user_a_server_and_a_notice(start_hub):
    hub = await start_hub(TMP)
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login?next=/hub/home") as r:
        assert r.status == 302 and r.headers["Location"] == "/hub/tmplogin?next=/hub/home"
    async with browser.request("GET", "/hub/tmplogin") as r:
        assert r.status == 302 and r.headers["Location"] == "/hub/spawn"
        assert r.cookies[sessions.COOKIE_NAME]["httponly"]
    async with browser.request("GET", "/hub/spawn") as r:
        assert r.status == 302 and r.headers["Location"].startswith("/hub/spawn-pending/tmp-")
    name = await whoami(browser)
    assert name.startswith("tmp-") and len(name) == 14
    row = hub.db.one("SELECT * FROM users WHERE name=?", (name,))
    assert row["temporary"] == 1 and row["admin"] == 0
    await hub.wait_for_state(name, "running")
    assert hub.accounts.calls[0][0] == f"jupyter-{name}"
    async with browser.request("GET", "/hub/home") as r:
        text = await r.text()
    assert 'id="temporary-notice"' in text and "temporary account" in text


async def test_two_browsers_get_two_users_with_their_own_servers(start_hub):
    hub = await start_hub(TMP)
    one, two = await hub.browser(), await hub.browser()
    await visit(one)
    await visit(two)
    first, second = await whoami(one), await whoami(two)
    assert first != second
    await hub.wait_for_state(first, "running")
    await hub.wait_for_state(second, "running")
    # Each sees only its own server.
    async with one.request("GET", f"/hub/spawn/{second}") as r:
        assert r.status == 403


async def test_a_logged_in_browser_keeps_its_user(start_hub):
    hub = await start_hub(TMP)
    browser = await hub.browser()
    await visit(browser)
    name = await whoami(browser)
    await visit(browser)
    assert await whoami(browser) == name
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 1


async def test_culling_removes_the_user_and_account_and_the_next_visit_is_new(start_hub):
    hub = await start_hub(TMP)
    regular = hub.token("teacher")
    await hub.start_server("teacher", regular)
    browser = await hub.browser()
    await visit(browser)
    name = await whoami(browser)
    await hub.wait_for_state(name, "running")
    hub.db.execute("UPDATE servers SET last_activity=? WHERE user IN (?, 'teacher')", (_ago(601), name))
    assert sorted(await Culler(hub.hub, CULL).cull_once()) == sorted([name, "teacher"])
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name=?", (name,))[0] == 0
    assert hub.accounts.removed == [f"jupyter-{name}"]
    assert f"jupyter-{name}" not in hub.accounts.known
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name='teacher'")[0] == 1  # not temporary: kept
    assert await whoami(browser) is None  # the session went with the user
    await visit(browser)
    assert await whoami(browser) not in (None, name)


async def test_a_temporary_user_without_a_server_is_removed_when_idle(start_hub):
    hub = await start_hub(TMP)
    name = await hub.hub.authenticator.new_user()
    assert await Culler(hub.hub, CULL).cull_once() == []
    hub.db.execute("UPDATE users SET created=? WHERE name=?", (_ago(601), name))
    assert await Culler(hub.hub, CULL).cull_once() == [name]
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 0


async def test_without_auto_login_the_page_has_a_button_and_no_password_form(start_hub):
    hub = await start_hub({"auth": {"type": "tmp", "TmpAuthenticator": {
        "auto_login": False, "login_service": "a workshop account"}}})
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login") as r:
        text = await r.text()
    assert r.status == 200 and 'href="/hub/tmplogin"' in text and "Sign in with a workshop account" in text
    assert 'name="password"' not in text
    form = {"username": "alice", "password": "x", "_xsrf": browser.xsrf}
    async with browser.request("POST", "/hub/login", data=form) as r:
        assert r.status == 400
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 0


async def test_tmplogin_is_only_there_for_tmp(hub):
    async with hub.request("GET", "/hub/tmplogin") as r:
        assert r.status == 404
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 0


async def test_under_a_base_url(start_hub):
    hub = await start_hub({**TMP, "base_url": "/jupyter/"})
    browser = await hub.browser()
    async with browser.request("GET", "/jupyter/hub/login") as r:
        assert r.headers["Location"] == "/jupyter/hub/tmplogin"
    async with browser.request("GET", "/jupyter/hub/tmplogin") as r:
        assert r.headers["Location"] == "/jupyter/hub/spawn"
    async with browser.request("GET", "/jupyter/hub/spawn") as r:
        assert r.headers["Location"].startswith("/jupyter/hub/spawn-pending/tmp-")
