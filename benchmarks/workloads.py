"""B1-B5, written once against the REST API and single-user protocol both hubs speak.

"Ready" means the same for every hub: the spawn progress stream said `ready`
and then `GET <proxy>/user/<name>/api/status` with the admin token answered 200
(retried every 50 ms until it does). Times are measured from the moment the
start request is sent.
"""

import asyncio
import contextlib
import json
import os
import pwd
import random
import re
import subprocess
import time
import uuid

import aiohttp
import psutil
from aiohttp import web
from yarl import URL

from hubs import free_port

PAGINATION = "application/jupyterhub-pagination+json"
TIMEOUT = aiohttp.ClientTimeout(total=60)


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def session(**kwargs):
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=TIMEOUT,
                                 connector=aiohttp.TCPConnector(limit=0), **kwargs)


async def fetch(http, method, url, **kwargs):
    """(status, body text) of one request."""
    async with http.request(method, url, allow_redirects=False, **kwargs) as r:
        return r.status, await r.text()


async def login(http, hub, name):
    """The login form, as a browser submits it; returns the XSRF token for API calls."""
    _, page = await fetch(http, "GET", hub.url + "/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    status, body = await fetch(http, "POST", hub.url + "/hub/login",
                               data={"_xsrf": xsrf, "username": name, "password": hub.password})
    if status != 302:
        raise RuntimeError(f"login of {name} failed: {status} {body[:200]}")
    cookie = http.cookie_jar.filter_cookies(URL(hub.url + "/hub/api/"))
    return cookie["_xsrf"].value if "_xsrf" in cookie else xsrf


async def admin_token(hub):
    """Log in as the admin and create an API token the way a user does (cookie + XSRF)."""
    async with session() as http:
        xsrf = await login(http, hub, hub.admin)
        status, body = await fetch(http, "POST", f"{hub.url}/hub/api/users/{hub.admin}/tokens",
                                   json={"note": "benchmark"}, headers={"X-XSRFToken": xsrf})
        if status != 201:
            raise RuntimeError(f"could not create an admin token: {status} {body[:200]}")
        return json.loads(body)["token"]


class Api:
    """The admin's view of one hub."""

    def __init__(self, hub, token, http):
        self.hub, self.token, self.http = hub, token, http
        self.headers = {"Authorization": f"token {token}"}

    async def call(self, method, path, **kwargs):
        return await fetch(self.http, method, self.hub.url + "/hub/api" + path, headers=self.headers, **kwargs)

    async def create_users(self, names, batch=500):
        for i in range(0, len(names), batch):
            status, body = await self.call("POST", "/users", json={"usernames": names[i:i + batch]})
            if status not in (201, 409):
                raise RuntimeError(f"POST /users: {status} {body[:200]}")

    async def stop_server(self, name, timeout=120, server=""):
        await self.call("DELETE", server_path(name, server))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = await self.call("GET", f"/users/{name}")
            model = json.loads(body)
            if server and status == 200 and server not in model.get("servers", {}):
                return
            if not server and status == 200 and not model.get("servers") and not model.get("pending"):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the server of {name} did not stop in {timeout}s")


def server_path(name, server=""):
    """The REST path of `name`'s default server, or of their named server `server`."""
    return f"/users/{name}/servers/{server}" if server else f"/users/{name}/server"


async def start_and_wait(hub, http, name, *, start_headers, admin_headers, timeout, server=""):
    """POST the start (of the named server `server`, if given), follow the progress stream,
    confirm through the proxy. Returns (seconds from the start request to ready, failure or None)."""
    t0 = time.perf_counter()
    post = asyncio.create_task(fetch(http, "POST", f"{hub.url}/hub/api{server_path(name, server)}", json={},
                                     headers=start_headers, timeout=aiohttp.ClientTimeout(total=timeout)))
    try:
        return await asyncio.wait_for(_wait_ready(hub, http, name, post, admin_headers, t0, server), timeout)
    except TimeoutError:
        return time.perf_counter() - t0, f"not ready after {timeout}s"
    finally:
        if not post.done():
            post.cancel()


