"""Changing auth.type (login_switch.py): accounts another method made are not claimed by
typing their names under `firstuse` or `pam`; a switch ends every session."""

from tljh_daemon import login_switch
from tljh_daemon.auth.base import Authenticator


async def _login(hub, name, password):
    browser = await hub.browser()
    async with browser.request("GET", browser.hub_path + "login"):
        pass
    form = {"username": name, "password": password, "_xsrf": browser.xsrf, "next": ""}
    async with browser.request("POST", browser.hub_path + "login", data=form) as resp:
        return resp.status, await resp.text()


def _owner(hub, name):
    return hub.db.one("SELECT login_type, password_hash FROM users WHERE name=?", (name,))


async def test_firstuse_does_not_hand_out_an_account_another_method_made(start_hub):
    hub = await start_hub({"auth": {"type": "firstuse"}})
    hub.add_user("lee", admin=True)
    hub.db.execute("UPDATE users SET login_type='generic' WHERE name='lee'")  # made by OpenID Connect
    status, text = await _login(hub, "lee", "stranger-password")
    assert status == 403 and "made by another sign-in method (generic)" in text
    assert "resets its password" in text
    assert _owner(hub, "lee")["password_hash"] is None, "nothing was claimed"
    await hub.hub.authenticator.reset_password("lee")  # the admin hands it over
    assert _owner(hub, "lee")["login_type"] == "firstuse"
    status, _ = await _login(hub, "lee", "lees-own-password")
    assert status == 302
    # A user an admin added (no method yet) is claimed by its first login, as before.
    hub.add_user("new")
    assert (await _login(hub, "new", "first-password"))[0] == 302
    assert _owner(hub, "new")["login_type"] == "firstuse"


class FakePam(Authenticator):
    short_name = "pam"

    async def check_password(self, name, password):
        return True


async def test_pam_refuses_another_methods_account_until_an_admin_deletes_the_user(start_hub):
    hub = await start_hub({"auth": {"type": "firstuse"}}, authenticator=FakePam)
    hub.add_user("kim")
    hub.db.execute("UPDATE users SET login_type='ldap' WHERE name='kim'")
    status, text = await _login(hub, "kim", "unix-password")
    assert status == 403 and "(ldap)" in text and "deletes the user" in text
    async with hub.api("DELETE", "/users/kim", hub.token("root", admin=True)) as resp:
        assert resp.status == 204
    assert (await _login(hub, "kim", "unix-password"))[0] == 302
    assert _owner(hub, "kim")["login_type"] == "pam"


async def test_a_switch_ends_sessions_and_the_first_start_records_owners(start_hub):
    hub = await start_hub({"auth": {"type": "dummy"}})
    await hub.browser("ann")
    token = hub.token("ann")
    assert _owner(hub, "ann")["login_type"] == "dummy"
    # As a database from before login types: no owners recorded, no state.
    hub.db.execute("UPDATE users SET login_type=NULL")
    hub.db.execute("DELETE FROM hub_state")
    again = await start_hub({"auth": {"type": "firstuse"}}, prefix=hub.prefix, spawner=hub.spawner)
    assert _owner(again, "ann")["login_type"] == login_switch.EARLIER  # used, no password: not claimable
    assert again.db.one("SELECT count(*) AS n FROM sessions")["n"] == 1, "a first start ends nothing"
    third = await start_hub({"auth": {"type": "dummy"}}, prefix=hub.prefix, spawner=hub.spawner)
    assert third.db.one("SELECT count(*) AS n FROM sessions")["n"] == 0, "a switch ends every session"
    async with third.api("GET", "/user", token) as resp:
        assert resp.status == 200, "API tokens stay"


def test_the_installers_admin_password_hands_the_account_to_firstuse(tmp_path):
    from tljh_daemon.db import SyncDatabase
    from tljh_daemon.paths import Paths
    from tljh_installer.steps import preset_admin_passwords

    paths = Paths(str(tmp_path))
    paths.ensure()
    db = SyncDatabase(paths.database)
    db.execute("INSERT INTO users (name, created, login_type) VALUES ('alice', 't', 'ldap')")
    db.conn.close()
    preset_admin_passwords(paths, {"alice": "change-me-42"})  # bootstrap.py --admin alice:change-me-42
    db = SyncDatabase(paths.database)
    row = db.one("SELECT admin, login_type, password_hash FROM users WHERE name='alice'")
    db.conn.close()
    assert row["admin"] == 1 and row["login_type"] == "firstuse" and row["password_hash"]
