"""Stand-ins for the parts of a spawn that need root or other programs (fast tier only).

`FakeSpawner` answers the hub's readiness check with a tiny aiohttp server in this
process, on the port and prefix the hub chose, so `ServerManager`'s real code path
(tokens, OAuth client, environment, admission, readiness polling, routes) runs.
`FakeProxy` records routes instead of writing Traefik's rules; `FakeAccounts`
stands in for creating Unix accounts.
"""

import itertools
import os
import shutil
import time
from types import SimpleNamespace

from aiohttp import web
from yarl import URL

from tljh_daemon.accounts import AccountError
from tljh_daemon.spawner import ProcessId, SpawnError, Spawner


class FakeSpawner(Spawner):
    """Each server is an in-process HTTP app answering `<prefix>api`, like jupyterhub-singleuser."""

    def __init__(self):
        self.requests = []  # every SpawnRequest, in order
        self.running = {}  # user -> (state, AppRunner or None)
        self.ended = {}  # user -> how its last server ended (what poll reports)
        self.stopped = []  # users whose server was stopped through stop()
        self.fail_start = None  # a message: start() raises SpawnError with it
        self.exit_on_start = None  # a message: the server "exits" before answering
        self.never_answer = False  # servers run but never answer their readiness check
        self.silent = set()  # users whose servers never answer (the others do)
        self._pids = itertools.count(900_000)

    async def start(self, request):
        self.requests.append(request)
        if self.fail_start:
            raise SpawnError(self.fail_start)
        state = ProcessId(next(self._pids), time.time()).state()  # as a local backend's (not a real process)
        if self.exit_on_start:
            with open(request.log_path, "a") as f:
                f.write("starting\nTraceback: ImportError: no module named jupyterlab\n")
            self.ended[request.user] = self.exit_on_start
            return state
        runner = None
        if not (self.never_answer or request.user in self.silent):
            url = URL(request.env["JUPYTERHUB_SERVICE_URL"])
            app = web.Application()

            async def api(_request):
                return web.json_response({"version": "fake"})

            app.router.add_get(request.env["JUPYTERHUB_SERVICE_PREFIX"] + "api", api)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", url.port).start()
        self.running[request.user] = (state, runner)
        self.ended.pop(request.user, None)
        return state

    async def poll(self, user, state):
        entry = self.running.get(user)
        if entry is not None and entry[0] == state:
            return None
        return self.ended.get(user, "the process is gone")

    async def stop(self, user, state, timeout):
        self.stopped.append(user)
        await self._end(user, "stopped by the hub")

    async def exit(self, user, message="exited with status 1"):
        """The server ends on its own (as if it crashed)."""
        await self._end(user, message)

    async def _end(self, user, message):
        entry = self.running.pop(user, None)
        self.ended[user] = message
        if entry is not None and entry[1] is not None:
            await entry[1].cleanup()

    async def close(self):
        for user in list(self.running):
            await self._end(user, "the test ended")


class FakeProxy:
    """Records routes (prefix -> target) and every change made to them."""

    def __init__(self, paths):
        self.paths = paths
        self.routes = {}
        self.changes = []  # ("add" | "delete" | "set", prefix or routes)
        self.log_path = os.path.join(paths.logs_dir, "traefik.log")
        self.acme_store = os.path.join(paths.traefik_dir, "acme.json")

    def write_static_config(self):
        return False

    async def add_route(self, prefix, target, *, wait=True):
        self.routes[prefix] = target
        self.changes.append(("add", prefix))

    async def delete_route(self, prefix, *, wait=True):
        if self.routes.pop(prefix, None) is not None:
            self.changes.append(("delete", prefix))

    async def set_routes(self, routes):
        self.routes = dict(routes)
        self.changes.append(("set", dict(routes)))

    async def wait_for_route(self, prefix, *, present, timeout=10):
        if (prefix in self.routes) != present:
            raise TimeoutError(f"route {prefix} is {'missing' if present else 'still there'}")

    async def close(self):
        pass


class FakeProxyRunner:
    """What runs the proxy (TraefikSupervisor / TraefikUnit): here nothing."""

    def __init__(self):
        self.started = False
        self.closed = False

    async def start(self, *, config_changed):
        self.started = True

    async def close(self):
        self.closed = True

    def stop(self):
        self.closed = True


class FakeAccounts:
    """The account step of a spawn: every account "exists" and runs as the test's own uid."""

    def __init__(self, home_root):
        self.home_root = home_root
        self.calls = []  # (username, admin, extra_groups, create)
        self.known = set()
        self.fail = None  # a message: the step raises AccountError with it
        self.removed = []  # accounts remove() was asked to remove

    async def __call__(self, username, *, admin=False, extra_groups=(), create=True):
        self.calls.append((username, admin, list(extra_groups), create))
        if self.fail:
            raise AccountError(self.fail)
        if username not in self.known and not create:
            raise AccountError(f"there is no Unix account named {username!r}")
        created = username not in self.known
        self.known.add(username)
        home = os.path.join(self.home_root, username)
        os.makedirs(home, exist_ok=True)
        entry = SimpleNamespace(pw_name=username, pw_uid=os.getuid(), pw_gid=os.getgid(), pw_dir=home,
                                pw_shell="/bin/bash")
        return entry, created

    async def remove(self, username):
        """accounts.remove_account: forget the account and its home."""
        self.removed.append(username)
        if username not in self.known:
            return False
        self.known.discard(username)
        shutil.rmtree(os.path.join(self.home_root, username), ignore_errors=True)
        return True