async def _wait_ready(hub, http, name, post, headers, t0, server=""):
    progress_url = f"{hub.url}/hub/api{server_path(name, server)}/progress"
    ready = False
    while not ready:
        if post.done():
            status, body = post.result()
            if status >= 400:
                return time.perf_counter() - t0, f"start request: {status} {body[:200]}"
        started = post.done()
        async with http.get(progress_url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as r:
            if r.status in (400, 404) and not started:  # the start request may not be handled yet
                await asyncio.sleep(0.02)
                continue
            if r.status != 200:
                return time.perf_counter() - t0, f"progress: {r.status} {(await r.text())[:200]}"
            async for line in r.content:
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("failed"):
                    return time.perf_counter() - t0, event.get("message", "failed")
                if event.get("ready"):
                    ready = True
                    break
    status_url = f"{hub.url}/user/{name}/{server + '/' if server else ''}api/status"
    while True:
        try:
            async with http.get(status_url, headers=headers, allow_redirects=False) as r:
                if r.status == 200 and "started" in await r.json(content_type=None):
                    return time.perf_counter() - t0, None
        except (aiohttp.ClientError, ValueError):
            pass
        await asyncio.sleep(0.05)


# -- B1: spawn latency -----------------------------------------------------------


async def b1_spawns(api, name, count, bare, timeout=300):
    """One warm-up spawn (creates the Unix account, warms caches), then `count` rounds of:
    stop, one bare start (`bare()`, while the hub has nothing running), one timed spawn.
    Returns {"spawn": [s], "server": [s], "bare": [s], "named": [s]}, where "server" is when the
    spawned server itself first answered on its port, "named" the same spawn of a named server;
    leaves the last default server running (for B5)."""
    out = {"spawn": [], "server": [], "bare": [], "named": []}
    account = api.hub.account(name)
    for i in range(count + 1):
        if i:
            await api.stop_server(name)
            out["bare"].append(await bare())
        t0 = time.perf_counter()
        watcher = asyncio.create_task(first_answer(api.hub.hub_pid, account, name, t0))
        seconds, failure = await start_and_wait(api.hub, api.http, name, start_headers=api.headers,
                                                admin_headers=api.headers, timeout=timeout)
        if failure:
            watcher.cancel()
            raise RuntimeError(f"B1 spawn of {name} failed: {failure}")
        server = await asyncio.wait_for(watcher, 5)
        if i:
            out["spawn"].append(seconds)
            out["server"].append(server)
    out["named"] = await named_spawns(api, name, count, timeout) if count else []
    return out


async def named_spawns(api, name, count, timeout):
    """`count` timed starts of the named server `b1` of `name` (beside the running default
    server; stopped between rounds), after one warm-up; stopped at the end."""
    times = []
    for i in range(count + 1):
        seconds, failure = await start_and_wait(api.hub, api.http, name, start_headers=api.headers,
                                                admin_headers=api.headers, timeout=timeout, server="b1")
        if failure:
            raise RuntimeError(f"B1 named spawn of {name}/b1 failed: {failure}")
        if i:
            times.append(seconds)
        await api.stop_server(name, server="b1")
    return times


# -- B6/B7: click Start → first output; kernel start → first output ------------------------


async def first_output(api, name, timeout=120):
    """Seconds from `POST /user/<name>/api/kernels` (as JupyterLab sends it) to the first output
    of a `print()` on the kernel's websocket, through the proxy, with the admin's token."""
    base = f"{api.hub.url}/user/{name}/api"
    t0 = time.perf_counter()
    status, body = await fetch(api.http, "POST", f"{base}/kernels", json={"name": "python3"}, headers=api.headers)
    if status != 201:
        raise RuntimeError(f"kernel start for {name}: {status} {body[:200]}")
    kernel_id = json.loads(body)["id"]
    try:
        async with api.http.ws_connect(f"{base}/kernels/{kernel_id}/channels".replace("http", "ws", 1),
                                       headers=api.headers) as ws:
            msg_id = uuid.uuid4().hex
            await ws.send_json({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": name,
                           "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": "print('first output')", "silent": False, "store_history": True,
                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
            })

            async def output():
                async for frame in ws:
                    msg = json.loads(frame.data)
                    if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "stream":
                        return time.perf_counter() - t0
                raise RuntimeError(f"the kernel of {name} closed its websocket before any output")

            return await asyncio.wait_for(output(), timeout)
    finally:
        await fetch(api.http, "DELETE", f"{base}/kernels/{kernel_id}", headers=api.headers)


async def b6_first_output(api, name, rounds, timeout=300, later_kernels=2):
    """`rounds` times: stop the server, then click Start → first output: the start request, ready,
    the lab page and the kernelspecs it asks for, a kernel start and its first output (B6); then
    `later_kernels` more kernels one after another (each shut down before the next), as a person
    opening further notebooks. Returns {"b6": [s], "b7_first": [s], "b7": [s]}: the first
    kernel's part of B6, and each later kernel's start → first output (see `first_output`)."""
    out = {"b6": [], "b7_first": [], "b7": []}
    for _ in range(rounds):
        await api.stop_server(name)
        t0 = time.perf_counter()
        _, failure = await start_and_wait(api.hub, api.http, name, start_headers=api.headers,
                                          admin_headers=api.headers, timeout=timeout)
        if failure:
            raise RuntimeError(f"B6 spawn of {name} failed: {failure}")
        for path in ("lab", "api/kernelspecs"):
            status, _ = await fetch(api.http, "GET", f"{api.hub.url}/user/{name}/{path}", headers=api.headers)
            if status != 200:
                raise RuntimeError(f"B6 GET /user/{name}/{path}: {status}")
        kernel = await first_output(api, name)
        out["b6"].append(time.perf_counter() - t0)
        out["b7_first"].append(kernel)
        for _ in range(later_kernels):
            out["b7"].append(await first_output(api, name))
    return out


async def first_answer(parent_pid, account, name, t0):
    """Seconds from t0 until the server that `parent_pid` starts for `account` first answers
    `GET /user/<name>/api` on its own port (found with psutil; everything polled every 20 ms)."""
    parent, port = psutil.Process(parent_pid), None
    async with session() as http:
        while True:
            if port is None:
                # Any depth: a pre-warmed server is a child of our launcher, a child of the daemon.
                port = next((listening_port(c) for c in parent.children(recursive=True) if _owner(c) == account),
                            None)
            if port is not None:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/user/{name}/api") as r:
                        if r.status < 500:
                            return time.perf_counter() - t0
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.02)


