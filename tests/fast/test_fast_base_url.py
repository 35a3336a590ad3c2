"""base_url: the whole hub under a sub-path (/jupyter/), as behind another web server.

Every redirect, cookie path, OAuth URL, API URL, route and server environment carries the
prefix, and nothing answers at the old unprefixed paths.
"""

import json
import os
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from tljh_daemon.proxy.traefik import TraefikProxy

BASE = "/jupyter/"


@pytest.fixture
async def hub(start_hub):
    return await start_hub({"base_url": BASE})


async def _get(client, path):
    async with client.request("GET", path) as resp:
        return resp.status, resp.headers.get("Location"), await resp.text()


async def test_every_redirect_carries_the_prefix(hub):
    anonymous = await hub.browser()
    for path, location in [
        ("/", "/jupyter/"),
        ("/jupyter", "/jupyter/"),
        ("/jupyter/", "/jupyter/hub/"),
        ("/jupyter/hub", "/jupyter/hub/login"),
        ("/jupyter/hub/", "/jupyter/hub/login"),
        ("/jupyter/hub/home", "/jupyter/hub/login?next=/jupyter/hub/home"),
        ("/jupyter/hub/spawn", "/jupyter/hub/login?next=/jupyter/hub/spawn"),
        ("/jupyter/user-redirect/lab/tree/a.ipynb?x=1", "/jupyter/hub/user-redirect/lab/tree/a.ipynb?x=1"),
        ("/jupyter/user/alice/lab?x=1", "/jupyter/hub/user/alice/lab?x=1"),
    ]:
        status, got, _ = await _get(anonymous, path)
        assert (status, got) == (302, location), path

    browser = await hub.browser()
    resp = await browser.login("alice")
    assert resp.headers["Location"] == "/jupyter/hub/spawn"
    assert (await _get(browser, "/jupyter/hub/"))[1] == "/jupyter/hub/home"
    assert (await _get(browser, "/jupyter/hub/spawn"))[1] == "/jupyter/hub/spawn-pending/alice"
    await hub.wait_for_state("alice", "running")
    assert (await _get(browser, "/jupyter/hub/login"))[1] == "/jupyter/user/alice/"
    assert (await _get(browser, "/jupyter/hub/spawn-pending/alice"))[1] == "/jupyter/user/alice/"
    assert (await _get(browser, "/jupyter/hub/user-redirect/lab/tree/a%23b.ipynb?x=1"))[1] == \
        "/jupyter/user/alice/lab/tree/a%23b.ipynb?x=1"
    # A request for a running server that reached the hub (stale route): one retry, same prefix.
    assert (await _get(browser, "/jupyter/hub/user/alice/lab"))[1] == "/jupyter/user/alice/lab?redirects=1"
    async with browser.request("POST", "/jupyter/hub/stop", data={"_xsrf": browser.xsrf}) as resp:
        assert (resp.status, resp.headers["Location"]) == (302, "/jupyter/hub/home")
    await hub.wait_for_state("alice", "stopped")
    assert (await _get(browser, "/jupyter/hub/user/alice/lab"))[1] == \
        "/jupyter/hub/spawn/alice?next=/jupyter/user/alice/lab"
    assert (await _get(browser, "/jupyter/hub/logout"))[1] == "/jupyter/hub/login"


async def test_cookies_live_under_the_prefix(hub):
    browser = await hub.browser()
    async with browser.request("GET", "/jupyter/hub/login") as resp:
        xsrf = resp.cookies["_xsrf"]
    assert xsrf["path"] == "/jupyter/hub/" and xsrf["httponly"]
    resp = await browser.login("alice")
    login = resp.cookies["jupyterhub-hub-login"]
    assert login["path"] == "/jupyter/hub/" and login["httponly"]
    async with browser.request("GET", "/jupyter/hub/logout") as resp:
        gone = resp.cookies["jupyterhub-hub-login"]
    assert gone["path"] == "/jupyter/hub/" and gone.value == ""
    assert (await _get(browser, "/jupyter/hub/home"))[1].startswith("/jupyter/hub/login?")


async def test_nothing_answers_outside_the_prefix(hub):
    token = hub.token("boss", admin=True)
    for path in ("/hub/login", "/hub/api", "/hub/home", "/hub/static/api.js", "/user/alice/lab"):
        async with hub.request("GET", path, token) as resp:
            assert resp.status == 404, path
    async with hub.request("GET", "/jupyter/hub/api") as resp:
        assert resp.status == 200 and "version" in await resp.json()
    async with hub.request("GET", "/jupyter/hub/api/users/nobody", token) as resp:
        assert resp.status == 404 and (await resp.json())["status"] == 404  # API errors stay JSON


