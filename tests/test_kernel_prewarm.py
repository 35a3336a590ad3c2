"""kernels.prewarm (process mode): kernels forked from the server's kernel zygote, end to end through
JupyterLab's kernel API (REST and websocket, through Traefik).

One hub serves the module; the tests run in order. With kernel pre-warm on (the default): the
zygote starts when the user opens a page, not with the server; a forked
kernel reports what a fresh kernel of the same server reports (the user's own kernelspec with the
very same command starts fresh, so both run side by side in one server, one cgroup, one keyring),
it interrupts, restarts and shuts down as a fresh one does, two users' kernels differ in
`random` and `hash()`, a server killed takes its zygote and forked kernels along, and a zygote
that is gone means one log line and a fresh kernel. A server stopped ends its zygote. Then
`kernels.prewarm: false`: kernels start fresh, and the same lifecycle holds.
"""

import ast
import concurrent.futures
import json
import os
import pwd
import re
import signal
import subprocess
import time
import uuid

import psutil
import pytest

from hubclient import HubClient
from hubprocess import needs_root
from test_prewarm import server_pid
from waiting import wait_for

pytestmark = needs_root
PASSWORD = "kernel-prewarm-password"
ZYGOTE_MODULE = "tljh_kernel_prewarm.zygote"
FALLBACK_LINE = "Kernel pre-warm: starting kernel"
READY_LINE = "Kernel pre-warm: the kernel zygote"
WAIT_LINE = "Kernel pre-warm: a kernel waits"

# What a kernel reports about itself (a JSON string as the cell's value).
PROBE = r'''
def _tljh_probe():
    import ctypes, json, os, platform, random, re, resource, signal, sys
    def fds():
        out = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                pass  # listdir's own descriptor
        return out
    def status():
        keep = ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "SigBlk", "SigIgn", "SigCgt", "CapEff",
                "CapBnd", "Umask", "Cpus_allowed_list")
        with open("/proc/self/status") as f:
            return {k: v.strip() for k, _, v in (l.partition(":") for l in f) if k in keep}
    def keyring():
        number = {"x86_64": 250, "aarch64": 219}.get(platform.machine())
        libc = ctypes.CDLL(None, use_errno=True)
        # KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING; -1 where keyctl is filtered
        return libc.syscall(number, 0, -3, 0) if number else None
    umask = os.umask(0o022)
    os.umask(umask)
    main = sys.modules.get("__main__")
    return json.dumps({
        "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
        "uid": os.getresuid(), "gid": os.getresgid(), "groups": sorted(os.getgroups()),
        "env": dict(os.environ), "cwd": os.getcwd(), "umask": oct(umask),
        "rlimits": {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")},
        "cgroup": open("/proc/self/cgroup").read(), "oom_score_adj": open("/proc/self/oom_score_adj").read(),
        "fds": fds(), "status": status(), "keyring": keyring(), "priority": os.getpriority(os.PRIO_PROCESS, 0),
        "signals": {s.name: repr(signal.getsignal(s)) for s in signal.valid_signals()
                    if isinstance(s, signal.Signals) and s not in (signal.SIGKILL, signal.SIGSTOP)},
        "sys.argv": sys.argv, "sys.orig_argv": sys.orig_argv, "sys.path": sys.path, "sys.executable": sys.executable,
        "sys.flags": repr(sys.flags), "main module": type(main).__name__,
        "tljh modules": sorted(m for m in sys.modules if m.startswith("tljh")),
        "random": random.random(), "hash": hash("x"),
    })
_tljh_probe()
'''


@pytest.fixture(scope="module")
def names(run_id, unix_accounts):
    names = {role: f"{run_id}-kp{role}" for role in ("alice", "bob")}
    unix_accounts.extend(f"jupyter-{n}" for n in names.values())
    return names


@pytest.fixture(scope="module")
def hub(make_hub, user_env, names):
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
        "user_environment": {"path": user_env},
        "limits": {"memory": "2G"},  # a per-server cgroup where this machine lets root make one
    })


def client(hub, name):
    c = HubClient(hub.url)
    assert c.login(name, PASSWORD).status_code == 302
    return c


