"""The pre-warm launcher on a booted systemd (`spawner.prewarm`, the default), checked from the host.

A server forked by the launcher runs in the transient scope `jupyter-<name>.scope` in
tljh-users.slice with MemoryMax and CPUQuota, sees the machine's own mounts (not the daemon
unit's sandbox), is re-adopted after a daemon restart (which also restarts the launcher), and
a dead launcher means fresh spawns as `jupyter-<name>.service` until it is back.
test_install.py covers the same install with the launcher off.
"""

import concurrent.futures
import os
import re
import time

import pytest

from test_install import MEMORY_LIMIT_MIB, PREFIX, HubClient, User, installed, report
import fidelity  # noqa: E402 (in tests/, which test_install puts on sys.path)
import labpage  # noqa: E402
from tljh_daemon.spawner.launcher import LAUNCHER_HOME, LAUNCHER_USER, PRELOAD

# The server that started a kernel (jupyter_client sets JPY_PARENT_PID; a pre-warmed kernel's
# parent process is the server's kernel zygote).
SERVER_PID = "int(__import__('os').environ['JPY_PARENT_PID'])"
# Was this kernel forked from its server's kernel zygote (kernels.prewarm, the default)?
FORKED = ("'tljh_kernel_prewarm.zygote' in open(f'/proc/{__import__(\"os\").getppid()}/cmdline').read()"
          " and __import__('os').getppid() != int(__import__('os').environ['JPY_PARENT_PID'])")


@pytest.fixture(scope="module")
def install(rootfs, pytestconfig):
    limits = f"limits:\n  memory: {MEMORY_LIMIT_MIB}M\n  cpu: 0.5\n"
    with installed(rootfs, pytestconfig, limits) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice(install, pytestconfig):
    start = time.monotonic()
    user = User(install, "alice", "alice-first-password")
    report(pytestconfig, f"pre-warmed: login, spawn, lab and a kernel took {time.monotonic() - start:.1f}s")
    return user


def journal(install, *args):
    return install.sh(["journalctl", "--no-pager", "-o", "cat", *args])


