"""Sign-up with approval (NativeAuthenticator): password rules, pending and refused users,
approval in the admin panel and through /hub/api/signups, open_signup, password change."""

import bcrypt
import pytest

from tljh_daemon import config as config_mod
from tljh_daemon import sessions
from tljh_daemon.auth.passwords import PasswordRules, common_passwords

NATIVE = {"auth": {"type": "nativeauthenticator.NativeAuthenticator"}, "users": {"admin": ["boss"]}}
GOOD = "violet-kettle-42"


@pytest.fixture(autouse=True)
def quick_bcrypt(monkeypatch):
    """Real bcrypt at its lowest cost, so sign-ups and logins take milliseconds."""
    gensalt = bcrypt.gensalt
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": gensalt(4, prefix))


async def signup(browser, name, password=GOOD, confirm=None, **extra):
    """GET the page (XSRF cookie), POST the form; (status, page text)."""
    async with browser.request("GET", "/hub/signup") as r:
        assert r.status == 200
    form = {"username": name, "password": password, "password_confirm": password if confirm is None else confirm,
            "_xsrf": browser.xsrf, **extra}
    async with browser.request("POST", "/hub/signup", data=form) as r:
        return r.status, await r.text()


async def login_page(browser, name, password=GOOD):
    async with browser.request("GET", "/hub/login"):
        pass
    form = {"username": name, "password": password, "_xsrf": browser.xsrf}
    async with browser.request("POST", "/hub/login", data=form) as r:
        return r.status, await r.text(), r.cookies


@pytest.fixture
async def native_hub(start_hub):
    return await start_hub(NATIVE)


def signup_row(hub, name):
    return hub.db.one("SELECT * FROM signups WHERE name=?", (name,))


async def test_login_page_links_to_sign_up(native_hub):
    browser = await native_hub.browser()
    async with browser.request("GET", "/hub/login") as r:
        assert 'href="/hub/signup"' in await r.text()


async def test_pending_user_gets_a_clear_page_and_nothing_else(native_hub):
    browser = await native_hub.browser()
    status, text = await signup(browser, "Alice")
    assert status == 200 and "waiting for an administrator" in text
    row = signup_row(native_hub, "alice")
    assert row["status"] == "pending" and row["password_hash"].startswith("$2") and GOOD not in row["password_hash"]
    status, text, cookies = await login_page(browser, "alice")
    assert status == 403 and "waiting for an administrator" in text
    assert sessions.COOKIE_NAME not in cookies
    # Not a hub user: no session, no server, no Unix account.
    assert native_hub.db.one("SELECT COUNT(*) FROM users WHERE name='alice'")[0] == 0
    assert native_hub.db.one("SELECT COUNT(*) FROM sessions")[0] == 0
    assert native_hub.accounts.calls == []
    # The wrong password never reveals the status.
    status, text, _ = await login_page(browser, "alice", "not-the-password")
    assert status == 403 and "waiting" not in text and "Invalid username or password" in text


async def test_approval_through_the_api_then_login_and_spawn(native_hub):
    await signup(await native_hub.browser(), "alice")
    admin = native_hub.token("boss", admin=True)
    async with native_hub.api("GET", "/signups?status=pending", admin) as r:
        assert r.status == 200
        assert [s["name"] for s in await r.json()] == ["alice"]
    async with native_hub.api("PATCH", "/signups/alice", admin, json={"status": "approved"}) as r:
        assert r.status == 200
        body = await r.json()
        assert body["status"] == "approved" and body["decided_by"] == "boss"
        assert "password_hash" not in body
    browser = await native_hub.browser()
    status, _, cookies = await login_page(browser, "alice")
    assert status == 302 and sessions.COOKIE_NAME in cookies
    async with browser.request("GET", "/hub/spawn") as r:
        assert r.status == 302
    await native_hub.wait_for_state("alice", "running")
    assert native_hub.accounts.calls[0][0] == "jupyter-alice"