@pytest.fixture(scope="module")
def alice(hub, names):
    c = client(hub, names["alice"])
    assert c.spawn(names["alice"])[-1]["ready"] is True
    return c


def lab_cookies(c, name):
    if not any(k.name == "_xsrf" and k.path.startswith(f"/user/{name}/") for k in c.cookies):
        assert c.get(c.url(f"/user/{name}/lab")).status_code == 200


def api(c, name, method, path, **kwargs):
    lab_cookies(c, name)
    return c.request(method, c.url(f"/user/{name}/api/{path}"), headers={"X-XSRFToken": c.server_xsrf()}, **kwargs)


def start_kernel(c, name, kernel="python3"):
    r = api(c, name, "POST", "kernels", json={"name": kernel})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def probe(c, name, kernel_id):
    result = c.execute(name, kernel_id, PROBE)
    if result is None:
        # Seen twice in ~15 runs, with fresh kernels too: the cell's result never reached a
        # websocket that had just connected (probably jupyter_server's message buffering across
        # reconnects), while its idle status did. The probe only reads, so run it again.
        result = c.execute(name, kernel_id, PROBE)
    assert result, f"kernel {kernel_id} gave no value: " + api(c, name, "GET", f"kernels/{kernel_id}").text
    return json.loads(ast.literal_eval(result))


def debugger_session(c, name, kernel_id, timeout=60):
    """What JupyterLab's debugger panel does first (initialize, attach, debugInfo on the control
    channel): each command's success, and whether the debugger reports itself started."""
    ws = c.kernel_socket(name, kernel_id, timeout)
    out = {}
    try:
        for seq, (command, arguments) in enumerate([
                ("initialize", {"clientID": "jupyterlab", "clientName": "JupyterLab", "adapterID": "python",
                                "pathFormat": "path", "linesStartAt1": True, "columnsStartAt1": True,
                                "supportsVariableType": True, "supportsVariablePaging": True,
                                "supportsRunInTerminalRequest": True, "locale": "en-us"}),
                ("attach", {}), ("debugInfo", {})], start=1):
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "debug_request", "username": name,
                           "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "control", "buffers": [],
                "content": {"type": "request", "seq": seq, "command": command, "arguments": arguments}}))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if msg["msg_type"] == "debug_reply" and msg["parent_header"].get("msg_id") == msg_id:
                    out[command] = msg["content"].get("success")
                    if command == "debugInfo":
                        out["isStarted"] = msg["content"].get("body", {}).get("isStarted")
                    break
            else:
                raise TimeoutError(f"no debug_reply to {command}")
    finally:
        ws.close()
    return out


def log_lines(hub, name, text):
    with open(os.path.join(hub.prefix, "state", "logs", f"jupyter-{name}.log"), errors="replace") as f:
        return [line for line in f if text in line]


def zygote_ready(hub, name, count=1):
    """Wait until the server logged its `count`th ready zygote (it forks only once ready)."""
    wait_for(lambda: len([x for x in log_lines(hub, name, READY_LINE) if "is ready" in x]) >= count,
             f"{name}'s kernel zygote to be ready")


def zygotes(server):
    found = []
    for child in psutil.Process(server).children():
        try:
            if ZYGOTE_MODULE in child.cmdline():
                found.append(child)
        except psutil.Error:  # a child (a kernel, a subprocess) that has just exited
            pass
    return found


def forked(report, server):
    """Was this kernel forked from the server's zygote (True) or started by the server (False)?"""
    if report["ppid"] == server:
        return False
    assert ZYGOTE_MODULE in psutil.Process(report["ppid"]).cmdline(), report["ppid"]
    assert psutil.Process(report["ppid"]).ppid() == server
    return True


def normalised(report):
    """The report without what differs between any two kernels (pid, connection file, JupyterLab's
    per-kernel session name) and what differs by design (the parent: the server or its zygote)."""
    out = dict(report)
    for key in ("pid", "ppid", "pgid", "sid", "random", "hash"):
        out.pop(key)
    text = json.dumps(out, sort_keys=True)
    text = re.sub(r"kernel-[0-9a-f-]+\.json", "kernel-<id>.json", text)
    out = json.loads(text)
    out["env"].pop("JPY_SESSION_NAME", None)
    # Which descriptor number a kernel's zmq threads get first is a race, and how many TCP
    # connections its zmq sockets hold depends on the server's clients: compare what else is open.
    # zmq's eventfds neither: a fresh kernel has one more, the zmq socket its output thread makes
    # when it forwards debugpy's import-time warning (a forked kernel's zygote wrote that).
    out["fds"] = sorted(kind for kind in map(fd_kind, out["fds"].values())
                        if kind not in ("socket:[N]", "anon_inode:[eventfd]"))
    return out


