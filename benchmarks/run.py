"""Compare tljh_daemon with JupyterHub on this machine, in one run, and print one table.

    sudo .venv/bin/python benchmarks/run.py [--users 30] [--quick] [--ours-only]

Everything lives in a temporary directory under /var/tmp and in Unix accounts
named bench-<tag>-* / jupyter-bench-<tag>-*; all of it (hubs, proxies, user
servers, accounts, files) is removed at the end, also after a failure or Ctrl-C.
See docs/benchmarks.md for what each row measures.
"""

import argparse
import asyncio
import contextlib
import datetime
import grp
import json
import os
import platform
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import psutil

import hubs
import workloads as w

MIB = 1024 * 1024
LOAD_AT_START = os.getloadavg()
# The kernel pre-warm extension, from this checkout (what the installer puts in the user environment).
KERNEL_PREWARM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tljh_installer", "kernel_prewarm")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, help="B2 storm size (default 30; 3 with --quick)")
    p.add_argument("--spawns", type=int, help="B1 timed spawns per hub (default 10; 2 with --quick)")
    p.add_argument("--api-users", type=int, help="B3/B4 users in the database (default 5000; 200 with --quick)")
    p.add_argument("--duration", type=float, help="seconds per B3/B5 load phase (default 10; 2 with --quick)")
    p.add_argument("--concurrency", type=int, default=20, help="B3/B5 concurrent clients (default 20)")
    p.add_argument("--first-outputs", type=int, help="B6/B7 rounds per hub (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    p.add_argument("--ours-only", action="store_true", help="skip JupyterHub (no npm, no JupyterHub venv)")
    p.add_argument("--no-jupyterhub-traefik", action="store_true",
                   help="compare with JupyterHub+CHP only (not also with jupyterhub-traefik-proxy)")
    p.add_argument("--no-fresh", action="store_true",
                   help="skip the B1/B2 column of our daemon with spawner.prewarm: false")
    p.add_argument("--no-jupyterhub-defaults", action="store_true",
                   help="skip the extra B2 storm against JupyterHub+CHP at its default timeouts")
    p.add_argument("--user-env", help="reuse this user environment instead of building one with uv")
    p.add_argument("--only", type=lambda v: set(v.lower().split(",")), default=None,
                   help="run only these benchmarks, e.g. b5 or b3,b5 (b4 comes with b2 and b3; b5 and b3 "
                        "alone spawn one server without timing it)")
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--report", metavar="JSON",
                   help="run nothing: print the table of a run saved with --json (give the sizes it ran with)")
    args = p.parse_args()
    unknown = (args.only or set()) - {"b1", "b2", "b3", "b4", "b5", "b6"}
    if unknown:
        p.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    quick = args.quick
    args.users = args.users or (3 if quick else 30)
    args.spawns = args.spawns or (2 if quick else 10)
    args.first_outputs = args.first_outputs or (1 if quick else 5)
    args.api_users = args.api_users or (200 if quick else 5000)
    args.duration = args.duration or (2 if quick else 10)
    return args


# -- Unix accounts and clean-up ------------------------------------------------------


def add_account(name):
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
    os.chmod(pwd.getpwnam(name).pw_dir, 0o700)


