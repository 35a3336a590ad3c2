"""B3 alone against our daemon: req/s, p99 and the daemon's CPU time per request.

    sudo .venv/bin/python benchmarks/api.py [--api-users 5000] [--rounds 3] [--duration 5] [--py-spy DIR]

Starts our daemon (process mode, its Traefik, the usage sampler on; no user servers), creates
the users with `POST /hub/api/users` and runs B3's two loads (`GET /hub/api/users` pages with
the pagination Accept header, limit 50 and 100; `GET /hub/api/users/<name>`) through the
proxy, `--rounds` times each, alternating. Besides req/s and p99 it prints the daemon
process's CPU time per request (utime + stime from /proc/<pid>/stat before and after each
phase; Traefik's too), which depends much less on what else runs on the machine than req/s does. `--direct`
sends the load to the daemon's own port, to tell the daemon's share from Traefik's.
`--py-spy DIR` records one more phase of each kind with py-spy (raw format) into DIR.
"""

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
import types

import hubs
import run
import workloads as w


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api-users", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5, help="seconds per load phase")
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--user-env", help="reuse this user environment instead of building one with uv")
    p.add_argument("--py-spy", metavar="DIR", help="also profile one phase of each kind into DIR")
    p.add_argument("--direct", action="store_true",
                   help="send the load to the daemon's own port instead of through Traefik")
    return p.parse_args()


def client_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def phase(kind, api, names, args, proxy_pid):
    meter, proxy, before = w.ProcessMeter(api.hub.hub_pid), w.ProcessMeter(proxy_pid), client_cpu()
    if kind == "list":
        rps, latencies, errors = await w.b3_list(api, len(names) + 1, args.concurrency, args.duration)
    else:
        rps, latencies, errors = await w.b3_get(api, names, args.concurrency, args.duration)
    cost, proxy_cost, client = meter.delta(), proxy.delta(), client_cpu() - before
    served = max(len(latencies), 1)
    return {"rps": rps, "p99": w.percentile(latencies, 99) * 1000, "errors": errors,
            "cpu": cost["cpu"] / served * 1000, "proxy": proxy_cost["cpu"] / served * 1000,
            "client": client / served * 1000}


async def measure(hub, names, args):
    token = await w.admin_token(hub)
    samples = {"list": [], "get": []}
    async with w.session() as http:
        api = w.Api(hub, token, http)
        t0 = time.perf_counter()
        await api.create_users(names)
        created = time.perf_counter() - t0
        if args.direct:
            api = w.Api(types.SimpleNamespace(url=f"http://127.0.0.1:{hub.hub_port}", hub_pid=hub.hub_pid), token, http)
        for i in range(args.rounds):
            for kind in (("list", "get") if i % 2 == 0 else ("get", "list")):
                samples[kind].append(await phase(kind, api, names, args, hub.proxy_pid))
                print(f"# round {i + 1} {kind}: {samples[kind][-1]}", file=sys.stderr)
        if args.py_spy:
            os.makedirs(args.py_spy, exist_ok=True)
            for kind in ("list", "get"):
                out = os.path.join(args.py_spy, f"daemon-{kind}.txt")
                spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record",
                                        "--pid", str(hub.hub_pid), "--format", "raw", "--rate", "250",
                                        "--duration", str(int(args.duration)), "--output", out, "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(1)
                await phase(kind, api, names, args, hub.proxy_pid)
                await asyncio.to_thread(spy.wait)
                print(f"# py-spy profile of {kind}: {out}", file=sys.stderr)
    return samples, created


ROWS = [("rps", "req/s", "{:.0f}"), ("p99", "p99 (ms)", "{:.0f}"), ("cpu", "daemon CPU per request (ms)", "{:.3f}"),
        ("proxy", "Traefik CPU per request (ms)", "{:.3f}"),
        ("client", "load generator CPU per request (ms)", "{:.3f}"), ("errors", "failed requests", "{:.0f}")]
TITLES = {"list": "GET /users pages (limit 50/100)", "get": "GET /users/<name>"}


def table(samples):
    lines = ["| metric | median | rounds |", "|---|---|---|"]
    for kind in ("list", "get"):
        for key, what, fmt in ROWS:
            values = [s[key] for s in samples[kind]]
            lines.append(f"| B3 {TITLES[kind]}: {what} | {fmt.format(w.percentile(values, 50))} "
                         f"| {', '.join(fmt.format(v) for v in values)} |")
    return "\n".join(lines)


def main():
    args = parse_args()
    with run.session("benchmarks/api.py", args.user_env) as bench:
        hub = bench.start(hubs.Ours(bench.workdir, bench.user_env, f"{bench.prefix}-admin", prewarm=False))
        names = [f"{bench.prefix}-x{i:04d}" for i in range(1, args.api_users + 1)]
        t0 = time.time()
        samples, created = asyncio.run(measure(hub, names, args))
        bench.print_header(t0, "benchmarks/api.py",
                           f"path: {'direct to the daemon' if args.direct else 'through Traefik'}; sizes: "
                           f"{args.api_users} users (created in {created:.1f} s), {args.rounds} rounds × "
                           f"{args.concurrency} clients × {args.duration:g} s per kind")
        print(table(samples))


if __name__ == "__main__":
    main()
