"""Sharing (JupyterHub 5's /shares, /share-codes, /users/{name}/shared): shapes, codes, and the
shared-with user getting into the owner's server through OAuth, until the share is revoked."""

import json
import os
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tljh_daemon import collaboration, tokens

SHARING = {"sharing": {"enabled": True}}
ACCESS = "access:servers!server=alice/"


@pytest.fixture
async def hub(start_hub):
    return await start_hub(SHARING)


def own_token(hub, name):
    """A token holding whatever `name` holds (their roles and their shares), as a browser session."""
    hub.add_user(name)
    return tokens.create(hub.db, name, "api", ["inherit"])


async def _json(resp):
    return resp.status, await resp.json() if resp.content_type.endswith("json") else None


async def test_share_grant_list_revoke(hub):
    alice, bob = own_token(hub, "alice"), own_token(hub, "bob")
    async with hub.api("POST", "/shares/alice/", alice, json={"user": "bob"}) as resp:
        status, share = await _json(resp)
    assert status == 200, share
    assert share["scopes"] == [ACCESS]
    assert share["user"] == {"name": "bob"} and share["group"] is None and share["kind"] == "user"
    assert share["server"] == {"user": {"name": "alice"}, "name": "", "url": "/user/alice/", "full_url": None,
                               "ready": False}
    assert share["created_at"].endswith("Z")
    async with hub.api("GET", "/user", bob) as resp:
        assert ACCESS in (await resp.json())["scopes"]
    for path, token in (("/shares/alice/", alice), ("/shares/alice", alice), ("/users/bob/shared", bob)):
        async with hub.api("GET", path, token) as resp:
            status, page = await _json(resp)
        assert status == 200, (path, page)
        assert [s["user"]["name"] for s in page["items"]] == ["bob"], path
        assert page["_pagination"]["total"] == 1
    async with hub.api("GET", "/users/bob/shared/alice/", bob) as resp:
        assert (await resp.json())["scopes"] == [ACCESS]
    # bob cannot see alice's share list, nor share her server
    async with hub.api("GET", "/shares/alice/", bob) as resp:
        assert resp.status == 404
    async with hub.api("POST", "/shares/alice/", bob, json={"user": "carol"}) as resp:
        assert resp.status == 404
    # revoking (PATCH without scopes) deletes the share: bob holds nothing of alice's any more
    async with hub.api("PATCH", "/shares/alice/", alice, json={"user": "bob"}) as resp:
        assert await _json(resp) == (200, {})
    async with hub.api("GET", "/user", bob) as resp:
        assert ACCESS not in (await resp.json())["scopes"]
    async with hub.api("GET", "/users/bob/shared/alice/", bob) as resp:
        assert resp.status == 404


async def test_share_with_group_and_leave(hub):
    admin = hub.token("boss", admin=True)
    alice, bob = own_token(hub, "alice"), own_token(hub, "bob")
    async with hub.api("POST", "/groups/class", admin, json={"users": ["bob"]}) as resp:
        assert resp.status == 201
    async with hub.api("POST", "/shares/alice/", alice, json={"group": "class"}) as resp:
        status, share = await _json(resp)
    assert status == 200 and share["group"] == {"name": "class"} and share["kind"] == "group"
    async with hub.api("GET", "/user", bob) as resp:
        assert ACCESS in (await resp.json())["scopes"]
    async with hub.api("GET", "/users/bob/shared", bob) as resp:
        assert [s["group"] for s in (await resp.json())["items"]] == [{"name": "class"}]
    async with hub.api("GET", "/groups/class/shared", admin) as resp:
        body = await resp.json()
        assert body.get("_pagination", {}).get("total") == 1, body
    async with hub.api("DELETE", "/groups/class/shared/alice/", admin) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/user", bob) as resp:
        assert ACCESS not in (await resp.json())["scopes"]
    # a user leaves a share made with them
    async with hub.api("POST", "/shares/alice/", alice, json={"user": "bob"}) as resp:
        assert resp.status == 200
    async with hub.api("DELETE", "/users/bob/shared/alice/", bob) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/shares/alice/", alice) as resp:
        assert (await resp.json())["items"] == []


async def test_share_bad_requests(hub):
    alice = own_token(hub, "alice")
    own_token(hub, "bob")
    bad = [{}, {"user": "bob", "group": "g"}, {"user": 3}, {"group": ""}, {"user": ""}, {"user": "bob", "scopes": "x"},
           {"user": "bob", "scopes": ["nonsense"]}, {"user": "bob", "scopes": ["access:servers!server=bob/"]},
           {"user": "bob", "extra": 1}, {"user": "ghost"}, {"group": "nogroup"}, {"user": "alice"}]
    for body in bad:
        async with hub.api("POST", "/shares/alice/", alice, json=body) as resp:
            status, answer = await _json(resp)
        assert status == 400, (body, answer)
        assert answer["message"]
    # a scope alice does not hold on her own server cannot be shared
    async with hub.api("POST", "/shares/alice/", alice, json={"user": "bob", "scopes": ["admin:servers"]}) as resp:
        assert resp.status == 403
    async with hub.api("POST", "/shares/alice/nosuch", alice, json={"user": "bob"}) as resp:
        assert resp.status == 404
    async with hub.api("POST", "/shares/alice", alice, json={"user": "bob"}) as resp:
        assert resp.status == 405
    async with hub.api("GET", "/shares/ghost/", hub.token("boss", admin=True)) as resp:
        assert resp.status == 404