def cleanup(started, workdir, tag, groups_before):
    """Stop every hub, kill anything left running as a benchmark account or from the
    work directory, delete the accounts (and groups our daemon created), remove the files."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for hub in started:
        try:
            hub.stop()
        except Exception as e:  # noqa: BLE001 (keep cleaning up)
            print(f"stopping {hub.label}: {e}", file=sys.stderr)
    mine = (f"bench-{tag}-", f"jupyter-bench-{tag}-")
    leftovers = [p for p in psutil.process_iter(["username", "cmdline"])
                 if (p.info["username"] or "").startswith(mine)
                 or any(workdir in arg for arg in p.info["cmdline"] or [])]
    for p in leftovers:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(leftovers, timeout=10)
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(mine):
            subprocess.run(["userdel", "--remove", entry.pw_name], check=False, capture_output=True)
    for group in ("jupyterhub-users", "jupyterhub-admins"):
        if group not in groups_before and group in {g.gr_name for g in grp.getgrall()}:
            subprocess.run(["groupdel", group], check=False, capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)


class Session:
    """One standalone benchmark's work directory, account prefix, user environment and hubs;
    `session()` cleans all of it up."""

    def __init__(self, user_env):
        self.tag = secrets.token_hex(2)
        self.prefix = f"bench-{self.tag}"
        self.workdir = tempfile.mkdtemp(prefix="tljh-bench-", dir="/var/tmp")
        os.chmod(self.workdir, 0o755)
        self.groups_before = {g.gr_name for g in grp.getgrall()}
        self.load_at_start = os.getloadavg()
        self.started = []
        self._user_env = user_env

    @property
    def user_env(self):
        if self._user_env is None:
            self._user_env = hubs.make_venv(os.path.join(self.workdir, "user"), ["jupyterhub", "jupyterlab", "ipykernel"])
        return self._user_env

    def start(self, hub):
        self.started.append(hub)
        hub.start()
        return hub

    def print_header(self, t0, script, extra):
        """The lines every results table starts with: date, machine and load, versions, command."""
        print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}")
        print(f"machine: {machine()}; load average at the start {self.load_at_start[0]:.2f}, "
              f"at the end {os.getloadavg()[0]:.2f}")
        print(f"versions: tljh-daemon {hubs.Ours.versions()['tljh-daemon']}, jupyter-server (user env) "
              f"{hubs.package_version(self.user_env, 'jupyter-server')}")
        print("command: " + " ".join([script, *sys.argv[1:]]))
        print(extra)
        print()


@contextlib.contextmanager
def session(script, user_env=None):
    """A Session for a standalone benchmark script run as root; cleaned up however it ends."""
    if os.geteuid() != 0:
        sys.exit(f"run as root: sudo .venv/bin/python {script}")
    os.umask(0o022)
    s = Session(user_env)
    try:
        print(f"# work directory {s.workdir}; Unix accounts {s.prefix}-* and jupyter-{s.prefix}-*", file=sys.stderr)
        yield s
    finally:
        print("# cleaning up ...", file=sys.stderr)
        cleanup(s.started, s.workdir, s.tag, s.groups_before)


def _sigterm(*_):
    raise KeyboardInterrupt


# -- one hub ---------------------------------------------------------------------------


async def bench_hub(hub, args, names, bare, storm_only=False, spawns_only=False):
    """Run B1, B5, B2, B4 (N running), B3, B4 (idle) against a started hub (those `args.only`
    names); return the numbers. `spawns_only`: B1, B5, B2 and B4 with N running."""
    r = {}
    def wanted(b):
        return args.only is None or b in args.only
    token = await w.admin_token(hub)
    async with w.session() as http, bare:
        api = w.Api(hub, token, http)
        solo, storm = names["solo"], names["storm"]
        await api.create_users([solo, *storm])
        if not storm_only and (wanted("b1") or wanted("b5")):
            b1 = await w.b1_spawns(api, solo, args.spawns if wanted("b1") else 0, bare)
            if wanted("b1"):
                r["b1"] = b1
            if wanted("b5"):
                r["b5"], r["b5_cost"] = await w.b5_data_path(api, hub.account(solo), solo, args.concurrency,
                                                             args.duration)
            await api.stop_server(solo)
        if not storm_only and wanted("b6"):  # B7 is measured within B6
            r["b6"] = await w.b6_first_output(api, solo, args.first_outputs)
            await api.stop_server(solo)
        if wanted("b2") or (wanted("b4") and not wanted("b3")):
            results, elapsed, health = await w.b2_storm(api, storm, timeout=900)
            r["b2"] = {"times": [t for t, f in results if not f], "failures": [f for _, f in results if f],
                       "elapsed": elapsed, "health": health}
            r["b4_running"] = {"hub": hubs.rss(hub.hub_pid), "proxy": hubs.rss(hub.proxy_pid),
                               "servers": len(r["b2"]["times"])}
            r["b4_per_server"] = [hubs.account_memory(hub.account(n)) for n in storm]
            launcher = getattr(hub, "launcher_pid", lambda: None)()
            if launcher:
                r["b4_launcher"] = hubs.rss_pss(launcher)
            await asyncio.gather(*(api.stop_server(n) for n in storm))
        if storm_only or spawns_only or not wanted("b3"):
            return r
        many = names["api"]
        t0 = time.perf_counter()
        await api.create_users(many)
        r["b3_create"] = time.perf_counter() - t0
        total = len(many) + len(storm) + 2
        r["b3_list"] = await w.b3_list(api, total, args.concurrency, args.duration)
        r["b3_get"] = await w.b3_get(api, many, args.concurrency, args.duration)
        await asyncio.sleep(2)
        r["b4_idle"] = {"hub": hubs.rss(hub.hub_pid), "proxy": hubs.rss(hub.proxy_pid)}
    return r


# -- the table ---------------------------------------------------------------------------


def summarize(raw):
    """Flatten one hub's raw results into the numbers the table shows."""
    s = {}
    def p50(v):
        return w.percentile(v, 50)
    if "b1" in raw:
        b1 = raw["b1"]
        s["b1_p50"], s["b1_p90"] = p50(b1["spawn"]), w.percentile(b1["spawn"], 90)
        s["bare_p50"] = p50(b1["bare"])
        s["b1_named_p50"] = p50(b1.get("named", []))
        s["b1_server_p50"] = p50(b1["server"])
        overheads = [(a - b) * 1000 for a, b in zip(b1["spawn"], b1["server"])]
        s["b1_overhead"], s["b1_overhead_p90"] = p50(overheads), w.percentile(overheads, 90)
    if "b6" in raw:
        for key in [k for k in ("b6", "b7", "b7_first") if k in raw["b6"]]:
            s[f"{key}_p50"], s[f"{key}_p90"] = p50(raw["b6"][key]), w.percentile(raw["b6"][key], 90)
    if "b2" in raw:
        b2, n = raw["b2"], len(raw["b2"]["times"]) + len(raw["b2"]["failures"])
        s["b2_failures"] = len(b2["failures"])
        s["b2_all"] = max(b2["times"]) if b2["times"] and not b2["failures"] else None
        s["b2_first"] = min(b2["times"], default=None)
        s["b2_median"] = p50(b2["times"]) if b2["times"] else None
        s["b2_slowest"] = max(b2["times"], default=None)
        if b2.get("health"):
            s["b2_health_p99"] = w.percentile(b2["health"], 99) * 1000
            s["b2_health_max"] = max(b2["health"]) * 1000
        s["b2_n"] = n
    for key in ("b3_list", "b3_get"):
        if key in raw:
            rps, lat, errors = raw[key]
            s[key + "_rps"], s[key + "_p99"] = rps, w.percentile(lat, 99) * 1000
            s["b3_errors"] = s.get("b3_errors", 0) + errors
    if "b3_create" in raw:
        s["b3_create"] = raw["b3_create"]
    servers = [(r, p) for r, p in raw.get("b4_per_server", []) if r]
    if servers:
        s["b4_server_rss"] = sum(r for r, _ in servers) / len(servers) / MIB
        s["b4_server_pss"] = sum(p for _, p in servers) / len(servers) / MIB
    if raw.get("b4_launcher") and raw["b4_launcher"][0]:
        s["b4_launcher_rss"], s["b4_launcher_pss"] = (v / MIB for v in raw["b4_launcher"])
    for key in ("b4_idle", "b4_running"):
        if key in raw:
            for part in ("hub", "proxy"):
                value = raw[key][part]
                s[f"{key}_{part}"] = value / MIB if value else None
    if "b5" in raw:
        b5 = raw["b5"]
        for label in ("proxy", "direct"):
            s[f"b5_{label}_rps"] = b5[label][0]
            s[f"b5_{label}_p99"] = w.percentile(b5[label][1], 99) * 1000
        s["b5_added"] = (p50(b5["proxy-single"][1]) - p50(b5["direct-single"][1])) * 1000
        s["b5_errors"] = sum(errors for _, _, errors in b5.values())
        for label, cost in raw.get("b5_cost", {}).items():
            served = len(b5[label][1])
            if served and not label.endswith("-single"):
                s[f"b5_{label}_cpu"] = cost["cpu"] / served * 1000
                s[f"b5_{label}_faults"] = cost["minflt"] / served
                if label == "proxy":
                    s["b5_proxy_proxy_cpu"] = cost["proxy_cpu"] / served * 1000
    return s