class BareServer:
    """Starts `jupyterhub-singleuser` directly as a Unix account, with JupyterHub's environment
    variables pointing at a stub hub API, and times start -> first answer of `GET <prefix>api`
    (any status below 500, polled every 20 ms)."""

    def __init__(self, user_env, jupyterhub_version, account, name, log_path):
        self.user_env, self.version, self.account, self.name = user_env, jupyterhub_version, account, name
        self.log_path = log_path

    async def __aenter__(self):
        async def hub_root(request):
            return web.json_response({"version": self.version}, headers={"X-JupyterHub-Version": self.version})

        async def other(request):
            return web.json_response({"status": 403, "message": "stub hub"}, status=403)

        app = web.Application()
        app.router.add_get("/hub/api", hub_root)
        app.router.add_get("/hub/api/", hub_root)
        app.router.add_route("*", "/{tail:.*}", other)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.hub_port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.hub_port).start()
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()

    def environment(self, port):
        entry, name = pwd.getpwnam(self.account), self.name
        prefix, api = f"/user/{name}/", f"http://127.0.0.1:{self.hub_port}/hub/api"
        return entry, prefix, {
            "PATH": f"{self.user_env}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": entry.pw_dir,
            "USER": self.account, "LANG": "C.UTF-8", "JUPYTERHUB_API_TOKEN": "stub-token",
            "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{name}", "JUPYTERHUB_API_URL": api,
            "JUPYTERHUB_ACTIVITY_URL": f"{api}/users/{name}/activity", "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_SERVICE_PREFIX": prefix, "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback", "JUPYTERHUB_USER": name,
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:servers!server={name}/"]),
            "JUPYTERHUB_SERVER_NAME": "",
        }

    async def __call__(self):
        port = free_port()
        entry, prefix, env = self.environment(port)
        async with session() as http:
            with open(self.log_path, "ab") as log:
                t0 = time.perf_counter()
                proc = subprocess.Popen([f"{self.user_env}/bin/jupyterhub-singleuser"], env=env, cwd=entry.pw_dir,
                                        user=entry.pw_uid, group=entry.pw_gid, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while proc.poll() is None:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}{prefix}api") as r:
                            if r.status < 500:
                                return time.perf_counter() - t0
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.02)
                raise RuntimeError(f"bare jupyterhub-singleuser exited with {proc.returncode}; see {self.log_path}")
            finally:
                terminate(proc)


def terminate(proc):
    """Stop a server we started directly, with its kernels."""
    try:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        procs = []
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        p.kill()
    proc.wait()


# -- B2: class-start storm ---------------------------------------------------------


async def b2_storm(api, names, timeout):
    """All `names` log in (each with its own cookie jar), then all start at once with their
    own cookie + XSRF token, like pressing the start button. Returns per-user (seconds,
    failure), the time until every user was ready or had failed, and the latencies of
    `GET /hub/health` polled throughout (one request at a time, every 100 ms)."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(session()) for _ in names]
        xsrfs = await asyncio.gather(*(login(http, api.hub, n) for http, n in zip(clients, names)))
        health = []
        prober = asyncio.create_task(_probe_health(api.hub, health))
        t0 = time.perf_counter()
        try:
            results = await asyncio.gather(*(
                start_and_wait(api.hub, http, n, timeout=timeout, admin_headers=api.headers,
                               start_headers={"X-XSRFToken": xsrf})
                for http, n, xsrf in zip(clients, names, xsrfs)), return_exceptions=True)
            elapsed = time.perf_counter() - t0
        finally:
            prober.cancel()
    return [r if not isinstance(r, BaseException) else (elapsed, repr(r)) for r in results], elapsed, health


async def _probe_health(hub, latencies, interval=0.1, give_up=10.0):
    """Append the latency of each `GET /hub/health` through the proxy; a failure or no
    answer within `give_up` seconds counts as `give_up`."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=give_up)) as http:
        while True:
            t = time.perf_counter()
            try:
                async with http.get(hub.url + "/hub/health") as r:
                    await r.read()
                    ok = r.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            latencies.append(time.perf_counter() - t if ok else give_up)
            await asyncio.sleep(interval)


