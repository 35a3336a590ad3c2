"""User names: '.' and '..' are refused; names that are not portable Unix names get a safe ASCII
account name of their own, while the hub name stays as typed."""

import pytest

from tljh_daemon.users import system_username


@pytest.mark.parametrize("name", [".", "..", " .. ", "．．"])
async def test_dot_names_are_refused_with_a_clear_400(hub, name):
    admin = hub.token("root1", admin=True)
    async with hub.api("POST", "/users", admin, json={"usernames": [name]}) as resp:
        assert resp.status == 400
        assert "cannot be a user name" in (await resp.json())["message"]
    browser = await hub.browser()
    resp = await browser.login(name)
    assert resp.status == 403
    assert hub.db.one("SELECT COUNT(*) FROM users WHERE name IN ('.', '..')")[0] == 0


@pytest.mark.parametrize("name", ["été", "学生", "a@b.example", "bob+tag", "x" * 40 + "é"])
def test_non_portable_names_get_ascii_accounts_of_one_shape(name):
    account = system_username(name)
    assert account.isascii() and account.startswith("jupyter-") and len(account) == 30
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert set(account) <= allowed, account


def test_portable_names_keep_tljhs_rule():
    assert system_username("alice") == "jupyter-alice"
    long = system_username("a" * 30)
    assert len(long) == 32 and long.startswith("jupyter-" + "a" * 18 + "-")
    # Neither branch of TLJH's rule gives 30 characters, so no portable name reaches a mapped account.
    assert {len(system_username("a" * n)) for n in range(1, 60)} == set(range(9, 26)) | {32}


async def test_non_ascii_user_works_through_routes_and_api(hub):
    name = "zoë"
    admin = hub.token("root1", admin=True)
    async with hub.api("POST", "/users", admin, json={"usernames": ["Zoë"]}) as resp:
        assert resp.status == 201
        assert (await resp.json())[0]["name"] == name
    async with hub.api("GET", "/users/zo%C3%AB", admin) as resp:
        assert resp.status == 200 and (await resp.json())["name"] == name
    await hub.start_server(name, hub.token(name))
    assert hub.spawner.requests[-1].username == system_username(name)
    assert "/user/zo%C3%AB/" in hub.proxy.routes
    async with hub.api("DELETE", "/users/zo%C3%AB", admin) as resp:
        assert resp.status == 204