async def test_refused_user_gets_a_clear_page(native_hub):
    await signup(await native_hub.browser(), "mallory")
    async with native_hub.api("PATCH", "/signups/mallory", native_hub.token("boss", admin=True),
                              json={"status": "refused"}) as r:
        assert r.status == 200
    status, text, cookies = await login_page(await native_hub.browser(), "mallory")
    assert status == 403 and "refused your sign-up" in text and "If you think this is a mistake" in text
    assert sessions.COOKIE_NAME not in cookies
    assert native_hub.db.one("SELECT COUNT(*) FROM users WHERE name='mallory'")[0] == 0


async def test_signups_api_is_for_admins_only(native_hub):
    await signup(await native_hub.browser(), "alice")
    user = native_hub.token("bob")
    for method, path, body in (("GET", "/signups", None), ("GET", "/signups/alice", None),
                               ("PATCH", "/signups/alice", {"status": "approved"}), ("DELETE", "/signups/alice", None)):
        async with native_hub.api(method, path, user, json=body) as r:
            assert r.status == 403, (method, path)
    async with native_hub.api("GET", "/signups") as r:
        assert r.status == 403  # no credentials
    # A token with admin:users but nothing else is enough; read:users is not.
    async with native_hub.api("GET", "/signups", native_hub.token("svc", ["read:users"])) as r:
        assert r.status == 403
    async with native_hub.api("GET", "/signups", native_hub.token("svc2", ["admin:users"])) as r:
        assert r.status == 200
    assert signup_row(native_hub, "alice")["status"] == "pending"


