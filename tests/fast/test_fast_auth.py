"""Login, logout, the authenticators, the failed-login throttle, allow/ban/admin lists, XSRF."""

import time

import bcrypt
import pytest

from tljh_daemon import sessions
from tljh_daemon.auth import Authenticator


@pytest.fixture
def quick_bcrypt(monkeypatch):
    """Real bcrypt at its lowest cost, so first-use logins take milliseconds."""
    gensalt = bcrypt.gensalt
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": gensalt(4, prefix))


async def test_login_sets_httponly_session_cookie_and_logout_clears_it(hub):
    browser = await hub.browser()
    resp = await browser.login("Alice", next_url="/hub/token")
    assert resp.status == 302
    assert resp.headers["Location"] == "/hub/token"
    cookie = resp.cookies[sessions.COOKIE_NAME]
    assert cookie["httponly"] and cookie["path"] == "/hub/"
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP here; HTTPS is checked below
    async with browser.api("GET", "/user") as r:
        assert (await r.json())["name"] == "alice"  # names are normalized
    async with browser.request("GET", "/hub/logout") as r:
        assert r.status == 302 and r.headers["Location"] == "/hub/login"
    async with browser.api("GET", "/user") as r:
        assert r.status == 403
    # The old cookie value is dead server-side too, not just deleted in the browser.
    assert hub.db.one("SELECT COUNT(*) FROM sessions WHERE user='alice'")[0] == 0


async def test_jupyterhub_session_id_is_set_at_login_kept_and_cleared_at_logout(start_hub):
    """JupyterHub's jupyterhub-session-id: on the hub's base_url so user servers see it (their
    XSRF check uses it instead of the client's address), kept for the browser's next login."""
    hub = await start_hub({"base_url": "/jupyter/"})
    browser = await hub.browser()
    resp = await browser.login("alice")
    cookie = resp.cookies[sessions.SESSION_ID_COOKIE]
    assert cookie["path"] == "/jupyter/" and cookie["httponly"]
    assert len(cookie.value) == 32 and int(cookie.value, 16) >= 0
    first = cookie.value
    again = await browser.login("alice")
    assert sessions.SESSION_ID_COOKIE not in again.cookies, "an existing session id is kept"
    async with browser.request("GET", "/jupyter/hub/logout") as r:
        assert r.cookies[sessions.SESSION_ID_COOKIE].value == "", "cleared at logout"
        assert r.cookies[sessions.SESSION_ID_COOKIE]["path"] == "/jupyter/"
    resp = await browser.login("alice")
    assert resp.cookies[sessions.SESSION_ID_COOKIE].value not in ("", first), "a new one after logout"


async def test_a_browser_logged_in_without_a_session_id_gets_one_on_its_next_page(hub):
    browser = await hub.browser("alice")
    jar = browser.session.cookie_jar
    jar.clear(lambda morsel: morsel.key == sessions.SESSION_ID_COOKIE)
    async with browser.request("GET", "/hub/home") as r:
        assert r.status == 200
        assert len(r.cookies[sessions.SESSION_ID_COOKIE].value) == 32
    async with browser.request("GET", "/hub/home") as r:
        assert sessions.SESSION_ID_COOKIE not in r.cookies, "set once"


async def test_cookie_is_secure_behind_https(hub):
    https = {"X-Forwarded-Proto": "https"}
    async with hub.request("GET", "/hub/login", headers=https) as r:
        xsrf = r.cookies["_xsrf"]
        assert xsrf["secure"]
    form = {"username": "alice", "password": "x", "_xsrf": xsrf.value}
    headers = {**https, "Cookie": f"_xsrf={xsrf.value}"}
    async with hub.request("POST", "/hub/login", data=form, headers=headers) as r:
        assert r.status == 302
        assert r.cookies[sessions.COOKIE_NAME]["secure"]
        assert r.cookies[sessions.COOKIE_NAME]["httponly"]


async def test_forged_or_foreign_cookie_is_rejected(hub):
    browser = await hub.browser("alice")
    value = browser.session.cookie_jar.filter_cookies(browser.origin.with_path("/hub/"))[sessions.COOKIE_NAME].value
    stranger = await hub.browser()
    stranger.session.cookie_jar.update_cookies({sessions.COOKIE_NAME: value[:-2] + "xx"},
                                               browser.origin.with_path("/hub/"))
    async with stranger.api("GET", "/user") as r:
        assert r.status == 403


async def test_login_redirects_only_to_same_site_paths(hub):
    browser = await hub.browser()
    for next_url, expected in (("//evil.example/x", "/hub/spawn"), ("https://evil.example/", "/hub/spawn"),
                               ("/\\evil.example", "/hub/spawn"), ("/user/alice/lab", "/user/alice/lab")):
        resp = await browser.login("alice", next_url=next_url)
        assert resp.headers["Location"] == expected, next_url


