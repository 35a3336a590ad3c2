"""B7, kernel start → first output, with kernel pre-warm on and off in one run (ours only).

    sudo .venv/bin/python benchmarks/kernel_start.py --user-env /opt/tljh/user [--rounds 3 --kernels 5]

One hub, one user. Each round runs the user's server with `kernels.prewarm: true`, then with
`false` (the hub restarted in between, so the order alternates round by round), and times
`--kernels` kernels each: from `POST /user/<name>/api/kernels` (as JupyterLab sends it) to the
first output of `print(...)` on the kernel's websocket, through Traefik. Prints p50/p90 per mode,
and the median RSS and PSS of a running kernel process (PSS shares each page among the processes
that map it: a forked kernel shares the pre-imported machinery with its zygote and siblings).
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from hubclient import HubClient  # noqa: E402
from hubprocess import HubProcess  # noqa: E402
from hubs import rss_pss  # noqa: E402
from tljh_daemon.accounts import delete_account  # noqa: E402

PASSWORD = "b7-" + secrets.token_hex(8)


def first_output(c, name, memory):
    """Seconds from the kernel start request to the first output of a cell in it (its process id);
    appends the kernel process's (RSS, PSS) to `memory`."""
    t0 = time.monotonic()
    r = c.post(c.url(f"/user/{name}/api/kernels"), json={"name": "python3"}, headers={"X-XSRFToken": c.server_xsrf()})
    r.raise_for_status()
    kernel_id = r.json()["id"]
    ws = c.kernel_socket(name, kernel_id)
    try:
        msg_id = c.send_execute(ws, name, "print(__import__('os').getpid())", store_history=True)
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "stream":
                elapsed = time.monotonic() - t0
                rss, pss = rss_pss(int(msg["content"]["text"]))
                if pss is not None:
                    memory.append((rss, pss))
                break
    finally:
        ws.close()
    c.delete(c.url(f"/user/{name}/api/kernels/{kernel_id}"), headers={"X-XSRFToken": c.server_xsrf()})
    return elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--user-env", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kernels", type=int, default=5, help="kernels timed per round and mode")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    name = "b7-" + secrets.token_hex(2)
    prefix = tempfile.mkdtemp(prefix="tljh-b7-", dir="/var/tmp")
    os.chmod(prefix, 0o755)
    hub = HubProcess(prefix, {"auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
                              "user_environment": {"path": args.user_env}})
    times, firsts, memory = {True: [], False: []}, {True: [], False: []}, {True: [], False: []}
    try:
        for round_ in range(args.rounds):
            for prewarm in ((True, False) if round_ % 2 == 0 else (False, True)):
                hub.update_config(kernels={"prewarm": prewarm})
                if hub.proc is not None:
                    hub.kill(signal.SIGTERM)
                hub.start()
                c = HubClient(hub.url)
                assert c.login(name, PASSWORD).status_code == 302
                assert c.spawn(name)[-1]["ready"] is True
                assert c.get(c.url(f"/user/{name}/lab")).status_code == 200
                # What JupyterLab's page asks for as it loads (the page started the kernel zygote).
                assert c.get(c.url(f"/user/{name}/api/kernelspecs")).status_code == 200
                # The first kernel right after the lab page (the zygote may still be importing),
                # then the rest one after another.
                firsts[prewarm].append(first_output(c, name, memory[prewarm]))
                for _ in range(args.kernels):
                    times[prewarm].append(first_output(c, name, memory[prewarm]))
                assert c.stop(name).status_code == 302
                print(f"# round {round_ + 1}, prewarm {prewarm}: first {firsts[prewarm][-1]:.2f}, then "
                      + " ".join(f"{t:.2f}" for t in times[prewarm][-args.kernels:]), file=sys.stderr)
    finally:
        hub.stop_all()
        shutil.rmtree(prefix, ignore_errors=True)
        delete_account(f"jupyter-{name}")
    load = os.getloadavg()[0]
    print(f"B7 kernel start -> first output, {args.rounds} rounds x {args.kernels} kernels, load {load:.1f}")
    for prewarm, label in ((True, "kernels.prewarm: true "), (False, "kernels.prewarm: false")):
        values = sorted(times[prewarm])
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"  {label}  p50 {statistics.median(values):.2f} s  p90 {p90:.2f} s  (n={len(values)}); "
              f"first kernel after the lab page, p50 {statistics.median(firsts[prewarm]):.2f} s; "
              f"kernel RSS {statistics.median(r for r, _ in memory[prewarm]) / 2**20:.0f} MiB, "
              f"PSS {statistics.median(p for _, p in memory[prewarm]) / 2**20:.0f} MiB")
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"  ratio p50 (on/off): {ratio:.2f}x")


if __name__ == "__main__":
    main()
