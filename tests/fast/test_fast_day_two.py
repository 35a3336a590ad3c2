"""Issue 19's small checks: e-mail-style names' OAuth clients (and their migration), the URL
the installer and the "Hub ready" line show, the installer's hub check, `tljh-daemon logs`."""

import sqlite3
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tljh_daemon import config as config_mod
from tljh_daemon import db as db_mod
from tljh_daemon import limit_changes, server_logs, service, urls
from tljh_daemon.app import public_url
from tljh_daemon.paths import Paths
from tljh_daemon.settings import from_config
from tljh_daemon.users import InvalidName, system_username

ANN = "ann@example.org"


async def test_an_e_mail_style_name_gets_a_client_id_that_can_name_a_cookie(hub):
    await hub.start_server(ANN, hub.token(ANN))
    env = hub.spawner.requests[-1].env
    client_id = env["JUPYTERHUB_CLIENT_ID"]
    assert client_id == "jupyterhub-user-ann%40example.org"  # JupyterHub's form
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/ann@example.org/"  # URL paths keep `@`
    # jupyterhub-singleuser's state cookie is named after the client id: the standard library
    # (which tornado uses) must accept that name.
    SimpleCookie()[client_id + "-oauth-state"] = "x"
    with pytest.raises(CookieError):
        SimpleCookie()["jupyterhub-user-ann@example.org-oauth-state"] = "x"
    # And the OAuth flow works under that id.
    browser = await hub.browser(ANN)
    callback = env["JUPYTERHUB_OAUTH_CALLBACK_URL"]
    query = {"client_id": client_id, "redirect_uri": callback, "response_type": "code", "state": "s"}
    async with browser.request("GET", "/hub/api/oauth2/authorize?" + urlencode(query)) as resp:
        assert resp.status == 302, await resp.text()
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback,
            "client_id": client_id, "client_secret": env["JUPYTERHUB_API_TOKEN"]}
    async with hub.request("POST", "/hub/api/oauth2/token", data=form) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["access_token"]
    async with hub.api("GET", "/user", token) as resp:
        assert (await resp.json())["name"] == ANN


def test_an_upgrade_renames_e_mail_style_names_oauth_clients(tmp_path):
    path = str(tmp_path / "tljh.sqlite")
    old = sqlite3.connect(path, isolation_level=None)
    for script in db_mod.MIGRATIONS[:4]:  # the schema before quoted client ids
        for statement in db_mod.statements(script):
            old.execute(statement)
    old.execute("PRAGMA user_version=4")
    old.execute("INSERT INTO users (name, created) VALUES (?, 't'), ('bob', 't')", (ANN,))
    for client in ("jupyterhub-user-ann@example.org", "jupyterhub-user-bob", "service-x@y"):
        old.execute("INSERT INTO oauth_clients (id, secret_hash, redirect_uri, access_scopes)"
                    " VALUES (?, 'h', 'r', '[]')", (client,))
        old.execute("INSERT INTO api_tokens (prefix, hash, user, kind, client_id, scopes, created)"
                    " VALUES ('p', ?, 'bob', 'oauth', ?, '[]', 't')", ("hash-" + client, client))
        old.execute("INSERT INTO oauth_codes (hash, client_id, user, redirect_uri, scopes, expires_at)"
                    " VALUES (?, ?, 'bob', 'r', '[]', 0)", ("code-" + client, client))
    old.close()
    db = db_mod.SyncDatabase(path)
    try:
        assert db.version == len(db_mod.MIGRATIONS)
        clients = sorted(r["id"] for r in db.all("SELECT id FROM oauth_clients"))
        assert clients == ["jupyterhub-user-ann%40example.org", "jupyterhub-user-bob", "service-x@y"]
        assert sorted(r["client_id"] for r in db.all("SELECT client_id FROM api_tokens")) == clients
        codes = sorted(r["client_id"] for r in db.all("SELECT client_id FROM oauth_codes"))
        assert codes == ["jupyterhub-user-bob", "service-x@y"]
    finally:
        db.conn.close()