def fd_kind(target):
    return re.sub(r"\[\d+\]", "[N]", target)


def open_files(pid):
    """What a process's descriptors refer to (socket:[inode], pipe:[inode], paths)."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def test_a_forked_kernel_reports_what_a_fresh_kernel_of_its_server_does(hub, alice, names, user_env):
    name = names["alice"]
    account = pwd.getpwnam(f"jupyter-{name}")
    server = server_pid(hub, name)
    assert zygotes(server) == [], "the zygote starts only when the user opens a page"
    lab_cookies(alice, name)  # JupyterLab's page
    zygote_ready(hub, name)
    assert len(zygotes(server)) == 1
    forked_id = start_kernel(alice, name)
    forked_report = probe(alice, name, forked_id)
    assert forked(forked_report, server)
    # The user's own kernelspec, with the very command of the environment's: it starts fresh.
    spec_dir = os.path.join(account.pw_dir, ".local", "share", "jupyter", "kernels", "mine")
    os.makedirs(spec_dir, exist_ok=True)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({"argv": [forked_report["sys.executable"], "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Mine", "language": "python"}, f)
    for path in (".local", ".local/share", ".local/share/jupyter", ".local/share/jupyter/kernels",
                 ".local/share/jupyter/kernels/mine", ".local/share/jupyter/kernels/mine/kernel.json"):
        os.chown(os.path.join(account.pw_dir, path), account.pw_uid, account.pw_gid)
    fresh_id = start_kernel(alice, name, "mine")
    fresh_report = probe(alice, name, fresh_id)
    assert not forked(fresh_report, server)

    for report in (forked_report, fresh_report):
        # Its own session and process group (interrupts reach the group), as the user.
        assert report["pid"] == report["pgid"] == report["sid"]
        assert report["uid"] == [account.pw_uid] * 3 and report["gid"] == [account.pw_gid] * 3
        with open(f"/proc/{server}/cgroup") as f:
            assert report["cgroup"] == f.read()  # the server's own cgroup (its limits)
        assert "TLJH_KERNEL_PREWARM" not in report["env"]
        assert report["env"]["JPY_PARENT_PID"] == str(server)
        assert report["tljh modules"] == []  # nothing of the zygote's module is left
        assert report["fds"]["0"].startswith("pipe:")
        # Nothing the server or the zygote holds (sockets and pipes by inode, files by path), but
        # the server's stdout and stderr (its log: ipykernel keeps a copy when it captures the
        # kernel's own fds 1 and 2).
        held = open_files(server) | set().union(*(open_files(z.pid) for z in zygotes(server)))
        log = {os.readlink(f"/proc/{server}/fd/{fd}") for fd in (1, 2)}
        mine = {t for t in report["fds"].values() if not t.startswith("anon_inode:")}
        assert mine & held <= log, mine & held
    for fd in ("0", "1", "2"):
        assert fd_kind(forked_report["fds"][fd]) == fd_kind(fresh_report["fds"][fd])
    # The forked kernel imported debugpy in the zygote; its debugger starts as a fresh kernel's.
    sessions = [debugger_session(alice, name, k) for k in (forked_id, fresh_id)]
    assert sessions[0] == sessions[1] == {"initialize": True, "attach": True, "debugInfo": True, "isStarted": True}
    assert forked_report["random"] != fresh_report["random"]
    a, b = normalised(forked_report), normalised(fresh_report)
    differences = [f"{k}: forked {a.get(k)!r} vs fresh {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    assert differences == [], "a forked kernel differs from a fresh one:\n" + "\n".join(differences)


def kernel_lifecycle(c, name, server, expect_forked):
    """Interrupt a `while True` cell, restart, shut down, through JupyterLab's kernel API."""
    kernel_id = start_kernel(c, name)
    before = probe(c, name, kernel_id)
    assert forked(before, server) is expect_forked
    ws = c.kernel_socket(name, kernel_id)
    try:
        msg_id = c.send_execute(ws, name, "print('looping', flush=True)\nwhile True:\n    pass")
        error = None
        while error is None:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":  # it runs: interrupt it
                assert api(c, name, "POST", f"kernels/{kernel_id}/interrupt").status_code == 204
            elif msg["msg_type"] == "error":
                error = msg["content"]["ename"]
    finally:
        ws.close()
    assert error == "KeyboardInterrupt"
    assert probe(c, name, kernel_id)["pid"] == before["pid"]  # interrupted, not killed

    assert api(c, name, "POST", f"kernels/{kernel_id}/restart").status_code == 200
    after = probe(c, name, kernel_id)
    assert after["pid"] != before["pid"] and forked(after, server) is expect_forked
    wait_for(lambda: not psutil.pid_exists(before["pid"]), "the kernel before the restart to exit")

    assert api(c, name, "DELETE", f"kernels/{kernel_id}").status_code == 204
    wait_for(lambda: not psutil.pid_exists(after["pid"]), "the shut-down kernel to exit")
    assert kernel_id not in [k["id"] for k in api(c, name, "GET", "kernels").json()]


