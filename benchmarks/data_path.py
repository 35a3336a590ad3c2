"""B5 alone, pre-warmed server against a fresh one, both running at once, in alternating rounds.

    sudo .venv/bin/python benchmarks/data_path.py [--rounds 4] [--duration 5] [--user-env PATH]

Starts two of our daemons side by side (`spawner.prewarm: true` and `false`), one server each,
then runs `GET /user/<name>/api/status` load against both, one after the other, alternating
which goes first in each round, so that both see the same background load. Per server and
path (via the proxy, direct to its port) it prints req/s, p99 and, per request, the server
process's CPU time and minor page faults (/proc/<pid>/stat, before and after each phase),
Traefik's CPU time (proxied requests) and the load generator's own CPU time (getrusage). The medians over the rounds and their ratio
are in the table. `--py-spy DIR` also records one extra direct phase per server with
py-spy (`py-spy record --idle --format raw`) into DIR.
"""

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time

import hubs
import run
import workloads as w


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=5, help="seconds per load phase")
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--user-env", help="reuse this user environment instead of building one with uv")
    p.add_argument("--py-spy", metavar="DIR", help="also profile one direct phase per server into DIR")
    return p.parse_args()


def client_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def phase(api, url, server, concurrency, duration):
    async def request(i, http):
        async with http.get(url, headers=api.headers) as r:
            await r.read()
            return r.status == 200

    meter, proxy, before = w.ProcessMeter(server.pid), w.ProcessMeter(api.hub.proxy_pid), client_cpu()
    rps, latencies, errors = await w.load(request, concurrency, duration)
    cost, proxy_cost, client = meter.delta(), proxy.delta(), client_cpu() - before
    served = max(len(latencies), 1)
    return {"rps": rps, "p99": w.percentile(latencies, 99) * 1000, "errors": errors,
            "cpu": cost["cpu"] / served * 1000, "faults": cost["minflt"] / served,
            "proxy": proxy_cost["cpu"] / served * 1000, "client": client / served * 1000}


async def measure(hub_list, names, args):
    sides = []
    for hub in hub_list:
        token = await w.admin_token(hub)
        http = w.session()
        api = w.Api(hub, token, http)
        name = names[hub.label]
        await api.create_users([name])
        await w.b1_spawns(api, name, 0, None)
        server = w.server_process(hub.account(name))
        port = w.listening_port(server)
        urls = {"proxy": f"{hub.url}/user/{name}/api/status",
                "direct": f"http://127.0.0.1:{port}/user/{name}/api/status"}
        sides.append((hub.label, api, server, urls))
    samples = {(label, path): [] for label, *_ in sides for path in ("proxy", "direct")}
    try:
        for i in range(args.rounds):
            order = sides if i % 2 == 0 else sides[::-1]
            for path in ("direct", "proxy"):
                for label, api, server, urls in order:
                    samples[label, path].append(
                        await phase(api, urls[path], server, args.concurrency, args.duration))
                    print(f"# round {i + 1} {label} {path}: {samples[label, path][-1]}", file=sys.stderr)
        if args.py_spy:
            os.makedirs(args.py_spy, exist_ok=True)
            for label, api, server, urls in sides:
                out = os.path.join(args.py_spy, ("prewarmed" if label == "ours" else "fresh") + ".txt")
                spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record",
                                        "--pid", str(server.pid), "--format", "raw", "--rate", "250",
                                        "--duration", str(int(args.duration)), "--output", out, "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(1)  # py-spy attaches
                await phase(api, urls["direct"], server, args.concurrency, args.duration)
                await asyncio.to_thread(spy.wait)
                print(f"# py-spy profile of {label}: {out}", file=sys.stderr)
    finally:
        for _, api, *_ in sides:
            await api.http.close()
    return samples


ROWS = [("rps", "req/s", "{:.0f}"), ("p99", "p99 (ms)", "{:.0f}"), ("cpu", "server CPU per request (ms)", "{:.3f}"),
        ("faults", "server minor page faults per request", "{:.2f}"), ("proxy", "Traefik CPU per request (ms)", "{:.3f}"),
        ("client", "load generator CPU per request (ms)", "{:.3f}"), ("errors", "failed requests", "{:.0f}")]


def table(samples, labels):
    lines = ["| metric (median of the rounds) | pre-warmed | fresh | pre-warmed / fresh | rounds (pre-warmed; fresh) |",
             "|---|---|---|---|---|"]
    for path in ("proxy", "direct"):
        for key, what, fmt in ROWS:
            if key == "proxy" and path == "direct":
                continue
            values = [[s[key] for s in samples[label, path]] for label in labels]
            medians = [w.percentile(v, 50) for v in values]
            ratio = f"{medians[0] / medians[1]:.2f}×" if medians[1] else ""
            spread = "; ".join(", ".join(fmt.format(x) for x in v) for v in values)
            lines.append(f"| B5 {path}: {what} | {fmt.format(medians[0])} | {fmt.format(medians[1])} | {ratio} "
                         f"| {spread} |")
    return "\n".join(lines)


def main():
    args = parse_args()
    with run.session("benchmarks/data_path.py", args.user_env) as bench:
        for prewarm in (True, False):
            bench.start(hubs.Ours(bench.workdir, bench.user_env, f"{bench.prefix}-admin", prewarm=prewarm))
        names = {hub.label: f"{bench.prefix}-{'a' if i == 0 else 'b'}" for i, hub in enumerate(bench.started)}
        t0 = time.time()
        samples = asyncio.run(measure(bench.started, names, args))
        bench.print_header(t0, "benchmarks/data_path.py",
                           f"sizes: {args.rounds} rounds × {args.concurrency} clients × {args.duration:g} s "
                           f"per server and path")
        print(table(samples, [h.label for h in bench.started]))


if __name__ == "__main__":
    main()