async def test_sharing_off_gives_users_no_shares_scope(start_hub):
    hub = await start_hub()
    alice = own_token(hub, "alice")
    hub.add_user("bob")
    async with hub.api("POST", "/shares/alice/", alice, json={"user": "bob"}) as resp:
        assert resp.status == 403


async def test_share_codes(hub):
    alice, bob = own_token(hub, "alice"), own_token(hub, "bob")
    async with hub.api("POST", "/share-codes/alice/", alice, json={"expires_in": 3600}) as resp:
        status, code = await _json(resp)
    assert status == 200, code
    assert code["id"].startswith("sc_") and code["code"] and code["exchange_count"] == 0
    assert code["accept_url"] == f"/hub/accept-share?code={code['code']}"
    async with hub.api("GET", "/share-codes/alice/", alice) as resp:
        page = await resp.json()
    assert [c["id"] for c in page["items"]] == [code["id"]] and "code" not in page["items"][0]
    for body in ({"expires_in": 10}, {"expires_in": "x"}, {"expires_in": 10**9}, {"user": "bob"}):
        async with hub.api("POST", "/share-codes/alice/", alice, json=body) as resp:
            assert resp.status == 400, body
    # bob accepts the code on the page: he now holds access to alice's server
    browser = await hub.browser("bob")
    async with browser.request("GET", code["accept_url"]) as resp:
        assert resp.status == 200
        assert "alice" in await resp.text()
    async with browser.request("POST", "/hub/accept-share", data={"code": code["code"], "_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/hub/home"  # her server is not running
    async with hub.api("GET", "/user", bob) as resp:
        assert ACCESS in (await resp.json())["scopes"]
    async with hub.api("GET", "/share-codes/alice/", alice) as resp:
        assert (await resp.json())["items"][0]["exchange_count"] == 1
    # revoked by id: the code no longer works
    async with hub.api("DELETE", f"/share-codes/alice/?id={code['id']}", alice) as resp:
        assert resp.status == 204
    async with hub.api("DELETE", f"/share-codes/alice/?id={code['id']}", alice) as resp:
        assert resp.status == 404
    carol = await hub.browser("carol")
    async with carol.request("GET", "/hub/home"):
        pass
    async with carol.request("POST", "/hub/accept-share", data={"code": code["code"], "_xsrf": carol.xsrf}) as resp:
        assert resp.status == 400


async def test_shared_user_gets_into_the_server_until_revoked(hub):
    alice = own_token(hub, "alice")
    await hub.start_server("alice", alice)
    own_token(hub, "bob")
    browser = await hub.browser("bob")
    query = {"client_id": "jupyterhub-user-alice", "redirect_uri": "/user/alice/oauth_callback",
             "response_type": "code", "state": "s"}
    url = "/hub/api/oauth2/authorize?" + urlencode(query)
    async with browser.request("GET", url) as resp:
        assert resp.status == 403  # not shared yet
    async with hub.api("POST", "/shares/alice/", alice, json={"user": "bob"}) as resp:
        assert (await resp.json())["server"]["ready"] is True
    async with browser.request("GET", url) as resp:  # another user's server: a consent page first
        assert resp.status == 200
        assert "Authorize access" in await resp.text()
    async with browser.request("POST", url, data={"_xsrf": browser.xsrf}) as resp:
        assert resp.status == 302
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    async with browser.request("POST", url, data={"_xsrf": "wrong"}) as resp:
        assert resp.status == 403
    # once bob's browser holds a token for the server, he is not asked again
    secret = hub.spawner.requests[-1].env["JUPYTERHUB_API_TOKEN"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": query["redirect_uri"],
            "client_id": query["client_id"], "client_secret": secret}
    async with hub.request("POST", "/hub/api/oauth2/token", data=form) as resp:
        assert resp.status == 200
    async with browser.request("GET", url) as resp:
        assert resp.status == 302
    # alice is never asked about her own server
    alice_browser = await hub.browser("alice")
    async with alice_browser.request("GET", url) as resp:
        assert resp.status == 302
    async with hub.api("DELETE", "/shares/alice/", alice) as resp:
        assert resp.status == 204
    async with browser.request("GET", url) as resp:
        assert resp.status == 403


async def test_home_page_share_panel_only_when_sharing_is_on(hub, start_hub):
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert 'id="share-panel"' in page and "static/share.js" in page and 'name="xsrf"' in page
    assert 'id="share-server"' not in page  # one server: nothing to choose
    named = await start_hub({**SHARING, "named_servers": {"enabled": True}})
    async with named.api("PUT", "/users/alice/servers/proj", named.token("alice"), json={"display_name": "Project"}) as resp:
        assert resp.status == 201
    browser = await named.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        page = await resp.text()
    assert '<option value="" selected>Your default server</option>' in page
    assert '<option value="proj">Project (proj)</option>' in page
    off = await start_hub()
    browser = await off.browser("alice")
    async with browser.request("GET", "/hub/home") as resp:
        assert 'id="share-panel"' not in await resp.text()


async def test_accept_share_page_for_an_unknown_code(hub):
    browser = await hub.browser("bob")
    async with browser.request("GET", "/hub/accept-share?code=sc_nonsense") as resp:
        assert resp.status == 404
        assert "unknown or has expired" in await resp.text()
    anonymous = await hub.browser()
    async with anonymous.request("GET", "/hub/accept-share?code=x") as resp:
        assert resp.status == 302 and "/hub/login" in resp.headers["Location"]


async def test_collaboration_off_disables_its_extensions_in_servers(start_hub):
    """collaboration.enabled off (the default): servers get our config dir that turns
    jupyter-collaboration's extensions off; on: nothing (installed means on)."""
    seen = {}
    for enabled in (False, True):
        hub = await start_hub({"collaboration": {"enabled": enabled}})
        await hub.start_server("alice", hub.token("alice"))
        seen[enabled] = hub.spawner.requests[-1].env.get("JUPYTER_CONFIG_PATH")
    # a copy under the install prefix, readable by every server (the checkout may be under /tmp)
    off = seen[False]
    assert seen[True] is None and off.endswith(os.path.join("share", "jupyter-config", "collaboration-off"))
    assert os.stat(off).st_mode & 0o005 == 0o005
    server_config = os.path.join(off, "jupyter_server_config.d", "tljh-collaboration-off.json")
    with open(server_config) as f:
        assert json.load(f)["ServerApp"]["jpserver_extensions"]["jupyter_server_ydoc"] is False
    with open(os.path.join(off, "labconfig", "page_config.json")) as f:
        assert json.load(f)["disabledExtensions"]["@jupyter/docprovider-extension"] is True


def test_installer_adds_jupyter_collaboration_only_when_on():
    from tljh_daemon import config as config_mod

    on = config_mod.merge(config_mod.DEFAULTS, {"collaboration": {"enabled": True}})
    assert collaboration.installer_packages(on) == ["jupyter-collaboration>=4,<6"]
    assert collaboration.installer_packages(config_mod.DEFAULTS) == []


def test_sharing_and_collaboration_keys_are_validated():
    from tljh_daemon import config as config_mod

    for key in ("sharing", "collaboration"):
        with pytest.raises(config_mod.ConfigError, match=f"{key}.enabled"):
            config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {key: {"enabled": "yes"}}))
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {key: {"enabled": True}}))