def rows(args):
    """(key, label, format, better) for each row; better is 'low', 'high' or None (no ratio)."""
    n, m = args.users, args.api_users
    return [
        ("bare_p50", "B1 bare jupyterhub-singleuser, launch → first answer, p50 (s)", "{:.2f}", None),
        ("b1_p50", "B1 spawn request → ready and routed, p50 (s)", "{:.2f}", "low"),
        ("b1_p90", "B1 spawn request → ready and routed, p90 (s)", "{:.2f}", "low"),
        ("b1_named_p50", "B1 named server: spawn request → ready and routed, p50 (s)", "{:.2f}", "low"),
        ("b1_server_p50", "B1 spawn request → the server's first answer on its port, p50 (s)", "{:.2f}", "low"),
        ("b1_overhead", "B1 hub overhead = ready − server's first answer, p50 (ms)", "{:.0f}", "low"),
        ("b1_overhead_p90", "B1 hub overhead, p90 (ms)", "{:.0f}", "low"),
        ("b6_p50", "B6 click Start → first output (spawn, lab page, kernel, print), p50 (s)", "{:.2f}", "low"),
        ("b6_p90", "B6 click Start → first output, p90 (s)", "{:.2f}", "low"),
        ("b7_first_p50", "B7 the first kernel's part of B6 (kernel start → first output), p50 (s)", "{:.2f}", "low"),
        ("b7_p50", "B7 kernel start → first output (later kernels), p50 (s)", "{:.2f}", "low"),
        ("b7_p90", "B7 kernel start → first output (later kernels), p90 (s)", "{:.2f}", "low"),
        ("b2_all", f"B2 storm, {n} users: all ready (s)", "{:.1f}", "low"),
        ("b2_first", f"B2 storm, {n} users: first user ready (s)", "{:.1f}", "low"),
        ("b2_median", f"B2 storm, {n} users: median wait (s)", "{:.1f}", "low"),
        ("b2_slowest", f"B2 storm, {n} users: slowest user's wait (s)", "{:.1f}", "low"),
        ("b2_failures", f"B2 storm, {n} users: failed spawns", "{:d}", None),
        ("b2_health_p99", "B2 GET /hub/health during the storm, every 100 ms: p99 (ms)", "{:.0f}", "low"),
        ("b2_health_max", "B2 GET /hub/health during the storm: slowest (ms)", "{:.0f}", "low"),
        ("b2d_failures", f"B2 storm at JupyterHub's default timeouts: failed spawns of {n}", "{:d}", None),
        ("b3_list_rps", f"B3 GET /users pages (limit 50/100), {m} users: req/s", "{:.0f}", "high"),
        ("b3_list_p99", "B3 GET /users pages: p99 (ms)", "{:.0f}", "low"),
        ("b3_get_rps", "B3 GET /users/<name>: req/s", "{:.0f}", "high"),
        ("b3_get_p99", "B3 GET /users/<name>: p99 (ms)", "{:.0f}", "low"),
        ("b3_errors", "B3 failed requests (non-200 or connection errors)", "{:d}", None),
        ("b3_create", f"B3 POST /users, {m} users in batches of 500 (s)", "{:.1f}", "low"),
        ("b4_idle_hub", f"B4 hub RSS, idle, {m} users (MiB)", "{:.0f}", "low"),
        ("b4_idle_proxy", "B4 proxy RSS, idle (MiB)", "{:.0f}", "low"),
        ("b4_running_hub", f"B4 hub RSS, {n} servers running (MiB)", "{:.0f}", "low"),
        ("b4_running_proxy", f"B4 proxy RSS, {n} servers running (MiB)", "{:.0f}", "low"),
        ("b4_server_pss", f"B4 per-server PSS (server process), {n} servers running (MiB)", "{:.0f}", "low"),
        ("b4_server_rss", f"B4 per-server RSS (server process), {n} servers running (MiB)", "{:.0f}", "low"),
        ("b4_launcher_pss", "B4 pre-warm launcher PSS (once per hub) (MiB)", "{:.0f}", None),
        ("b5_proxy_rps", f"B5 api/status via proxy, {args.concurrency} clients: req/s", "{:.0f}", "high"),
        ("b5_proxy_p99", "B5 api/status via proxy: p99 (ms)", "{:.0f}", "low"),
        ("b5_direct_rps", "B5 api/status direct to the server: req/s", "{:.0f}", "high"),
        ("b5_direct_p99", "B5 api/status direct: p99 (ms)", "{:.0f}", "low"),
        ("b5_proxy_cpu", "B5 via proxy: server CPU per request (ms)", "{:.3f}", "low"),
        ("b5_proxy_proxy_cpu", "B5 via proxy: proxy CPU per request (ms)", "{:.3f}", "low"),
        ("b5_direct_cpu", "B5 direct: server CPU per request (ms)", "{:.3f}", "low"),
        ("b5_direct_faults", "B5 direct: server minor page faults per request", "{:.2f}", "low"),
        ("b5_added", "B5 proxy's added latency, one client, p50 (ms)", "{:.1f}", None),
        ("b5_errors", "B5 failed requests", "{:d}", None),
    ]