def test_a_forked_kernel_interrupts_restarts_and_shuts_down(hub, alice, names):
    name = names["alice"]
    kernel_lifecycle(alice, name, server_pid(hub, name), expect_forked=True)


# Signals sent to a kernel that has exited, through what LocalProvisioner holds for it: a
# ForkedProcess, or the Popen of a fresh kernel. jupyter_server's shutdown interrupts each kernel
# first; when the kernel died of the same SIGTERM as its server, an exception there stops the
# server from exiting (seen under systemd: the scope killed at its stop timeout, "failed").
AFTER_EXIT = r"""
import asyncio, json, logging, os, signal, subprocess, sys, time
from jupyter_client.connect import write_connection_file
from tljh_kernel_prewarm.client import Zygote

def exited(pid):  # reaped by the zygote, or our zombie
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True

def after_exit(process):
    os.kill(process.pid, signal.SIGKILL)
    while not exited(process.pid):
        time.sleep(0.01)
    answers = []
    for call in (lambda: process.send_signal(signal.SIGINT), process.terminate, process.kill,
                 process.poll, lambda: process.wait(10)):
        try:
            answers.append(repr(call()))
        except Exception as e:
            answers.append(type(e).__name__)
    return answers

async def main():
    zygote = Zygote(logging.getLogger())
    await zygote.watch
    files = [write_connection_file()[0] for _ in range(2)]
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f"]
    forked = await zygote.fork(argv + [files[0]], dict(zygote.env), os.getcwd())
    fresh = subprocess.Popen(argv + [files[1]], env=zygote.env, start_new_session=True)
    print("ANSWERS", json.dumps({"forked": after_exit(forked), "fresh": after_exit(fresh)}), flush=True)
    for f in files:
        os.unlink(f)

asyncio.run(main())
"""


def test_a_forked_kernel_that_exited_takes_signals_as_a_fresh_one(user_env):
    """ForkedProcess answers as Popen does (LocalProvisioner's contract): signalling a kernel that
    has exited raises nothing, and poll and wait give its exit code."""
    out = subprocess.run([os.path.join(user_env, "bin", "python"), "-c", AFTER_EXIT], capture_output=True,
                         text=True, timeout=120)
    lines = [line for line in out.stdout.splitlines() if line.startswith("ANSWERS ")]
    assert lines, out.stdout + out.stderr
    answers = json.loads(lines[-1].split(" ", 1)[1])
    assert answers["fresh"] == ["None", "None", "None", "-9", "-9"]
    assert answers["forked"] == answers["fresh"]