async def test_signups_api_bad_input_is_a_clear_400_or_404(native_hub):
    await signup(await native_hub.browser(), "alice")
    admin = native_hub.token("boss", admin=True)
    for body in ({"status": "maybe"}, {}, {"status": "approved", "admin": True}):
        async with native_hub.api("PATCH", "/signups/alice", admin, json=body) as r:
            assert r.status == 400
            assert (await r.json())["message"]
    async with native_hub.api("PATCH", "/signups/nobody", admin, json={"status": "approved"}) as r:
        assert r.status == 404
    async with native_hub.api("GET", "/signups?status=weird", admin) as r:
        assert r.status == 400
    async with native_hub.api("PATCH", "/signups/alice", admin, data=b"{not json",
                              headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
    assert signup_row(native_hub, "alice")["status"] == "pending"


async def test_signups_api_with_a_cookie_needs_xsrf(native_hub):
    await signup(await native_hub.browser(), "alice")
    boss = await native_hub.browser()
    await signup(boss, "boss")  # in users.admin: approved at sign-up
    assert (await login_page(boss, "boss"))[0] == 302
    async with boss.api("PATCH", "/signups/alice", xsrf=False, json={"status": "approved"}) as r:
        assert r.status == 403
    assert signup_row(native_hub, "alice")["status"] == "pending"
    async with boss.api("PATCH", "/signups/alice", json={"status": "approved"}) as r:
        assert r.status == 200


async def test_signup_form_needs_xsrf(native_hub):
    browser = await native_hub.browser()
    form = {"username": "alice", "password": GOOD, "password_confirm": GOOD}
    async with browser.request("POST", "/hub/signup", data=form) as r:
        assert r.status == 403
    assert signup_row(native_hub, "alice") is None


@pytest.mark.parametrize("name, password, confirm, words", [
    ("alice", "short", None, "at least 8 characters"),
    ("alice", "password123", None, "too common"),
    ("alice", "Qwertyuiop", None, "too common"),
    ("alicealice", "alicealice", None, "user name"),
    ("alice", GOOD, GOOD + "x", "differ"),
    ("alice", "é" * 40, None, "at most 72 bytes"),
    ("a/b", GOOD, None, "cannot be used"),
    ("", GOOD, None, "cannot be used"),
    ("carol", GOOD, None, "cannot sign up"),  # banned
])
async def test_sign_up_rules_name_the_problem_and_store_nothing(start_hub, name, password, confirm, words):
    hub = await start_hub({**NATIVE, "users": {"banned": ["carol"]}})
    status, text = await signup(await hub.browser(), name, password, confirm)
    assert status == 400 and words in text
    assert hub.db.one("SELECT COUNT(*) FROM signups")[0] == 0


async def test_a_name_is_taken_once(native_hub):
    assert (await signup(await native_hub.browser(), "alice"))[0] == 200
    status, text = await signup(await native_hub.browser(), "ALICE", "another-pass-99")
    assert status == 400 and "already taken" in text
    assert (await login_page(await native_hub.browser(), "alice", "another-pass-99"))[0] == 403


async def test_open_signup_approves_at_once(start_hub):
    hub = await start_hub({"auth": {"type": "native", "NativeAuthenticator": {"open_signup": True}}})
    browser = await hub.browser()
    status, text = await signup(browser, "alice")
    assert status == 200 and "is ready" in text
    assert (await login_page(browser, "alice"))[0] == 302


async def test_admins_and_allowed_names_are_approved_at_sign_up(start_hub):
    hub = await start_hub({**NATIVE, "users": {"admin": ["boss"], "allowed": ["alice"]}})
    for name in ("boss", "alice", "bob"):
        await signup(await hub.browser(), name)
    assert {r["name"]: r["status"] for r in hub.db.all("SELECT * FROM signups")} == {
        "boss": "approved", "alice": "approved", "bob": "pending"}
    browser = await hub.browser()
    assert (await login_page(browser, "boss"))[0] == 302
    async with browser.api("GET", "/user") as r:
        assert (await r.json())["admin"] is True


async def test_admin_panel_lists_pending_sign_ups(native_hub):
    await signup(await native_hub.browser(), "alice")
    boss = await native_hub.browser()
    await signup(boss, "boss")
    await login_page(boss, "boss")
    async with boss.request("GET", "/hub/admin") as r:
        text = await r.text()
    assert 'id="signups"' in text and 'data-signup="alice"' in text and 'data-signup="boss"' not in text
    async with boss.request("GET", "/hub/authorize") as r:  # upstream's approval page
        assert r.headers["Location"] == "/hub/admin#signups"


async def test_email_on_sign_up(start_hub):
    hub = await start_hub({"auth": {"type": "native", "NativeAuthenticator": {"ask_email_on_signup": True}}})
    browser = await hub.browser()
    async with browser.request("GET", "/hub/signup") as r:
        assert 'name="email"' in await r.text()
    assert (await signup(browser, "alice", email="not an address"))[0] == 400
    assert (await signup(browser, "alice", email="alice@example.org"))[0] == 200
    assert signup_row(hub, "alice")["email"] == "alice@example.org"


async def test_sign_up_can_be_closed(start_hub):
    hub = await start_hub({"auth": {"type": "native", "NativeAuthenticator": {"enable_signup": False}}})
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login") as r:
        assert "/hub/signup" not in await r.text()
    status, text = await signup(browser, "alice")
    assert status == 400 and "closed" in text


async def test_password_change_follows_the_rules(start_hub):
    hub = await start_hub({"auth": {"type": "native", "NativeAuthenticator": {"open_signup": True}}})
    browser = await hub.browser()
    await signup(browser, "alice")
    await login_page(browser, "alice")
    async def change(old, new):
        form = {"old_password": old, "new_password": new, "_xsrf": browser.xsrf}
        async with browser.request("POST", "/hub/auth/change-password", data=form) as r:
            return r.status, await r.text()
    assert (await change("wrong-password", "brand-new-pass-1"))[0] == 400
    status, text = await change(GOOD, "letmein")
    assert status == 400 and "at least 8" in text
    assert (await change(GOOD, "brand-new-pass-1"))[0] == 200
    assert (await login_page(await hub.browser(), "alice"))[0] == 403
    assert (await login_page(await hub.browser(), "alice", "brand-new-pass-1"))[0] == 302


async def test_admin_sets_a_password_but_cannot_blank_it(native_hub):
    await signup(await native_hub.browser(), "alice")
    await native_hub.hub.authenticator.decide("alice", "approved", "boss")
    boss = await native_hub.browser()
    await signup(boss, "boss")
    await login_page(boss, "boss")
    async with boss.request("POST", "/hub/auth/change-password/alice", data={"_xsrf": boss.xsrf}) as r:
        assert r.status == 400 and "Type the new password" in await r.text()
    form = {"_xsrf": boss.xsrf, "new_password": "set-by-admin-7"}
    async with boss.request("POST", "/hub/auth/change-password/alice", data=form) as r:
        assert r.status == 200
    assert (await login_page(await native_hub.browser(), "alice", "set-by-admin-7"))[0] == 302


async def test_deleting_an_approved_user_forgets_the_sign_up(native_hub):
    await signup(await native_hub.browser(), "alice")
    admin = native_hub.token("boss", admin=True)
    async with native_hub.api("PATCH", "/signups/alice", admin, json={"status": "approved"}) as r:
        assert r.status == 200
    async with native_hub.api("PATCH", "/signups/alice", admin, json={"status": "refused"}) as r:
        assert r.status == 400 and "delete the user" in (await r.json())["message"]
    async with native_hub.api("DELETE", "/signups/alice", admin) as r:
        assert r.status == 400
    async with native_hub.api("DELETE", "/users/alice", admin) as r:
        assert r.status == 204
    assert signup_row(native_hub, "alice") is None
    assert (await signup(await native_hub.browser(), "alice"))[0] == 200  # the name is free again


async def test_discarded_sign_up_can_sign_up_again(native_hub):
    await signup(await native_hub.browser(), "alice")
    async with native_hub.api("DELETE", "/signups/alice", native_hub.token("boss", admin=True)) as r:
        assert r.status == 204
    assert (await signup(await native_hub.browser(), "alice"))[0] == 200


async def test_allowed_failed_logins_blocks_for_a_while(start_hub):
    hub = await start_hub({"auth": {"type": "native", "NativeAuthenticator": {
        "open_signup": True, "allowed_failed_logins": 2, "seconds_before_next_try": 120}}})
    await signup(await hub.browser(), "alice")
    browser = await hub.browser()
    for _ in range(2):
        assert (await login_page(browser, "alice", "wrong-guess-1"))[0] == 403
    status, text, _ = await login_page(browser, "alice")
    assert status == 403 and "Too many failed sign-in attempts" in text and "2 minute" in text


async def test_not_native_means_no_sign_up(hub):
    async with hub.request("GET", "/hub/signup") as r:
        assert r.status == 404
    async with hub.api("GET", "/signups", hub.token("boss", admin=True)) as r:
        assert r.status == 404


@pytest.mark.parametrize("settings, key", [
    ({"minimum_password_length": 0}, "auth.NativeAuthenticator.minimum_password_length"),
    ({"open_signup": "yes"}, "auth.NativeAuthenticator.open_signup"),
    ({"recaptcha_key": "x"}, "auth.NativeAuthenticator.recaptcha_key"),
])
def test_bad_native_settings_name_their_key(settings, key):
    config = config_mod.merge(config_mod.DEFAULTS, {"auth": {"type": "native", "NativeAuthenticator": settings}})
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.validate(config)
    assert e.value.key == key


def test_common_password_list_is_bundled_and_checked_lowercase():
    assert len(common_passwords()) > 500 and "123456" in common_passwords()
    rules = PasswordRules(1, check_common=True)
    assert rules.problem("x", "PASSWORD") is not None
    assert rules.problem("x", "violet-kettle-42") is None
    assert PasswordRules(1, check_common=False).problem("x", "password") is None


async def test_sign_up_under_a_base_url(start_hub):
    hub = await start_hub({**NATIVE, "base_url": "/jupyter/"})
    browser = await hub.browser()
    async with browser.request("GET", "/jupyter/hub/login") as r:
        assert 'href="/jupyter/hub/signup"' in await r.text()
    async with browser.request("GET", "/jupyter/hub/signup") as r:
        assert 'action="/jupyter/hub/signup"' in await r.text()
    form = {"username": "alice", "password": GOOD, "password_confirm": GOOD, "_xsrf": browser.xsrf}
    async with browser.request("POST", "/jupyter/hub/signup", data=form) as r:
        assert r.status == 200 and 'href="/jupyter/hub/login"' in await r.text()
    async with hub.request("GET", "/jupyter/hub/api/signups", hub.token("boss", admin=True)) as r:
        assert r.status == 200 and [s["name"] for s in await r.json()] == ["alice"]