def targets(ours, others, fresh=None, chp=None):
    """{row key: verdict} for the targets, judged against every JupyterHub column that ran
    (and, for memory per server, against our own fresh spawns; for the proxy's memory, against
    JupyterHub's default proxy, CHP)."""
    def word(ok):
        return "n/a (no JupyterHub numbers)" if ok is None else ("MET" if ok else "NOT MET")

    def versus(key, pred):
        judged = [o for o in others if key in o]
        return word(all(pred(o) for o in judged) if judged else None)

    inf = float("inf")
    v = {}
    over = ours.get("b1_overhead", inf)
    v["b1_overhead"] = (f"≤ 100 ms: {word(over <= 100)}; below JupyterHub's: "
                        + versus("b1_overhead", lambda o: over < o["b1_overhead"]))
    p50 = ours.get("b1_p50", inf)
    v["b1_p50"] = f"≤ 1.0 s: {word(p50 <= 1.0)}; ≤ 0.2× JupyterHub's: " + versus(
        "b1_p50", lambda o: p50 <= 0.2 * o["b1_p50"])
    named = ours.get("b1_named_p50")
    if named is not None and ours.get("b1_p50"):
        v["b1_named_p50"] = f"as fast as a default server's (≤ 1.1×): {word(named <= 1.1 * ours['b1_p50'])}"
    v["b2_failures"] = f"zero failures: {word(ours.get('b2_failures') == 0)}"
    mine = ours.get("b2_all") or inf
    # A class of 30 within 20 s; up to 100 (TLJH's upper range) within 30 s.
    limit = 20 if ours.get("b2_n", 0) <= 30 else 30
    v["b2_all"] = f"≤ {limit} s: {word(mine <= limit)}; no later than JupyterHub's: " + versus(
        "b2_all", lambda o: mine <= (o["b2_all"] or inf))
    v["b2_health_p99"] = f"≤ 1 s: {word(ours.get('b2_health_p99', inf) <= 1000)}"
    v["b2_first"] = f"≤ 2 s: {word((ours.get('b2_first') or inf) <= 2)}"
    b6, b7 = ours.get("b6_p50", inf), ours.get("b7_p50", inf)
    v["b6_p50"] = "≤ 0.08× JupyterHub's: " + versus("b6_p50", lambda o: b6 <= 0.08 * o["b6_p50"])
    v["b7_p50"] = f"≤ 0.3 s: {word(b7 <= 0.3)}; ≤ 0.3× JupyterHub's: " + versus(
        "b7_p50", lambda o: b7 <= 0.3 * o["b7_p50"])
    if fresh and fresh.get("b4_server_pss") and ours.get("b4_server_pss"):
        v["b4_server_pss"] = f"≤ 60% of a fresh server's: {word(ours['b4_server_pss'] <= 0.6 * fresh['b4_server_pss'])}"
    if fresh and fresh.get("b5_direct_rps") and ours.get("b5_direct_rps"):
        v["b5_direct_rps"] = f"≥ 0.95× a fresh server's: {word(ours['b5_direct_rps'] >= 0.95 * fresh['b5_direct_rps'])}"
    rps, p99 = ours.get("b5_proxy_rps", 0), ours.get("b5_proxy_p99", inf)
    # Judged against JupyterHub's default proxy, CHP (JupyterHub+Traefik runs the same Traefik).
    v["b5_proxy_rps"] = "≥ 1.0× CHP's at ≤ its p99: " + word(
        rps >= chp["b5_proxy_rps"] and p99 <= chp["b5_proxy_p99"] if chp and chp.get("b5_proxy_rps") else None)
    for key in ("b3_list", "b3_get"):
        rps, p99 = ours.get(key + "_rps", 0), ours.get(key + "_p99", inf)
        v[key + "_rps"] = "≥ 2× JupyterHub's at ≤ its p99: " + versus(
            key + "_rps", lambda o, k=key, rps=rps, p99=p99: rps >= 2 * o[k + "_rps"] and p99 <= o[k + "_p99"])
    for key in ("b4_idle_hub", "b4_running_hub"):
        rss = ours.get(key) or inf
        v[key] = "≤ 50% of JupyterHub's: " + versus(key, lambda o, k=key, rss=rss: rss <= 0.5 * (o[k] or 0))
    for key in ("b4_idle_proxy", "b4_running_proxy"):
        if chp and chp.get(key) and ours.get(key):
            v[key] = f"≤ CHP's: {word(ours[key] <= chp[key])}"
    return v