def wait_for(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def launcher_pids(install):
    """The daemon's launcher (the servers it forked show the same command line)."""
    daemon = install.unit("tljh-daemon", "MainPID")["MainPID"]
    return install.sh(["pgrep", "-P", daemon, "-f", "spawner/launcher.py"], check=False).split()


def test_prewarmed_server_runs_in_its_scope_with_the_limits(install, alice):
    assert alice.run("6*7") == "42"
    pid = alice.value(SERVER_PID)
    cgroup = install.sh(["cat", f"/proc/{pid}/cgroup"])
    assert "/tljh.slice/tljh-users.slice/jupyter-alice.scope\n" in cgroup, cgroup
    scope = install.unit("jupyter-alice.scope", "ActiveState", "MemoryMax", "CPUQuotaPerSecUSec", "Slice")
    assert scope == {"ActiveState": "active", "MemoryMax": str(MEMORY_LIMIT_MIB * 2**20),
                     "CPUQuotaPerSecUSec": "500ms", "Slice": "tljh-users.slice"}
    assert install.unit("jupyter-alice.service", "LoadState") == {"LoadState": "not-found"}, "not started fresh"
    assert "starting alice's server fresh" not in journal(install, "-u", "tljh-daemon").lower()
    # What the service unit's sandbox gave, the launcher's child does itself.
    status = install.sh(["cat", f"/proc/{pid}/status"])
    assert "NoNewPrivs:\t1" in status
    assert alice.value("__import__('os').getuid()") == int(install.sh(["id", "-u", "jupyter-alice"]))
    alice.run("open('/tmp/alice-was-here', 'w').close()")
    assert install.sh(["ls", "/tmp"]).split().count("alice-was-here") == 0, "/tmp is private"
    # The machine's own /dev (the daemon's unit has PrivateDevices=yes), not the daemon's.
    assert alice.value("sorted(__import__('os').listdir('/dev'))") == sorted(install.sh(["ls", "-A", "/dev"]).split())
    # Output goes to the journal, under the scope.
    wait_for(lambda: "Jupyter Server" in journal(install, "-u", "jupyter-alice.scope"), "no server output in the journal")


def test_memory_max_kills_the_kernel_and_the_server_lives(install, alice):
    if not install.container.delegate_cgroups:
        pytest.skip("cgroups are read-only in this container (cgroup v2 host): MemoryMax is not enforced")
    server = alice.value(SERVER_PID)
    # The kernel started right after the lab page may have started fresh (the zygote the page
    # started was still importing); one started once the zygote is ready is forked.
    wait_for(lambda: re.search(r"kernel zygote \(pid \d+\) is ready", journal(install, "-u", "jupyter-alice.scope")),
             "the kernel zygote to be ready")
    alice.kernel = alice.client.start_kernel("alice")
    assert alice.value(FORKED) is True, "a pre-warmed kernel"
    zygote = alice.value("__import__('os').getppid()")
    alice.assert_memory_limit_kills_only_the_kernel()
    assert alice.value(SERVER_PID) == server, "the server lives"
    # Only the kernel: its zygote lives too, and forks the restarted kernel.
    assert alice.value(FORKED) is True and alice.value("__import__('os').getppid()") == zygote
    wait_for(lambda: "killed 1 process(es) of alice's server" in journal(install, "-u", "tljh-daemon"),
             "the daemon did not report the OOM kill")
    assert install.unit("jupyter-alice.scope", "ActiveState") == {"ActiveState": "active"}


def test_daemon_restart_readopts_the_scope_and_restarts_the_launcher(install, alice):
    assert alice.value("marker = 'still the same kernel'; marker")
    server = alice.value(SERVER_PID)
    launchers = launcher_pids(install)
    assert len(launchers) == 1, launchers
    install.sh(["systemctl", "restart", "tljh-daemon"])
    assert alice.value("marker") == "still the same kernel"
    assert alice.value(SERVER_PID) == server
    assert "Re-adopted the running server of alice" in journal(install, "-u", "tljh-daemon")
    wait_for(lambda: launcher_pids(install) not in ([], launchers), "no new launcher")
    home = alice.client.get(alice.client.url("/hub/home"))
    assert home.status_code == 200 and home.url.endswith("/hub/home"), "the login cookie still works"


def test_a_dead_launcher_means_fresh_spawns_and_servers_survive(install, alice, pytestconfig):
    (launcher,) = launcher_pids(install)
    install.sh(["kill", "-9", launcher])
    start = time.monotonic()
    bert = User(install, "bert", "bert-first-password")  # the launcher restarts only after 10 s
    report(pytestconfig, f"fresh (launcher dead): login, spawn, lab and a kernel took {time.monotonic() - start:.1f}s")
    assert bert.run("6*7") == "42"
    assert install.unit("jupyter-bert.service", "ActiveState") == {"ActiveState": "active"}
    assert "starting bert's server fresh" in journal(install, "-u", "tljh-daemon")
    assert alice.value("marker") == "still the same kernel", "the launcher's servers outlive it"

    wait_for(lambda: launcher_pids(install) not in ([], [launcher]), "the launcher did not come back")
    start = time.monotonic()
    cleo = User(install, "cleo", "cleo-first-password")
    report(pytestconfig, f"pre-warmed again: login, spawn, lab and a kernel took {time.monotonic() - start:.1f}s")
    assert cleo.run("6*7") == "42"
    assert install.unit("jupyter-cleo.scope", "ActiveState") == {"ActiveState": "active"}


def test_a_class_starts_at_once_each_in_its_scope(install, pytestconfig):
    names = [f"class{i}" for i in range(8)]
    clients = {}
    for name in names:
        clients[name] = HubClient(install.url)
        assert clients[name].login(name, f"{name}-first-password").status_code == 302
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        events = dict(zip(names, pool.map(lambda n: clients[n].spawn(n), names)))
    report(pytestconfig, f"class of {len(names)} started at once: all ready after {time.monotonic() - start:.1f}s")
    for line in journal(install, "-u", "tljh-daemon").splitlines():
        if any(f"Server for {n} is ready" in line for n in names):
            report(pytestconfig, "  " + line.split("] ", 1)[-1])
    assert all(e[-1].get("ready") for e in events.values()), events
    states = install.sh(["systemctl", "is-active", *(f"jupyter-{n}.scope" for n in names)], check=False)
    assert states.split() == ["active"] * len(names)
    for name in names:
        clients[name].stop(name)


def test_stopping_a_prewarmed_server_stops_its_scope(install, alice, pytestconfig):
    kernel = alice.value("__import__('os').getpid()")
    r = alice.client.stop("alice")
    assert r.status_code < 400, r.text
    wait_for(lambda: install.unit("jupyter-alice.scope", "ActiveState")["ActiveState"] != "active",
             "the scope is still active")
    assert install.sh(["ps", "-o", "pid=", "-p", str(kernel)], check=False).strip() == "", "the kernel is gone"
    timed_spawn(alice, pytestconfig, "pre-warmed respawn")  # and the same scope name starts again
    assert alice.run("6*7") == "42"
    assert install.unit("jupyter-alice.scope", "ActiveState") == {"ActiveState": "active"}


def timed_spawn(user, pytestconfig, label):
    start = time.monotonic()
    events = user.client.spawn(user.name)
    report(pytestconfig, f"{label}: spawn request → ready {time.monotonic() - start:.2f}s")
    assert events[-1].get("ready"), events
    assert user.client.get(user.client.url(f"/user/{user.name}/lab")).status_code == 200
    user.kernel = user.client.start_kernel(user.name)


def test_prewarm_off_starts_services_and_keeps_the_scopes(install, alice, pytestconfig):
    assert install.unit("jupyter-cleo.scope", "ActiveState") == {"ActiveState": "active"}
    install.sh(["tljh-config", "set", "spawner.prewarm", "false"])
    install.sh(["tljh-config", "reload", "hub"])
    assert alice.client.stop("alice").status_code < 400
    wait_for(lambda: install.unit("jupyter-alice.scope", "ActiveState")["ActiveState"] != "active",
             "the scope is still active")
    timed_spawn(alice, pytestconfig, "fresh (prewarm off)")
    assert alice.run("6*7") == "42"
    assert install.unit("jupyter-alice.service", "ActiveState") == {"ActiveState": "active"}
    assert launcher_pids(install) == []
    assert install.unit("jupyter-cleo.scope", "ActiveState") == {"ActiveState": "active"}, "re-adopted"
    assert "Re-adopted the running server of cleo" in journal(install, "-u", "tljh-daemon")


def set_prewarm(install, on):
    install.sh(["tljh-config", "set", "spawner.prewarm", "true" if on else "false"])
    install.sh(["tljh-config", "reload", "hub"])
    if on:
        wait_for(lambda: launcher_pids(install), "no launcher after turning pre-warm on", 90)


def fidelity_reports(install, user, mode, unit):
    """Start `user`'s server (it must become `unit`) and collect its fidelity reports; stop it."""
    events = user.client.spawn(user.name)
    assert events[-1].get("ready"), events
    assert install.unit(unit, "ActiveState") == {"ActiveState": "active"}, f"{mode}: not {unit}"

    def read_report(pid):
        try:
            return install.read(f"/home/jupyter-{user.name}/{fidelity.PROBE_DIR}/{pid}.json").decode()
        except FileNotFoundError:
            return None

    reports = fidelity.collect(user.client, user.name, mode, read_report)
    assert user.client.stop(user.name).status_code < 400
    wait_for(lambda: install.unit(unit, "ActiveState")["ActiveState"] != "active", f"{unit} is still active")
    return reports


# Under systemd a fresh server is a service and a pre-warmed one a scope: what differs for that reason.
SYSTEMD_ALLOWED = {
    "status.CapBnd": "the launcher is the daemon's child, and the daemon's unit has PrivateDevices=yes, which "
                     "drops CAP_MKNOD (and CAP_SYS_RAWIO) from its bounding set: an admin's sudo in a pre-warmed "
                     "server cannot make device nodes (docs/architecture.md)",
}


def test_a_prewarmed_scope_reports_what_a_fresh_service_does(install):
    """tests/test_prewarm_fidelity.py under systemd: the same user's server as a fresh service and
    forked into a scope report the same paths, environment and process state, and JupyterLab saves
    settings and workspaces in both."""
    set_prewarm(install, False)
    fido = User(install, "fido", "fido-first-password")  # makes the account and its home
    assert fido.client.stop("fido").status_code < 400
    wait_for(lambda: install.unit("jupyter-fido.service", "ActiveState")["ActiveState"] != "active",
             "the first server is still running")
    config = "/home/jupyter-fido/.jupyter/jupyter_server_config.py"
    path = os.path.join(install.container.root, config.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(fidelity.probe_config(PRELOAD, [LAUNCHER_HOME, LAUNCHER_USER, "/root"]))
    install.sh(["chown", "-R", "jupyter-fido:", "/home/jupyter-fido/.jupyter"])

    fresh, fresh_kernel, fresh_lab = fidelity_reports(install, fido, "fresh", "jupyter-fido.service")
    set_prewarm(install, True)
    prewarmed, prewarmed_kernel, prewarmed_lab = fidelity_reports(install, fido, "pre-warmed", "jupyter-fido.scope")

    assert fresh["jupyter config dir"] == "/home/jupyter-fido/.jupyter"
    allowed = {**fidelity.ALLOWED, **SYSTEMD_ALLOWED}
    problems = fresh_lab + prewarmed_lab + fidelity.differences(fresh, prewarmed, allowed)
    problems += [f"kernel: {p}" for p in fidelity.differences(fresh_kernel, prewarmed_kernel, allowed)]
    assert problems == [], "a pre-warmed server differs from a fresh one:\n" + "\n".join(problems)


def test_jupyterlab_in_a_prewarmed_scope_saves_settings_and_workspaces(install):
    """tests/test_lab_browser.py under systemd: JupyterLab in Chromium on a server forked into its
    scope keeps the theme and the open notebook, with no console error or failed request."""
    set_prewarm(install, True)

    def in_its_scope():
        assert install.unit("jupyter-lara.scope", "ActiveState") == {"ActiveState": "active"}

    with labpage.chromium() as browser:
        labpage.lab_keeps_theme_and_workspace(browser, install.url, "lara", "lara-first-password",
                                              started=in_its_scope)


def test_tljh_daemon_stop_stops_scopes_and_services(install):
    install.sh([f"{PREFIX}/hub/bin/tljh-daemon", "stop"])
    states = install.sh(["systemctl", "is-active", "jupyter-cleo.scope", "jupyter-alice.service"], check=False)
    why = "" if states.split() == ["inactive"] * 2 else install.sh(
        ["sh", "-c", "systemctl show -p Result jupyter-cleo.scope jupyter-alice.service; "
                     "journalctl -u jupyter-cleo.scope -u jupyter-alice.service -n 60 --no-pager"], check=False)
    assert states.split() == ["inactive"] * 2, why