@pytest.mark.parametrize("overrides, shown, checked", [
    ({"http": {"port": 8080}}, "http://127.0.0.1:8080/", "http://127.0.0.1:8080/hub/api"),
    ({"http": {"port": 80}, "base_url": "/jupyter/"}, "http://127.0.0.1/jupyter/", "http://127.0.0.1:80/jupyter/hub/api"),
    ({"https": {"enabled": True, "port": 8443}}, "https://127.0.0.1:8443/", "https://127.0.0.1:8443/hub/api"),
    ({"https": {"enabled": True, "letsencrypt": {"email": "a@b.org", "domains": ["hub.example.org"]}}},
     "https://hub.example.org/", "https://127.0.0.1:443/hub/api"),
])
def test_the_url_shown_is_the_real_one_and_the_check_stays_on_loopback(overrides, shown, checked, tmp_path):
    config = config_mod.merge(config_mod.DEFAULTS, overrides)
    assert public_url(from_config(config, Paths(str(tmp_path)))) == shown
    url, context = service.check_url(config)
    assert url == checked  # never the http port when HTTPS is on: that only redirects
    if url.startswith("https"):
        assert context is not None and not context.check_hostname  # the name is never 127.0.0.1
    else:
        assert context is None


def test_site_url_brackets_ipv6_and_drops_default_ports():
    assert urls.site_url("/", host="::1", port=8000) == "http://[::1]:8000/"
    assert urls.site_url("/x/", host="10.0.0.1", port=443, https=True) == "https://10.0.0.1/x/"


def test_logs_of_a_process_mode_server_are_its_file(tmp_path):
    paths = Paths(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="has never started"):
        server_logs.command(paths, "Bob")
    log = tmp_path / "state" / "logs" / f"{system_username(ANN)}.log"
    log.parent.mkdir(parents=True)
    log.write_text("one\n")
    assert server_logs.command(paths, "Ann@Example.org") == ["tail", "-n", "+1", str(log)]
    assert server_logs.command(paths, ANN, lines=5, follow=True) == ["tail", "-n", "5", "-f", str(log)]
    with pytest.raises(InvalidName):
        server_logs.command(paths, "a/b")
    named = log.parent / f"{system_username(ANN)}-ml.log"  # a named server's own file
    named.write_text("two\n")
    assert server_logs.command(paths, ANN, server="ml") == ["tail", "-n", "+1", str(named)]
    with pytest.raises(InvalidName):
        server_logs.command(paths, ANN, server="../x")


def test_logs_under_systemd_ask_for_the_scope_and_the_service():
    assert server_logs.journal_units(ANN) == ["jupyter-ann\\x40example.org.service",
                                              "jupyter-ann\\x40example.org.scope"]
    assert server_logs.journal_units("bob", "ml") == ["jupyter-bob-ml.service", "jupyter-bob-ml.scope"]


async def test_running_servers_with_other_limits_are_named(start_hub):
    first = await start_hub({"limits": {"memory": "1G"}})
    await first.start_server("alice", first.token("alice"))
    again = await start_hub({"limits": {"memory": "2G", "cpu": 1}}, prefix=first.prefix, spawner=first.spawner)
    await again.start_server("bob", again.token("bob"))  # started with the new limits
    browser = await again.browser("root2")
    again.db.execute("UPDATE users SET admin=1 WHERE name='root2'")
    async with browser.request("GET", "/hub/admin") as resp:
        page = await resp.text()
    assert "new limits\n  apply to each server at its next start" in page
    assert 'id="other-limits">1 running\n  server keeps' in page and "next start: alice." in page
    # What `tljh-config reload hub` reads, beside the running daemon.
    database = again.hub.paths.database
    assert limit_changes.running_with_other_limits(database, {"limits": {"memory": "2G", "cpu": 1}}) == ["alice"]
    assert limit_changes.running_with_other_limits(database, {"limits": {"memory": "1G", "cpu": None}}) == ["bob"]
    assert limit_changes.running_with_other_limits(database + ".missing", {"limits": {}}) == []