def table(args, summaries, labels):
    ours, others = summaries[0], summaries[1:]
    fresh = next((o for o, label in zip(others, labels[1:]) if label.startswith("ours")), None)
    chp = next((o for o, label in zip(others, labels[1:]) if label == "JupyterHub+CHP"), None)
    verdicts = targets(ours, [o for o, label in zip(others, labels[1:]) if o and label.startswith("JupyterHub")],
                       fresh, chp)
    head = ["metric", labels[0]]
    for label in labels[1:]:
        head += [label, "ours / it"]
    head.append("target")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, fmt, better in rows(args):
        if all(s.get(key) is None for s in summaries):
            continue
        cells = [label, _fmt(fmt, ours.get(key))]
        for other in others:
            cells.append(_fmt(fmt, other.get(key)))
            ratio = ours.get(key), other.get(key)
            shown = better and None not in ratio and ratio[0] > 0 and ratio[1] > 0
            cells.append(f"{ratio[0] / ratio[1]:.2f}×" if shown else "")
        cells.append(verdicts.get(key, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(fmt, value):
    if value is None:
        return "–"
    return fmt.format(int(value) if fmt == "{:d}" else value)


# -- main ---------------------------------------------------------------------------------


def machine():
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                     platform.processor())
    return (f"{os.cpu_count()} cores ({model}), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}")


def report(args):
    """The table of a saved run, judged by this version's targets."""
    with open(args.report) as f:
        saved = json.load(f)
    labels = list(saved["summaries"])
    print_report(args, saved["versions"], labels, summaries_of(saved["raw"], labels), saved["errors"], saved.get("run"))


def summaries_of(raw, labels):
    """One summary per column in `labels`; the run at JupyterHub's default timeouts (no column of
    its own) lends its B2 failures to the second column."""
    summaries = [summarize(raw[label]) for label in labels]
    defaults = [label for label in raw if "default" in label]
    if defaults and len(summaries) > 1:
        summaries[1]["b2d_failures"] = summarize(raw[defaults[0]]).get("b2_failures")
    return summaries


def main():
    args = parse_args()
    if args.report:
        return report(args)
    if os.geteuid() != 0:
        sys.exit("run as root (user servers run as their own Unix accounts): sudo .venv/bin/python benchmarks/run.py")
    signal.signal(signal.SIGTERM, _sigterm)
    os.umask(0o022)  # environments and work directory must be readable by the servers' accounts
    tag = secrets.token_hex(2)
    workdir = tempfile.mkdtemp(prefix="tljh-bench-", dir="/var/tmp")
    os.chmod(workdir, 0o755)
    groups_before = {g.gr_name for g in grp.getgrall()}
    started, errors = [], []
    prefix = f"bench-{tag}"
    names = {"solo": f"{prefix}-solo", "storm": [f"{prefix}-u{i:03d}" for i in range(1, args.users + 1)],
             "api": [f"{prefix}-x{i:04d}" for i in range(1, args.api_users + 1)], "admin": f"{prefix}-admin"}
    try:
        print(f"# work directory {workdir}; Unix accounts {prefix}-* and jupyter-{prefix}-*", file=sys.stderr)
        # tljh-kernel-prewarm acts only where our daemon asks it to (TLJH_KERNEL_PREWARM).
        user_env = args.user_env or hubs.make_venv(os.path.join(workdir, "user"),
                                                   ["jupyterhub", "jupyterlab", "ipykernel", KERNEL_PREWARM])
        versions = {**hubs.Ours.versions(), **{f"{dist} (user env)": hubs.package_version(user_env, dist)
                                               for dist in ("jupyterhub", "jupyter-server", "jupyterlab")}}
        # JupyterHub runs servers as the Unix user of the hub name; the bare run uses the same account.
        for name in [names["solo"], *names["storm"]]:
            add_account(name)
        bare = w.BareServer(user_env, versions["jupyterhub (user env)"], names["solo"], names["solo"],
                            os.path.join(workdir, "bare-singleuser.log"))
        candidates = [hubs.Ours(workdir, user_env, names["admin"])]
        if not args.no_fresh:
            candidates.append(hubs.Ours(workdir, user_env, names["admin"], prewarm=False))
        if not args.ours_only:
            venv, chp, jh_versions = hubs.build_jupyterhub_side(workdir)
            versions.update(jh_versions)
            common = {"venv": venv, "user_env": user_env, "admin": names["admin"], "chp": chp}
            candidates.append(hubs.JupyterHub(workdir, "jupyterhub-chp", proxy="chp", **common))
            if not args.no_jupyterhub_traefik:
                candidates.append(hubs.JupyterHub(workdir, "jupyterhub-traefik", proxy="traefik", **common))
            if not args.no_jupyterhub_defaults:
                candidates.append(hubs.JupyterHub(workdir, "jupyterhub-chp-defaults", proxy="chp",
                                                  default_timeouts=True, **common))
        raw = {}
        for hub in candidates:
            print(f"# {hub.label} ...", file=sys.stderr)
            started.append(hub)
            try:
                hub.start()
                raw[hub.label] = asyncio.run(bench_hub(hub, args, names, bare, storm_only="default" in hub.label,
                                                       spawns_only="fresh" in hub.label))
            except Exception as e:  # noqa: BLE001 (report it, go on with the next hub)
                traceback.print_exc()
                errors.append(f"{hub.label}: {e}")
                raw[hub.label] = {}
            finally:
                hub.stop()
        labels = [h.label for h in candidates if "default" not in h.label]
        summaries = summaries_of(raw, labels)
        print_report(args, versions, labels, summaries, errors)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"run": header(), "versions": versions, "raw": raw, "summaries": dict(zip(labels, summaries)),
                           "errors": errors}, f, indent=1, default=str)
    finally:
        print("# cleaning up ...", file=sys.stderr)
        cleanup(started, workdir, tag, groups_before)
    sys.exit(1 if errors else 0)


def header():
    """When, where and how this run ran (the first lines of the report)."""
    return {"date": f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            "machine": f"{machine()}; load average at the start {LOAD_AT_START[0]:.2f}, at the end {os.getloadavg()[0]:.2f}",
            "command": " ".join(["benchmarks/run.py", *sys.argv[1:]])}


def print_report(args, versions, labels, summaries, errors, run=None):
    run = run or header()
    print(f"date: {run['date']}")
    print(f"machine: {run['machine']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"command: {run['command']}")
    print(f"sizes: {args.spawns} spawns (B1), {args.users}-user storm (B2), {args.api_users} users and "
          f"{args.concurrency} clients × {args.duration:g} s (B3), {args.concurrency} clients × {args.duration:g} s (B5)")
    print()
    print(table(args, summaries, labels))
    for error in errors:
        print(f"\nERROR {error}")


if __name__ == "__main__":
    main()