# -- B3 and B5: request load -----------------------------------------------------------


async def load(make_request, concurrency, duration):
    """`concurrency` workers call `make_request(worker, http)` back to back for `duration` s.
    Returns (requests per second, latencies in seconds, error count)."""
    latencies, errors = [], 0
    deadline = time.perf_counter() + duration

    async def worker(i, http):
        nonlocal errors
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            try:
                ok = await make_request(i, http)
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i, http) for i in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, latencies, errors


async def b3_list(api, total, concurrency, duration):
    """Workers page through GET /users (pagination Accept header; limit 50 or 100)."""
    offsets = {}

    async def request(i, http):
        limit = 50 if i % 2 == 0 else 100
        offset = offsets.get(i, random.randrange(0, total, limit))
        async with http.get(f"{api.hub.url}/hub/api/users", params={"offset": offset, "limit": limit},
                            headers={**api.headers, "Accept": PAGINATION}) as r:
            body = await r.read()
            if r.status != 200:
                return False
            next_page = json.loads(body)["_pagination"]["next"]
            offsets[i] = next_page["offset"] if next_page else 0
            return True

    return await load(request, concurrency, duration)


async def b3_get(api, names, concurrency, duration):
    """Workers GET /users/<name> for random names."""

    async def request(i, http):
        async with http.get(f"{api.hub.url}/hub/api/users/{random.choice(names)}", headers=api.headers) as r:
            await r.read()
            return r.status == 200

    return await load(request, concurrency, duration)


async def b5_data_path(api, account, name, concurrency, duration):
    """GET api/status through the proxy and directly on the server's port, under load and one at a time.
    Returns {label: (req/s, latencies, errors)} and {label: ProcessMeter.delta() of the server
    process over that load phase, with the proxy process's CPU seconds as "proxy_cpu"}."""
    server = server_process(account)
    port = listening_port(server)
    urls = {"proxy": f"{api.hub.url}/user/{name}/api/status",
            "direct": f"http://127.0.0.1:{port}/user/{name}/api/status"}
    results, cost = {}, {}
    for label, url in urls.items():
        async def request(i, http, url=url):
            async with http.get(url, headers=api.headers) as r:
                await r.read()
                return r.status == 200

        for phase, clients, seconds in ((label, concurrency, duration), (label + "-single", 1, duration / 2)):
            meter, proxy = ProcessMeter(server.pid), ProcessMeter(api.hub.proxy_pid)
            results[phase] = await load(request, clients, seconds)
            cost[phase] = {**meter.delta(), "proxy_cpu": proxy.delta()["cpu"]}
    return results, cost


class ProcessMeter:
    """CPU seconds (utime + stime) and minor page faults of one process since this object was
    made, from /proc/<pid>/stat (the process alone, not its children)."""

    def __init__(self, pid):
        self.pid = pid
        self.start = self.read(pid)

    @staticmethod
    def read(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        # After the command name: state is field 3, minflt 10, utime 14, stime 15 (proc(5)).
        ticks = os.sysconf("SC_CLK_TCK")
        return {"cpu": (int(fields[11]) + int(fields[12])) / ticks, "minflt": int(fields[7])}

    def delta(self):
        now = self.read(self.pid)
        return {key: now[key] - self.start[key] for key in now}


def server_process(account):
    """The user's jupyterhub-singleuser process that listens on a TCP port (found with psutil;
    a pre-warmed server shows our launcher's command line)."""
    for proc in psutil.process_iter(["username", "cmdline"]):
        if proc.info["username"] == account and any("jupyterhub-singleuser" in a or a.endswith("launcher.py")
                                                    for a in proc.info["cmdline"] or []):
            if listening_port(proc):
                return proc
    raise RuntimeError(f"no listening jupyterhub-singleuser for {account}")


def listening_port(proc):
    try:
        return next((c.laddr.port for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN), None)
    except psutil.Error:
        return None


def _owner(proc):
    try:
        return proc.username()
    except psutil.Error:
        return None
