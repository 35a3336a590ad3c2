"""The fast tier: the hub application in this process with aiohttp's test client.

No root, no Traefik, no JupyterLab, no network beyond loopback: `make_app` gets a fake
spawner, proxy and account step (see fakes.py). Everything else is the real code.

Writing a test: take the `hub` fixture (default config) or `await start_hub({...})` (config
overrides, validated like config.yaml). Then `hub.token(name, scopes, admin=)` for an API
token, `async with hub.api(method, path, token, json=...) as resp` for a request,
`await hub.browser(name)` for a logged-in browser (cookies, `browser.xsrf`), and
`hub.spawner`, `hub.proxy`, `hub.accounts` to steer or inspect the fakes.
"""

import asyncio
import contextlib
import inspect
import os
import stat

import aiohttp
import pytest
from ruamel.yaml import YAML

from fakes import FakeAccounts, FakeProxy, FakeProxyRunner, FakeSpawner
from tljh_daemon import config as config_mod
from tljh_daemon import scopes, tokens, users
from tljh_daemon.app import make_app
from tljh_daemon.db import SyncDatabase
from tljh_daemon.hub import HUB
from tljh_daemon.paths import Paths

BASE_CONFIG = {
    "auth": {"type": "dummy"},
    "services": {"cull": {"enabled": False}},  # tests call the culler themselves
    "spawner": {"start_timeout": 10, "stop_timeout": 1},
}


async def _value(result):
    """`result`, awaited if it is awaitable (wait_for's conditions may be async)."""
    return await result if inspect.isawaitable(result) else result


def hub_of(app):
    """The Hub object of an app (one place to change if its key changes)."""
    return app[HUB]


def write_config(paths, overrides):
    os.makedirs(paths.config_dir, exist_ok=True)
    with open(paths.config_file, "w") as f:
        YAML(typ="safe").dump(config_mod.merge(BASE_CONFIG, overrides), f)
    return config_mod.load(paths.config_file)


