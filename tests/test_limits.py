"""limits.memory and limits.cpu in process mode: a cgroup per user server, where root may write
cgroups. A kernel that allocates past limits.memory is killed; its server and the hub live on."""

import os
import subprocess
import sys
import threading

import psutil
import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root
from waiting import wait_for
from tljh_daemon.cgroups import Cgroups

pytestmark = [
    needs_root,
    pytest.mark.skipif(os.geteuid() == 0 and not Cgroups("probe").available,
                       reason="this machine does not let root write cgroups"),
]
LIMIT_MB = 400


def cgroup_files(pid):
    """{"memory": limit file, "cpu": quota file} of the cgroup `pid` runs in, from /proc/<pid>/cgroup."""
    files = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            controllers = controllers.split(",")
            if "memory" in controllers:
                files["memory"] = f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
            if "cpu" in controllers:
                files["cpu"] = f"/sys/fs/cgroup/{','.join(controllers)}{path}/cpu.cfs_quota_us"
            if controllers == [""] and os.path.exists(f"/sys/fs/cgroup{path}/memory.max"):
                files = {"memory": f"/sys/fs/cgroup{path}/memory.max", "cpu": f"/sys/fs/cgroup{path}/cpu.max"}
    return files


def test_kernel_over_the_memory_limit_is_killed_and_the_hub_stays_healthy(make_hub, user_env, run_id,
                                                                           unix_accounts):
    name, admin = f"{run_id}-mem", f"{run_id}-memadm"
    unix_accounts.append(f"jupyter-{name}")
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [admin]}, "user_environment": {"path": user_env},
                    "limits": {"memory": f"{LIMIT_MB}M", "cpu": 0.5}})
    boss = HubClient(hub.url)
    assert boss.login(admin, "pw").status_code == 302
    panel = boss.get(boss.url("/hub/admin")).text
    assert f"limits.memory: {LIMIT_MB}M" in panel and "cgroup v" in panel and "not enforced" not in panel

    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    assert client.spawn(name)[-1]["ready"] is True
    client.get(client.url(f"/user/{name}/lab"))
    kernel = client.start_kernel(name)
    kernel_pid = int(client.execute(name, kernel, "import os; os.getpid()"))
    files = cgroup_files(kernel_pid)
    with open(files["memory"]) as f:
        assert f.read().split()[0] == str(LIMIT_MB * 1024 * 1024)
    with open(files["cpu"]) as f:
        assert f.read().split()[0] == "50000"  # 0.5 CPU of a 100 ms period
    cgroup_dir = os.path.dirname(files["memory"])

    # The kernel is killed mid-way, so no reply comes: do not wait for one.
    def allocate():
        try:
            client.execute(name, kernel, f"x = b'x' * ({3 * LIMIT_MB} * 1024 * 1024)", timeout=20)
        except Exception:
            pass

    threading.Thread(target=allocate, daemon=True).start()
    wait_for(lambda: not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == "zombie",
             "the kernel over the limit to be killed", 60)

    usage = wait_for(lambda: boss.get(boss.url("/hub/admin/usage")).json().get(name, {}).get("oom_kills"),
                     "the hub to report the OOM kill", 30)
    assert usage >= 1
    wait_for(lambda: "for going over its memory limit" in hub.log(), "the daemon to log the OOM kill", 30)
    assert requests.get(hub.url + "/hub/health", timeout=10).status_code == 200
    model = client.get(client.url(f"/hub/api/users/{name}")).json()
    assert model["servers"][""]["ready"] is True, "the server must outlive its kernel"
    assert client.get(client.url(f"/user/{name}/api/status")).status_code == 200

    assert client.stop(name).status_code == 302
    wait_for(lambda: not os.path.exists(cgroup_dir), f"{cgroup_dir} to be removed after the stop", 30)


def test_tljh_config_says_how_limits_are_enforced(tmp_path):
    (tmp_path / "config").mkdir()
    result = subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", str(tmp_path),
                             "set", "limits.memory", "1G"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "limits.memory is enforced with a cgroup" in result.stdout

