"""A pre-warmed server is the same as a fresh one (process mode), as its user meets it.

One user, one hub: the server is started pre-warmed (the default), then, with `spawner.prewarm:
false`, fresh. Each reads the user's own ~/.jupyter/jupyter_server_config.py, which records what
the server derived from the user, the environment and the process (tests/fidelity.py); a kernel of
each records the same. Any difference fails, except the ones fidelity.ALLOWED names with the reason. Both
must also let JupyterLab save a setting and a workspace (its settings and workspaces APIs).
integration-tests/test_prewarm_systemd.py runs the same comparison under systemd.
"""

import os
import pwd
import signal

import fidelity
from hubclient import HubClient
from hubprocess import needs_root
from test_prewarm import is_prewarmed, launcher, server_pid
from tljh_daemon.spawner.launcher import LAUNCHER_HOME, LAUNCHER_USER, PRELOAD
from waiting import wait_for

pytestmark = needs_root
PASSWORD = "fidelity-password"



def record(hub, client, name, home, mode):
    """Start `name`'s server (pre-warmed or fresh, as `mode` says) and collect its reports."""
    events = client.spawn(name)
    assert events[-1]["ready"] is True, events
    assert is_prewarmed(server_pid(hub, name)) == (mode == "pre-warmed"), mode

    def read_report(pid):
        try:
            with open(os.path.join(home, fidelity.PROBE_DIR, f"{pid}.json")) as f:
                return f.read()
        except FileNotFoundError:
            return None

    reports = fidelity.collect(client, name, mode, read_report)
    assert client.stop(name).status_code == 302
    return reports


def test_a_prewarmed_server_reports_what_a_fresh_one_does(make_hub, user_env, run_id, unix_accounts):
    name = f"{run_id}-fid"
    unix_accounts.append(f"jupyter-{name}")
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
                    "user_environment": {"path": user_env}})
    client = HubClient(hub.url)
    assert client.login(name, PASSWORD).status_code == 302
    wait_for(lambda: launcher(hub), "the launcher to start", 60)
    assert client.spawn(name)[-1]["ready"] is True  # makes the account and its home
    assert client.stop(name).status_code == 302
    account = pwd.getpwnam(f"jupyter-{name}")
    config_dir = os.path.join(account.pw_dir, ".jupyter")
    os.makedirs(config_dir, exist_ok=True)
    with open(os.path.join(config_dir, "jupyter_server_config.py"), "w") as f:
        f.write(fidelity.probe_config(PRELOAD, [LAUNCHER_HOME, LAUNCHER_USER, "/root"]))
    for path in (config_dir, os.path.join(config_dir, "jupyter_server_config.py")):
        os.chown(path, account.pw_uid, account.pw_gid)

    prewarmed, prewarmed_kernel, prewarmed_lab = record(hub, client, name, account.pw_dir, "pre-warmed")
    hub.update_config(spawner={"prewarm": False})
    hub.kill(signal.SIGTERM)
    hub.start()
    fresh, fresh_kernel, fresh_lab = record(hub, client, name, account.pw_dir, "fresh")

    # The reports hold what they should (a comparison of two empty reports would pass).
    assert fresh["jupyter config dir"] == os.path.join(account.pw_dir, ".jupyter")
    assert any(k.startswith("trait jupyterlab.labapp.LabApp.") for k in fresh), sorted(fresh)[:20]
    assert fresh_kernel["env"]["HOME"] == account.pw_dir
    problems = fresh_lab + prewarmed_lab + fidelity.differences(fresh, prewarmed, fidelity.ALLOWED)
    problems += [f"kernel: {p}" for p in fidelity.differences(fresh_kernel, prewarmed_kernel, {})]
    assert problems == [], "a pre-warmed server differs from a fresh one:\n" + "\n".join(problems)
    # And the files are where the user's JupyterLab keeps them.
    lab_dir = os.path.join(account.pw_dir, ".jupyter", "lab")
    assert os.path.exists(os.path.join(lab_dir, "user-settings", "@jupyterlab", "apputils-extension",
                                       "themes.jupyterlab-settings"))
    assert os.listdir(os.path.join(lab_dir, "workspaces"))