async def test_pages_link_and_load_under_the_prefix(hub):
    browser = await hub.browser("alice")
    _, _, login_page = await _get(await hub.browser(), "/jupyter/hub/login")
    assert 'action="/jupyter/hub/login"' in login_page
    _, _, home = await _get(browser, "/jupyter/hub/home")
    for link in ('href="/jupyter/hub/logout"', 'href="/jupyter/hub/token"', 'src="/jupyter/hub/logo"',
                 'src="/jupyter/hub/static/api.js"', 'action="/jupyter/hub/spawn"',
                 'window.jhdata = {base_url: "/jupyter/hub/", prefix: "/jupyter/"}'):
        assert link in home, link
    assert '"/hub/' not in home  # no link escapes the prefix
    for path, kind in (("/jupyter/hub/static/api.js", "javascript"), ("/jupyter/hub/logo", "svg")):
        async with browser.request("GET", path) as resp:
            assert resp.status == 200 and kind in resp.headers["Content-Type"], path
    async with browser.request("GET", "/jupyter/hub/static/api.js") as resp:
        assert 'window.jhdata.base_url + "api"' in await resp.text()
    _, _, admin_page = await _get(await hub.browser("root-admin"), "/jupyter/hub/admin")
    assert '"/hub/' not in admin_page


async def test_servers_get_prefixed_urls_and_routes(hub):
    token = hub.token("alice")
    await hub.start_server("alice", token)
    env = hub.spawner.requests[-1].env
    api = f"http://127.0.0.1:{hub.hub.settings.hub_port}/jupyter/hub/api"
    assert env["JUPYTERHUB_BASE_URL"] == "/jupyter/"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/jupyter/user/alice/"
    assert env["JUPYTERHUB_SERVICE_URL"].endswith("/jupyter/user/alice/")
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/jupyter/user/alice/oauth_callback"
    assert env["JUPYTERHUB_API_URL"] == api
    assert env["JUPYTERHUB_ACTIVITY_URL"] == api + "/users/alice/activity"
    assert list(hub.proxy.routes) == ["/jupyter/user/alice/"]
    async with hub.api("GET", "/users/alice", token) as resp:
        model = await resp.json()
    assert model["server"] == "/jupyter/user/alice/"
    async with hub.api("GET", "/users/alice", token,
                       params={"include_stopped_servers": "1"}) as resp:
        server = (await resp.json())["servers"][""]
    assert server["url"] == "/jupyter/user/alice/"
    assert server["progress_url"] == "/jupyter/hub/api/users/alice/server/progress"
    async with hub.api("GET", "/users/alice/server/progress", token) as resp:
        assert resp.status == 200


async def test_oauth_uses_prefixed_urls(hub):
    await hub.start_server("alice", hub.token("alice"))
    secret = hub.spawner.requests[-1].env["JUPYTERHUB_API_TOKEN"]
    callback = "/jupyter/user/alice/oauth_callback"
    query = {"client_id": "jupyterhub-user-alice", "redirect_uri": callback, "response_type": "code"}
    anonymous = await hub.browser()
    status, location, _ = await _get(anonymous, "/jupyter/hub/api/oauth2/authorize?" + urlencode(query))
    assert status == 302 and location.startswith("/jupyter/hub/login?next=/jupyter/hub/api/oauth2")
    browser = await hub.browser("alice")
    wrong = {**query, "redirect_uri": "/user/alice/oauth_callback"}
    assert (await _get(browser, "/jupyter/hub/api/oauth2/authorize?" + urlencode(wrong)))[0] == 400
    status, location, _ = await _get(browser, "/jupyter/hub/api/oauth2/authorize?" + urlencode(query))
    assert status == 302 and location.startswith(callback + "?")
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback,
            "client_id": "jupyterhub-user-alice", "client_secret": secret}
    async with hub.request("POST", "/jupyter/hub/api/oauth2/token", data=form) as resp:
        assert resp.status == 200 and (await resp.json())["access_token"]