def test_reload_says_when_collaboration_is_on_but_not_installed(tmp_path, as_root_for_tljh_config, monkeypatch):
    from click.testing import CliRunner

    from tljh_daemon import config_cli

    monkeypatch.setattr(config_cli, "_reload_hub", lambda paths: None)  # no hub here to restart

    def tljh_config(*args):
        return CliRunner().invoke(config_cli.main, ["--prefix", str(tmp_path), *args])

    assert tljh_config("set", "collaboration.enabled", "true").exit_code == 0
    result = tljh_config("reload", "hub")
    assert result.exit_code == 0, result.output
    assert "has no jupyter-collaboration" in result.output
    (tmp_path / "user" / "lib" / "python3.11" / "site-packages" / "jupyter_server_ydoc").mkdir(parents=True)
    assert "jupyter-collaboration" not in tljh_config("reload", "hub").output
    assert tljh_config("set", "collaboration.enabled", "nope").exit_code != 0


async def test_expired_codes_and_deleted_users(hub):
    alice = own_token(hub, "alice")
    hub.add_user("bob")
    async with hub.api("POST", "/share-codes/alice/", alice, json={}) as resp:
        code = await resp.json()
    assert code["expires_at"] > code["created_at"]  # a day by default
    hub.db.execute("UPDATE share_codes SET expires_at = 1")
    async with hub.api("GET", "/share-codes/alice/", alice) as resp:
        assert (await resp.json())["items"] == []
    browser = await hub.browser("bob")
    async with browser.request("POST", "/hub/accept-share", data={"code": code["code"], "_xsrf": browser.xsrf}) as resp:
        assert resp.status == 400
    # a share goes with the user it was made with
    async with hub.api("POST", "/shares/alice/", alice, json={"user": "bob"}) as resp:
        assert resp.status == 200
    async with hub.api("DELETE", "/users/bob", hub.token("boss", admin=True)) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/shares/alice/", alice) as resp:
        assert (await resp.json())["items"] == []