def test_two_users_kernels_have_their_own_random_and_hash_seeds(hub, alice, names):
    bob = client(hub, names["bob"])
    assert bob.spawn(names["bob"])[-1]["ready"] is True
    # A kernel started while the zygote imports waits for it, a few seconds at most, then starts
    # fresh (one line): the test holds the zygote (SIGSTOP) right after the page load started it.
    lab_cookies(bob, names["bob"])
    zygote = wait_for(lambda: zygotes(server_pid(hub, names["bob"])), "bob's zygote", interval=0.01)[0]
    zygote.suspend()
    assert not log_lines(hub, names["bob"], READY_LINE), "the zygote was ready before the test could hold it"
    first = probe(bob, names["bob"], start_kernel(bob, names["bob"]))
    assert not forked(first, server_pid(hub, names["bob"]))
    lines = log_lines(hub, names["bob"], FALLBACK_LINE)
    assert len(lines) == 1 and "still importing after" in lines[0], lines
    # The next one waits too; the zygote finishes its imports meanwhile, so it is forked.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        second = pool.submit(lambda: probe(bob, names["bob"], start_kernel(bob, names["bob"])))
        wait_for(lambda: len(log_lines(hub, names["bob"], WAIT_LINE)) == 2, "the second kernel to wait")
        zygote.resume()
        assert forked(second.result(timeout=60), server_pid(hub, names["bob"]))
    zygote_ready(hub, names["bob"])
    assert len(log_lines(hub, names["bob"], FALLBACK_LINE)) == 1
    a1, a2 = (probe(alice, names["alice"], start_kernel(alice, names["alice"])) for _ in range(2))
    b = probe(bob, names["bob"], start_kernel(bob, names["bob"]))
    assert all(forked(r, server_pid(hub, n)) for r, n in ((a1, names["alice"]), (a2, names["alice"]), (b, names["bob"])))
    assert len({a1["random"], a2["random"], b["random"]}) == 3
    # Two users' zygotes are two interpreters with their own hash seeds (one user's kernels share
    # their zygote's: docs/architecture.md says why).
    assert a1["hash"] != b["hash"]


def gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_server_takes_its_zygote_and_forked_kernels_along(hub, names):
    """As a fresh kernel whose server died exits (ipykernel's parent poller), so do forked ones."""
    name = names["bob"]
    bob = client(hub, name)
    server = server_pid(hub, name)
    zygote_ready(hub, name)  # else the kernel starts fresh (this test must not rely on the last one)
    kernel = probe(bob, name, start_kernel(bob, name))
    assert forked(kernel, server)
    zygote = zygotes(server)[0].pid
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: gone(zygote) and gone(kernel["pid"]), "the zygote and its kernel to exit")


def test_a_kernel_the_zygote_cannot_fork_starts_fresh_with_one_log_line(hub, alice, names):
    name = names["alice"]
    server = server_pid(hub, name)
    assert log_lines(hub, name, FALLBACK_LINE) == []
    old = zygotes(server)[0]
    old.send_signal(signal.SIGKILL)
    wait_for(lambda: old.status() == psutil.STATUS_ZOMBIE or not old.is_running(), "the zygote to die")
    report = probe(alice, name, start_kernel(alice, name))
    assert not forked(report, server)
    lines = log_lines(hub, name, FALLBACK_LINE)
    assert len(lines) == 1 and "zygote exited" in lines[0], lines
    # A new zygote took its place: once it is ready, the next kernel is forked again.
    zygote_ready(hub, name, count=2)
    assert forked(probe(alice, name, start_kernel(alice, name)), server)


def test_kernels_prewarm_false_starts_kernels_fresh(hub, alice, names):
    name = names["alice"]
    # A server stopped as usual shuts its kernels down, and its zygote exits with it.
    server = server_pid(hub, name)
    zygote = zygotes(server)[0].pid
    kernel = probe(alice, name, start_kernel(alice, name))["pid"]
    assert alice.stop(name).status_code == 302
    wait_for(lambda: gone(server) and gone(zygote) and gone(kernel), "the server, its zygote and kernel to exit")
    hub.update_config(kernels={"prewarm": False})
    hub.kill(signal.SIGTERM)
    hub.start()
    c = client(hub, name)
    assert c.spawn(name)[-1]["ready"] is True
    server = server_pid(hub, name)
    report = probe(c, name, start_kernel(c, name))
    assert not forked(report, server) and not zygotes(server)
    assert "TLJH_KERNEL_PREWARM" not in report["env"]
    kernel_lifecycle(c, name, server, expect_forked=False)