async def test_managed_services_live_under_the_prefix(start_hub):
    hub = await start_hub({"base_url": BASE, "services": {
        "announcer": {"command": [sys.executable, "-c", "import time; time.sleep(60)"],
                      "url": "http://127.0.0.1:10101"}}})
    assert hub.proxy.routes == {"/jupyter/services/announcer/": "http://127.0.0.1:10101"}
    service = hub.hub.service_manager.services["announcer"]
    env = hub.hub.service_manager._environment(service)
    assert env["JUPYTERHUB_BASE_URL"] == "/jupyter/"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/jupyter/services/announcer/"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/jupyter/services/announcer/oauth_callback"
    assert env["JUPYTERHUB_API_URL"].endswith("/jupyter/hub/api")
    async with hub.api("GET", "/services", hub.token("boss", admin=True)) as resp:
        assert (await resp.json())["announcer"]["prefix"] == "/jupyter/services/announcer/"


def test_traefik_rules_route_prefixed_servers(tmp_path):
    from tljh_daemon import config as config_mod
    from tljh_daemon.paths import Paths
    from tljh_daemon.settings import proxy_settings

    config = config_mod.merge(config_mod.DEFAULTS, {"base_url": BASE, "traefik_api": {"password": "x"}})
    proxy = TraefikProxy(Paths(str(tmp_path)), proxy_settings(config), "traefik")
    proxy.routes = {"/jupyter/user/alice/": "http://127.0.0.1:5000"}
    routers = json.loads(json.dumps(proxy.dynamic_config()))["http"]["routers"]
    rules = {r["rule"]: r["priority"] for r in routers.values() if r["entryPoints"] == ["http"]}
    # The hub keeps the catch-all (it sends paths outside the prefix to it); servers outrank it.
    assert rules["PathPrefix(`/jupyter/user/alice/`)"] > rules["PathPrefix(`/`)"]


def test_traefik_checks_its_api_password_cheaply(tmp_path):
    """Traefik verifies the API's basic-auth hash on every route check (every 20 ms per starting
    server): SHA-1 ({SHA}), not bcrypt, which cost it ~50 ms of CPU per check."""
    import base64
    import hashlib

    from tljh_daemon import config as config_mod
    from tljh_daemon.paths import Paths
    from tljh_daemon.settings import proxy_settings

    config = config_mod.merge(config_mod.DEFAULTS, {"traefik_api": {"password": "s3cret"}})
    proxy = TraefikProxy(Paths(str(tmp_path)), proxy_settings(config), "traefik")
    users = proxy.dynamic_config()["http"]["middlewares"]["traefik-api-auth"]["basicAuth"]["users"]
    assert users == [f"{proxy.api_user}:{{SHA}}" + base64.b64encode(hashlib.sha1(b"s3cret").digest()).decode()]


@pytest.fixture
async def provider():
    from fake_provider import FakeProvider

    p = await FakeProvider().start()
    p.add_user("alice", email="alice@example.org", groups=["class-a"])
    yield p
    await p.close()


async def test_oauth_sign_in_lives_under_the_prefix(start_hub, provider):
    from yarl import URL

    from test_fast_oidc import generic

    hub = await start_hub({"base_url": BASE, **generic(provider)})
    browser = await hub.browser()
    _, _, page = await _get(browser, "/jupyter/hub/login?next=/jupyter/hub/token")
    assert 'href="/jupyter/hub/oauth_login?next=%2Fjupyter%2Fhub%2Ftoken"' in page
    provider.next_user = "alice"
    async with browser.request("GET", "/jupyter/hub/oauth_login", params={"next": "/jupyter/hub/token"}) as r:
        assert r.status == 302 and r.cookies["tljh-oauth-state"]["path"] == "/jupyter/hub/"
        to_provider = r.headers["Location"]
    async with aiohttp.ClientSession() as outside, outside.get(to_provider, allow_redirects=False) as r:
        back = URL(r.headers["Location"])
    assert provider.authorize_requests[-1]["redirect_uri"] == str(hub.client.make_url("/jupyter/hub/oauth_callback"))
    assert back.path == "/jupyter/hub/oauth_callback"
    async with browser.request("GET", back.path_qs) as r:
        assert (r.status, r.headers["Location"]) == (302, "/jupyter/hub/token")
        assert r.cookies["jupyterhub-hub-login"]["path"] == "/jupyter/hub/"


def test_oauth_callback_url_must_be_under_the_prefix(tmp_path):
    from tljh_daemon import config as config_mod

    section = {"client_id": "c", "client_secret": "s", "authorize_url": "https://idp.example.org/auth",
               "token_url": "https://idp.example.org/token"}
    settings = {"base_url": BASE, "auth": {"type": "generic", "GenericOAuthenticator": section}}
    for url, ok in (("https://hub.example.org/hub/oauth_callback", False),
                    ("https://hub.example.org/jupyter/hub/oauth_callback", True)):
        section["oauth_callback_url"] = url
        config = config_mod.merge(config_mod.DEFAULTS, settings)
        if ok:
            config_mod.check(config)
            continue
        with pytest.raises(config_mod.ConfigError) as e:
            config_mod.check(config)
        assert e.value.key == "auth.GenericOAuthenticator.oauth_callback_url" and "/jupyter/hub/" in str(e.value)