def fake_user_env(path):
    """A user environment with an executable (never run) jupyterhub-singleuser."""
    singleuser = os.path.join(path, "bin", "jupyterhub-singleuser")
    os.makedirs(os.path.dirname(singleuser), exist_ok=True)
    with open(singleuser, "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(singleuser, stat.S_IRWXU)
    return path


class BlockingDB:
    """`execute`/`one`/`all` of the daemon's `Database`, waiting for the answer (test code only:
    the daemon itself awaits them). Helpers that take a `db` (users.ensure_user, ...) accept it."""

    def __init__(self, db):
        self.database = db

    def execute(self, sql, params=()):
        return self.database.blocking(SyncDatabase.execute, sql, params)

    def one(self, sql, params=()):
        return self.database.blocking(SyncDatabase.one, sql, params)

    def all(self, sql, params=()):
        return self.database.blocking(SyncDatabase.all, sql, params)

    def executemany(self, sql, rows):
        return self.database.blocking(lambda db: db.conn.executemany(sql, rows))

    def run(self, fn, *args, **kwargs):
        return self.database.blocking(fn, *args, **kwargs)

    @contextlib.contextmanager
    def transaction(self):
        """Statements of a sync `with` block: nothing else runs on the event loop in between."""
        self.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")


class Browser:
    """A browser: its own cookie jar (login cookie, XSRF cookie) against the hub under test."""

    def __init__(self, origin, base_url="/"):
        self.origin = origin
        self.hub_path = base_url + "hub/"  # where the hub's cookies live
        self.session = aiohttp.ClientSession(base_url=origin, cookie_jar=aiohttp.CookieJar(unsafe=True))

    @property
    def xsrf(self):
        cookie = self.session.cookie_jar.filter_cookies(self.origin.with_path(self.hub_path)).get("_xsrf")
        return cookie.value if cookie else None

    def request(self, method, path, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, path, **kwargs)

    async def login(self, name, password="any", next_url=""):
        """GET the login page (for the XSRF cookie), then POST the form; returns the response."""
        async with self.request("GET", self.hub_path + "login"):
            pass
        form = {"username": name, "password": password, "_xsrf": self.xsrf, "next": next_url}
        async with self.request("POST", self.hub_path + "login", data=form) as resp:
            await resp.read()
            return resp

    def api(self, method, path, *, xsrf=True, **kwargs):
        """A cookie-authenticated API request, with the XSRF header unless `xsrf=False`."""
        headers = kwargs.pop("headers", {})
        if xsrf and self.xsrf:
            headers["X-XSRFToken"] = self.xsrf
        return self.request(method, self.hub_path + "api" + path, headers=headers, **kwargs)

    async def close(self):
        await self.session.close()


class FastHub:
    """The hub under test, its fakes, and helpers to act as users, tokens and browsers."""

    def __init__(self, client, spawner, proxy, proxy_runner, accounts, prefix):
        self.client = client
        self.prefix = prefix
        self.spawner = spawner
        self.proxy = proxy
        self.proxy_runner = proxy_runner
        self.accounts = accounts
        self._browsers = []

    @property
    def hub(self):
        return hub_of(self.client.app)

    @property
    def db(self):
        """The hub's database for test code: each call waits for the database thread."""
        return BlockingDB(self.hub.db)

    def add_user(self, name, admin=False):
        return users.ensure_user(self.db, name, admin=admin)

    def token(self, name, scopes_=None, *, admin=False, expires_in=None):
        """An API token for `name` (created as a user when missing); by default with the
        scopes of the user's role, as a token the user made for themself. Scopes wider than a
        user's own make `name` an admin: a token never does more than its owner may."""
        if scopes_ is not None and not scopes.subset_of(scopes_, scopes.role_scopes(name, False)):
            admin = True
        row = self.add_user(name, admin=admin)
        held = scopes_ if scopes_ is not None else scopes.role_scopes(name, bool(row["admin"]))
        return tokens.create(self.db, name, "api", held, expires_in=expires_in)

    def request(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        kwargs.setdefault("allow_redirects", False)
        return self.client.request(method, path, headers=headers, **kwargs)

    @property
    def base_url(self):
        return self.hub.base_url

    def api(self, method, path, token=None, **kwargs):
        return self.request(method, self.base_url + "hub/api" + path, token, **kwargs)

    async def browser(self, name=None, password="any"):
        """A new browser; logged in as `name` when given."""
        browser = Browser(self.client.make_url("/").with_path(""), self.base_url)
        self._browsers.append(browser)
        if name is not None:
            resp = await browser.login(name, password)
            assert resp.status == 302, f"login of {name} failed with {resp.status}"
        return browser

    async def wait_for(self, condition, what, timeout=10):
        """Until `condition()` (a plain or an async function) is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await _value(condition()):
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def wait_for_state(self, name, state, timeout=10):
        async def reached():
            return await self.hub.servers.state(name) == state

        try:
            await self.wait_for(reached, f"{name}'s server to be {state}", timeout)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {name}'s server to be {state} "
                                 f"(it is {await self.hub.servers.state(name)})") from None

    async def start_server(self, name, token):
        async with self.api("POST", f"/users/{name}/server", token) as resp:
            assert resp.status == 202, await resp.text()
        await self.wait_for_state(name, "running")

    async def close(self):
        for browser in self._browsers:
            await browser.close()
        await self.spawner.close()


@pytest.fixture
def user_env_dir(tmp_path):
    return fake_user_env(str(tmp_path / "user"))


@pytest.fixture
async def start_hub(aiohttp_client, tmp_path, user_env_dir):
    """Factory: the hub application with config overrides (merged over BASE_CONFIG)."""
    hubs = []

    async def start(config=None, *, spawner=None, prefix=None, authenticator=None):
        """`spawner` and `prefix` of an earlier hub: a restart of that hub (servers keep running)."""
        paths = Paths(prefix or str(tmp_path / f"prefix{len(hubs)}"))
        os.makedirs(paths.prefix, exist_ok=True)
        overrides = config_mod.merge({"user_environment": {"path": user_env_dir}}, config or {})
        settings = write_config(paths, overrides)
        paths.ensure()
        spawner = spawner or FakeSpawner()
        proxy = FakeProxy(paths)
        runner = FakeProxyRunner()
        accounts = FakeAccounts(str(tmp_path / "home"))
        app = make_app(settings, paths, spawner=spawner, proxy=proxy, proxy_runner=runner,
                       ensure_account=accounts, remove_account=accounts.remove, authenticator=authenticator)
        hub = FastHub(await aiohttp_client(app), spawner, proxy, runner, accounts, paths.prefix)
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        await hub.close()


@pytest.fixture
async def hub(start_hub):
    """The hub with the fast tier's default config (dummy authenticator, no culling)."""
    return await start_hub()


@pytest.fixture
def as_root_for_tljh_config(monkeypatch):
    """Run tljh-config's commands in-process as a non-root user: only its root check is skipped
    (the check itself is tested as a subprocess in tests/test_config_cli.py)."""
    from tljh_daemon import config_cli
    monkeypatch.setattr(config_cli, "require_root", lambda: None)
