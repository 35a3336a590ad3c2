"""B4 proxy memory alone: Traefik as the daemon runs it against CHP, N routes, under traffic.

    .venv/bin/python benchmarks/proxy_memory.py [--routes 30] [--requests 3000]

Starts one small backend listening on N ports and three proxies side by side, each routing
`/user/u<i>/` to port i: Traefik with the daemon's static configuration and with its start-up
pages released (what the daemon does, tljh_daemon/proxy/pageout.py), the same Traefik without
the release, and configurable-http-proxy (from npm, as JupyterHub runs it). Each serves the
same requests spread over the routes; then it prints each proxy's resident memory, split into
its own (anonymous) memory and resident pages of files (its executable and libraries), and the
ratio to CHP's. Needs root only for the release (process_madvise).
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp
from aiohttp import web

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hubs import free_port  # noqa: E402
from tljh_daemon.proxy.pageout import page_out_executable  # noqa: E402

MIB = 2**20


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--routes", type=int, default=30)
    p.add_argument("--requests", type=int, default=3000, help="requests through each proxy")
    p.add_argument("--concurrency", type=int, default=10)
    return p.parse_args()


def memory(pid):
    """(RSS, anonymous, file-backed) bytes from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["RssAnon"], values["RssFile"]


async def backends(ports):
    """One aiohttp app answering on every port (a user server's small JSON reply)."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", lambda request: web.json_response({"started": "now"}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def traefik_config(workdir, tag, ports):
    """The daemon's static configuration shape (tljh_daemon/proxy/traefik.py), file routes."""
    rules = os.path.join(workdir, f"{tag}-rules")
    os.makedirs(rules)
    http_port, api_port = free_port(), free_port()
    routers, services = {}, {}
    for i, port in enumerate(ports):
        routers[f"r{i}"] = {"rule": f"PathPrefix(`/user/u{i}/`)", "service": f"s{i}", "entryPoints": ["http"]}
        services[f"s{i}"] = {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}
    with open(os.path.join(rules, "rules.yaml"), "w") as f:  # JSON is YAML
        json.dump({"http": {"routers": routers, "services": services}}, f)
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "WARN", "filePath": os.path.join(workdir, f"{tag}.log"), "noColor": True},
        "entryPoints": {"http": {"address": f"127.0.0.1:{http_port}"},
                        "auth_api": {"address": f"127.0.0.1:{api_port}"}},
        "api": {"dashboard": False},
        "ping": {"entryPoint": "auth_api"},
        "providers": {"providersThrottleDuration": "100ms", "file": {"directory": rules, "watch": True}},
    }
    path = os.path.join(workdir, f"{tag}.json")
    with open(path, "w") as f:
        json.dump(static, f)
    return path, http_port, f"http://127.0.0.1:{api_port}/ping"


async def wait_ok(http, url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


async def traffic(http, base, routes, total, concurrency):
    """`total` GETs spread over the routes; the number that did not answer 200."""
    queue = iter(range(total))
    failures = 0

    async def worker():
        nonlocal failures
        for i in queue:
            async with http.get(f"{base}/user/u{i % routes}/api/status") as r:
                await r.read()
                failures += r.status != 200

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def chp_binary(workdir):
    npm_dir = os.path.join(workdir, "chp")
    subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-fund", "--no-audit", "--loglevel=error",
                    "configurable-http-proxy"], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(npm_dir, "node_modules", ".bin", "configurable-http-proxy")


async def main():
    args = parse_args()
    traefik = shutil.which("traefik") or os.path.join(os.path.dirname(sys.executable), "traefik")
    workdir = tempfile.mkdtemp(prefix="tljh-proxy-memory-")
    ports = [free_port() for _ in range(args.routes)]
    runner = await backends(ports)
    procs, results = [], {}
    try:
        async with aiohttp.ClientSession() as http:
            for tag, release in (("traefik-released", True), ("traefik", False)):
                config, port, ping = traefik_config(workdir, tag, ports)
                # Its own copy of the binary: pages of a file other processes map (another hub's
                # Traefik) are shared, and a release leaves them; on a hub only one Traefik maps it.
                binary = shutil.copy(traefik, os.path.join(workdir, f"{tag}-traefik"))
                proc = subprocess.Popen([binary, f"--configFile={config}"], stdout=subprocess.DEVNULL)
                procs.append(proc)
                await wait_ok(http, ping)
                await wait_ok(http, f"http://127.0.0.1:{port}/user/u{args.routes - 1}/api/status")
                if release and not page_out_executable(proc.pid):
                    sys.exit("process_madvise(MADV_PAGEOUT) is not available here (root, Linux >= 5.10)")
                failures = await traffic(http, f"http://127.0.0.1:{port}", args.routes, args.requests,
                                         args.concurrency)
                results[tag] = (*memory(proc.pid), failures)
            port, api_port = free_port(), free_port()
            proc = subprocess.Popen([chp_binary(workdir), "--ip", "127.0.0.1", "--port", str(port),
                                     "--api-ip", "127.0.0.1", "--api-port", str(api_port), "--log-level", "warn"],
                                    stdout=subprocess.DEVNULL)
            procs.append(proc)
            await wait_ok(http, f"http://127.0.0.1:{api_port}/api/routes")
            for i, backend in enumerate(ports):
                async with http.post(f"http://127.0.0.1:{api_port}/api/routes/user/u{i}",
                                     json={"target": f"http://127.0.0.1:{backend}"}) as r:
                    assert r.status == 201, r.status
            failures = await traffic(http, f"http://127.0.0.1:{port}", args.routes, args.requests, args.concurrency)
            # CHP's process is node (the .bin entry is a script it execs).
            results["chp"] = (*memory(proc.pid), failures)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        await runner.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    chp_rss = results["chp"][0]
    print(f"B4 proxy memory, {args.routes} routes, after {args.requests} requests each (MiB; load "
          f"{os.getloadavg()[0]:.1f})")
    print(f"{'proxy':<34} {'RSS':>6} {'anon':>6} {'file':>6} {'RSS / CHP':>10} {'failed':>7}")
    labels = {"traefik-released": "Traefik, start-up pages released", "traefik": "Traefik, as started",
              "chp": "configurable-http-proxy"}
    for tag, label in labels.items():
        rss, anon, file_, failures = results[tag]
        print(f"{label:<34} {rss / MIB:>6.0f} {anon / MIB:>6.0f} {file_ / MIB:>6.0f} {rss / chp_rss:>9.2f}× {failures:>7}")


if __name__ == "__main__":
    asyncio.run(main())