def test_how_to_lines_are_accepted(tmp_path, as_root_for_tljh_config):
    """The how-to's tljh-config lines run as written and give a hub under /jupyter/ on loopback."""
    import re
    import shlex

    from click.testing import CliRunner

    from tljh_daemon import config as config_mod
    from tljh_daemon.config_cli import main

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "howto-base-url.md")) as f:
        lines = re.findall(r"^sudo tljh-config (set .+?)(?:\s+#.*)?$", f.read(), re.M)
    assert len(lines) == 3
    for line in lines:
        result = CliRunner().invoke(main, ["--prefix", str(tmp_path), *shlex.split(line)])
        assert result.exit_code == 0, (line, result.output)
    config = config_mod.load(os.path.join(tmp_path, "config", "config.yaml"))
    assert (config["base_url"], config["http"]["address"], config["http"]["port"]) == ("/jupyter/", "127.0.0.1", 8080)


def test_base_url_and_oauth_callback_change_together(tmp_path, as_root_for_tljh_config):
    """`tljh-config set base_url` moves the hub's OAuth callback URL with it (and says so); a
    callback that does not fit base_url is refused naming the URL to use. Nothing is left in a
    state that `get` and `reload` refuse."""
    from click.testing import CliRunner

    from tljh_daemon import config as config_mod
    from tljh_daemon.config_cli import main

    def run(*args):
        return CliRunner().invoke(main, ["--prefix", str(tmp_path), *args])

    path = os.path.join(tmp_path, "config", "config.yaml")
    for key, value in (("auth.type", "github"), ("auth.GitHubOAuthenticator.client_id", "c"),
                       ("auth.GitHubOAuthenticator.client_secret", "s"),
                       ("auth.GitHubOAuthenticator.oauth_callback_url", "https://hub.example.org/hub/oauth_callback")):
        assert run("set", key, value).exit_code == 0, key
    moved = run("set", "base_url", "/jupyter/")
    assert moved.exit_code == 0, moved.output
    assert ("Also changed auth.GitHubOAuthenticator.oauth_callback_url from https://hub.example.org/hub/oauth_callback"
            " to https://hub.example.org/jupyter/hub/oauth_callback") in moved.output
    config = config_mod.load(path)  # what get, export and reload do: it is consistent
    assert config["auth"]["GitHubOAuthenticator"]["oauth_callback_url"] == "https://hub.example.org/jupyter/hub/oauth_callback"
    assert run("get", "base_url").output.strip() == "/jupyter/"

    with open(path) as f:
        before = f.read()
    refused = run("set", "auth.GitHubOAuthenticator.oauth_callback_url", "https://hub.example.org/hub/oauth_callback")
    assert refused.exit_code == 1
    assert ("not under base_url /jupyter/" in refused.output
            and "set it to https://hub.example.org/jupyter/hub/oauth_callback" in refused.output), refused.output
    with open(path) as f:
        assert f.read() == before, "a refused change leaves config.yaml as it was"
    assert run("set", "base_url", "/").exit_code == 0
    assert config_mod.load(path)["auth"]["GitHubOAuthenticator"]["oauth_callback_url"] == \
        "https://hub.example.org/hub/oauth_callback"


async def test_servers_of_a_former_base_url_are_stopped_at_start(start_hub):
    """A server serves the prefix it was started with: after base_url changes (reload hub =
    restart), it is stopped rather than routed at a prefix it does not answer."""
    hub = await start_hub()
    await hub.start_server("alice", hub.token("alice"))
    again = await start_hub({"base_url": BASE}, spawner=hub.spawner, prefix=hub.prefix)
    await again.wait_for_state("alice", "stopped")
    assert "alice" in hub.spawner.stopped and again.proxy.routes == {}
    await again.start_server("alice", again.token("alice"))
    assert again.spawner.requests[-1].env["JUPYTERHUB_SERVICE_PREFIX"] == "/jupyter/user/alice/"
    third = await start_hub({"base_url": BASE}, spawner=hub.spawner, prefix=hub.prefix)  # unchanged: kept
    assert (await third.hub.servers.state("alice")) == "running" and list(third.proxy.routes) == ["/jupyter/user/alice/"]
