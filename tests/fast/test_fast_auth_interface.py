"""The authenticator interface: registry names, login page shapes, an authenticator's own
routes, auto_login, password change as part of the interface, the shared finish-login path."""

import pytest
from aiohttp import web

from tljh_daemon import config as config_mod
from tljh_daemon.auth import AUTH_TYPES, Authenticator, LoggedIn, LoginRefused, authenticator_class
from tljh_daemon.handlers.login import finish_login
from tljh_daemon.settings import auth_settings


@pytest.mark.parametrize("value,short", [
    ("firstuseauthenticator.FirstUseAuthenticator", "firstuse"), ("jupyterhub.auth.PAMAuthenticator", "pam"),
    ("dummy", "dummy"), ("ldapauthenticator.LDAPAuthenticator", "ldap")])
def test_registry_maps_class_names_to_short_names(value, short):
    assert AUTH_TYPES[value] == short
    assert authenticator_class(value).short_name == short


def test_unknown_type_is_refused_naming_the_key_and_values(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("auth:\n  type: oauthenticator.nope.NopeAuthenticator\n")
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert e.value.key == "auth.type" and "firstuseauthenticator.FirstUseAuthenticator" in str(e.value)


class ButtonAuthenticator(Authenticator):
    """A provider-style authenticator: a button, its own callback route, groups decide admin."""

    password_form = False
    login_service = "Example"
    groups = {"alice": {"staff"}, "bob": set()}

    def login_url(self, next_url):
        return "/hub/example_login?next=" + next_url

    @property
    def auto_login(self):
        return bool(self.auth_settings.extra_user_groups.get("auto"))

    def routes(self):
        table = web.RouteTableDef()

        @table.get("/hub/example_callback")
        async def callback(request):
            name = request.query["user"]
            if name not in self.groups:
                from tljh_daemon.handlers.login import login_refused_page
                return await login_refused_page(request, f"{name} is not allowed")
            return await finish_login(request, LoggedIn(name, admin="staff" in self.groups[name]), "")

        return table


async def callback(browser, name):
    async with browser.request("GET", "/hub/example_callback", params={"user": name}) as r:
        return r.status, await r.text()


async def test_button_only_login_page_and_own_route(start_hub):
    hub = await start_hub(authenticator=ButtonAuthenticator)
    browser = await hub.browser()
    async with browser.request("GET", "/hub/login?next=/hub/token") as r:
        page = await r.text()
    assert 'href="/hub/example_login?next=/hub/token"' in page and "Sign in with Example" in page
    assert 'name="password"' not in page
    assert (await browser.login("alice", "pw")).status == 400  # no password login here
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 0
    status, page = await callback(browser, "mallory")
    assert status == 403 and "mallory is not allowed" in page
    assert hub.db.one("SELECT COUNT(*) FROM users")[0] == 0  # nothing half-created
    status, _ = await callback(browser, "alice")
    assert status == 302
    async with browser.api("GET", "/user") as r:
        assert (await r.json())["admin"] is True


async def test_provider_admin_applied_at_every_login(start_hub):
    hub = await start_hub(authenticator=ButtonAuthenticator)
    await callback(await hub.browser(), "alice")
    assert hub.db.one("SELECT admin FROM users WHERE name='alice'")[0] == 1
    ButtonAuthenticator.groups = {"alice": set(), "bob": set()}
    try:
        await callback(await hub.browser(), "alice")
        assert hub.db.one("SELECT admin FROM users WHERE name='alice'")[0] == 0  # demoted
    finally:
        ButtonAuthenticator.groups = {"alice": {"staff"}, "bob": set()}


async def test_users_admin_still_promotes_and_banned_refused_at_finish(start_hub):
    hub = await start_hub({"users": {"admin": ["bob"], "banned": ["alice"]}}, authenticator=ButtonAuthenticator)
    await callback(await hub.browser(), "bob")
    assert hub.db.one("SELECT admin FROM users WHERE name='bob'")[0] == 1
    status, page = await callback(await hub.browser(), "alice")
    assert status == 403 and "may not use this hub" in page
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name='alice'")[0] == 0


async def test_auto_login_skips_the_page(start_hub):
    hub = await start_hub({"users": {"extra_user_groups": {"auto": ["x"]}}}, authenticator=ButtonAuthenticator)
    async with (await hub.browser()).request("GET", "/hub/login?next=/hub/home") as r:
        assert r.status == 302 and r.headers["Location"] == "/hub/example_login?next=/hub/home"


async def test_password_change_offered_only_where_the_hub_keeps_passwords(start_hub):
    hub = await start_hub({"users": {"admin": ["boss"]}})  # dummy: no hub passwords
    boss = await hub.browser("boss")
    async with boss.request("GET", "/hub/home") as r:
        assert "/hub/auth/change-password" not in await r.text()
    async with boss.request("GET", "/hub/admin") as r:
        assert "/hub/auth/change-password/" not in await r.text()
    async with boss.request("POST", "/hub/auth/change-password",
                            data={"_xsrf": boss.xsrf, "old_password": "a", "new_password": "bbbbbbbb"}) as r:
        assert r.status == 400 and "managed outside the hub" in await r.text()
    async with boss.request("POST", "/hub/auth/change-password/boss", data={"_xsrf": boss.xsrf}) as r:
        assert r.status == 400


async def test_base_class_refuses_password_changes():
    auth = Authenticator(auth_settings(config_mod.merge(config_mod.DEFAULTS, {})), db=None)
    with pytest.raises(LoginRefused, match="managed outside"):
        await auth.change_password("a", "b", "c")
    assert not auth.auto_login and auth.routes() == []