async def test_login_without_xsrf_is_refused(hub):
    browser = await hub.browser()
    async with browser.request("POST", "/hub/login", data={"username": "alice", "password": "x"}) as r:
        assert r.status == 403
        assert "XSRF" in await r.text()
    async with browser.request("GET", "/hub/login"):
        pass
    form = {"username": "alice", "password": "x", "_xsrf": "wrong"}
    async with browser.request("POST", "/hub/login", data=form) as r:
        assert r.status == 403
    assert hub.db.one("SELECT COUNT(*) FROM sessions")[0] == 0


async def test_dummy_with_shared_password(start_hub):
    hub = await start_hub({"auth": {"DummyAuthenticator": {"password": "open sesame"}}})
    browser = await hub.browser()
    assert (await browser.login("alice", "wrong")).status == 403
    assert (await browser.login("bob", "")).status == 403  # (another name: no throttle delay)
    assert (await browser.login("alice", "open sesame")).status == 302


async def test_login_failure_page_does_not_say_which_part_was_wrong(start_hub):
    hub = await start_hub({"auth": {"DummyAuthenticator": {"password": "pw"}}, "users": {"banned": ["eve"]}})
    browser = await hub.browser()
    for name in ("alice", "eve"):
        async with browser.request("GET", "/hub/login"):
            pass
        form = {"username": name, "password": "nope", "_xsrf": browser.xsrf}
        async with browser.request("POST", "/hub/login", data=form) as r:
            assert r.status == 403
            assert "Invalid username or password" in await r.text()


async def test_allowed_banned_and_admin_lists(start_hub):
    hub = await start_hub({"users": {"allowed": ["alice"], "banned": ["Bob"], "admin": ["Root"]}})
    browser = await hub.browser()
    assert (await browser.login("alice")).status == 302
    assert (await browser.login("carol")).status == 403  # not on the allowed list
    assert (await browser.login("bob")).status == 403  # banned (names are normalized)
    assert (await browser.login("root")).status == 302  # admins are implicitly allowed
    async with browser.api("GET", "/user") as r:
        me = await r.json()
    assert me["name"] == "root" and me["admin"] is True
    assert "admin:users" in me["scopes"]


async def test_banned_user_token_still_identifies_but_login_is_refused(start_hub):
    hub = await start_hub({"users": {"banned": ["eve"]}})
    browser = await hub.browser()
    resp = await browser.login("eve")
    assert resp.status == 403
    assert sessions.COOKIE_NAME not in resp.cookies


async def test_failed_login_throttle(start_hub):
    hub = await start_hub({"auth": {"DummyAuthenticator": {"password": "pw"}}})
    browser = await hub.browser()
    throttle = hub.hub.authenticator.throttle.names
    for _ in range(2):
        assert (await browser.login("alice", "bad")).status == 403
    assert throttle.delay("alice") == 1  # two failures are free; the next attempt waits
    assert throttle.delay("bob") == 0  # per name
    started = time.monotonic()
    assert (await browser.login("alice", "bad")).status == 403
    assert time.monotonic() - started >= 1
    assert throttle.delay("alice") == 2  # doubling
    throttle._failures["alice"] = (3, time.monotonic() - throttle.forget_after - 1)
    assert (await browser.login("alice", "pw")).status == 302  # forgotten after a while; success clears
    assert throttle.delay("alice") == 0


def test_throttle_caps_its_delay():
    from tljh_daemon.auth.base import FailedLoginThrottle
    throttle = FailedLoginThrottle()
    for _ in range(30):
        throttle.failed("x")
    assert throttle.delay("x") == throttle.max_delay
    throttle.succeeded("x")
    assert throttle.delay("x") == 0


async def test_invalid_names_are_refused_at_login(hub):
    browser = await hub.browser()
    for name in ("", "a/b", "tab\tname", "x" * 300):
        assert (await browser.login(name)).status == 403, name
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 0


async def test_firstuse_first_password_sticks(start_hub, quick_bcrypt):
    hub = await start_hub({"auth": {"type": "firstuse", "FirstUseAuthenticator": {"min_password_length": 8}}})
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login") as r:
        assert "First time here?" in await r.text()
    assert (await browser.login("alice", "short")).status == 403  # below the minimum length
    assert (await browser.login("alice", "correct horse")).status == 302
    row = hub.db.one("SELECT password_hash FROM users WHERE name='alice'")
    assert row["password_hash"].startswith("$2") and "correct horse" not in row["password_hash"]
    other = await hub.browser()
    assert (await other.login("alice", "another password")).status == 403
    assert (await other.login("alice", "correct horse")).status == 302


async def test_firstuse_refuses_passwords_bcrypt_would_cut(start_hub, quick_bcrypt):
    """bcrypt reads 72 bytes at most (and bcrypt 5 raises beyond): a clear refusal, never a 500."""
    hub = await start_hub({"auth": {"type": "firstuse"}})
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login"):
        pass
    form = {"username": "alice", "password": "é" * 40, "_xsrf": browser.xsrf}
    async with browser.request("POST", "/hub/login", data=form) as r:
        assert r.status == 403 and "at most 72 bytes" in await r.text()
    assert (await browser.login("alice", "short-enough")).status == 302
    assert (await (await hub.browser()).login("alice", "x" * 100)).status == 403


async def test_firstuse_change_and_admin_reset(start_hub, quick_bcrypt):
    hub = await start_hub({"auth": {"type": "firstuse"}, "users": {"admin": ["boss"]}})
    alice = await hub.browser("alice", "password1")
    form = {"old_password": "wrong-one", "new_password": "password2", "_xsrf": alice.xsrf}
    async with alice.request("POST", "/hub/auth/change-password", data=form) as r:
        assert r.status == 400
    form["old_password"] = "password1"
    async with alice.request("POST", "/hub/auth/change-password", data={**form, "_xsrf": "x"}) as r:
        assert r.status == 403  # XSRF
    async with alice.request("POST", "/hub/auth/change-password", data=form) as r:
        assert r.status == 200
        assert "Your password was changed" in await r.text()
    assert (await (await hub.browser()).login("alice", "password1")).status == 403
    # Only admins may reset; a reset lets the next login choose the password again.
    async with alice.request("POST", "/hub/auth/change-password/alice", data={"_xsrf": alice.xsrf}) as r:
        assert r.status == 403
    boss = await hub.browser("boss", "bosspass")
    async with boss.request("POST", "/hub/auth/change-password/alice", data={"_xsrf": boss.xsrf}) as r:
        assert r.status == 200
    assert (await (await hub.browser()).login("alice", "brand-new-pw")).status == 302
    async with boss.request("POST", "/hub/auth/change-password/nobody-here", data={"_xsrf": boss.xsrf}) as r:
        assert r.status == 400


async def test_change_password_is_refused_for_external_passwords(hub):
    browser = await hub.browser("alice")
    form = {"old_password": "a", "new_password": "b", "_xsrf": browser.xsrf}
    async with browser.request("POST", "/hub/auth/change-password", data=form) as r:
        assert r.status == 400
        assert "outside the hub" in await r.text()


async def test_cookie_writes_need_xsrf_but_token_writes_do_not(hub):
    browser = await hub.browser("alice")
    async with browser.api("POST", "/users/alice/tokens", json={}, xsrf=False) as r:
        assert r.status == 403
        assert "XSRF" in (await r.json())["message"]
    async with browser.api("POST", "/users/alice/tokens", json={}, headers={"X-XSRFToken": "guess"},
                           xsrf=False) as r:
        assert r.status == 403
    async with browser.api("POST", "/users/alice/tokens", json={}) as r:
        assert r.status == 201
    async with browser.api("GET", "/users/alice/tokens", xsrf=False) as r:
        assert r.status == 200  # reads need no XSRF token
    async with hub.api("POST", "/users/alice/tokens", hub.token("alice"), json={}) as r:
        assert r.status == 201  # token auth is not a browser: no XSRF needed


async def test_page_forms_need_xsrf(hub):
    browser = await hub.browser("alice")
    for path in ("/hub/spawn", "/hub/stop"):
        async with browser.request("POST", path, data={}) as r:
            assert r.status == 403, path
    assert hub.spawner.requests == []
    async with browser.request("POST", "/hub/spawn", data={"_xsrf": browser.xsrf}) as r:
        assert r.status == 302
        assert r.headers["Location"] == "/hub/spawn-pending/alice"
    await hub.wait_for_state("alice", "running")
    async with browser.request("POST", "/hub/stop", data={"_xsrf": browser.xsrf}) as r:
        assert r.status == 302
    assert (await hub.hub.servers.state("alice")) == "stopped"


async def test_xsrf_cookie_is_httponly(hub):
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login") as r:
        xsrf = r.cookies["_xsrf"]
        assert xsrf["httponly"] and xsrf["path"] == "/hub/"
        assert xsrf.value in await r.text()  # rendered into the form instead


class ReversedNameAuthenticator(Authenticator):
    """An injected authenticator in PAM's shape: existing accounts only, named like the user."""

    creates_accounts = False

    def system_username(self, name):
        return name

    async def check_password(self, name, password):
        return password == name[::-1]


async def test_injected_authenticator_and_existing_accounts_only(start_hub):
    hub = await start_hub(authenticator=ReversedNameAuthenticator)
    browser = await hub.browser()
    assert (await browser.login("alice", "alice")).status == 403
    assert (await browser.login("alice", "ecila")).status == 302
    async with browser.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "failed")
    assert "there is no Unix account named 'alice'" in (await hub.hub.servers.row("alice")).message
    assert hub.accounts.calls[-1] == ("alice", False, [], False)  # never asked to create one
    hub.accounts.known.add("alice")
    async with browser.request("GET", "/hub/spawn"):
        pass
    await hub.wait_for_state("alice", "running")
    assert hub.spawner.requests[-1].username == "alice"
