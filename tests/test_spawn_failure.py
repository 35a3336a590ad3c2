"""A spawn that fails says why (progress stream and page) and leaves the hub ready for a retry."""

import pathlib
import shutil
import signal
import tempfile

from hubprocess import needs_root
from hubclient import HubClient

pytestmark = needs_root


def test_broken_user_environment_reports_reason_then_retry_works(make_hub, run_id, unix_accounts, user_env):
    name = f"{run_id}-carol"
    unix_accounts.append(f"jupyter-{name}")
    hub = make_hub({"auth": {"type": "dummy"}, "user_environment": {"path": "/nonexistent/env"}})
    client = HubClient(hub.url)
    assert client.login(name, "x").status_code == 302

    events = client.spawn(name)
    assert events[-1]["failed"] is True
    assert "/nonexistent/env" in events[-1]["message"]
    assert "user_environment.path" in events[-1]["message"]

    page = client.get(client.url(f"/hub/spawn-pending/{name}"))
    assert page.status_code == 500
    assert "failed to start" in page.text and "/nonexistent/env" in page.text
    assert "The last start failed" in client.get(client.url("/hub/home")).text

    # Fix the configuration, reload the hub, try again.
    hub.update_config(user_environment={"path": user_env})
    hub.kill(signal.SIGTERM)
    hub.start()
    events = client.spawn(name)
    assert events[-1]["ready"] is True, events
    lab = client.get(client.url(f"/user/{name}/lab"))
    assert lab.status_code == 200 and "JupyterLab" in lab.text


def test_server_that_exits_at_start_shows_its_output(make_hub, run_id, unix_accounts):
    name = f"{run_id}-dave"
    unix_accounts.append(f"jupyter-{name}")
    tmp_path = pathlib.Path(tempfile.mkdtemp(dir="/var/tmp"))  # users must be able to reach it
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    script = env / "bin" / "jupyterhub-singleuser"
    script.write_text("#!/bin/sh\necho 'simulated crash: no module named jupyterlab' >&2\nexit 3\n")
    script.chmod(0o755)
    for p in (tmp_path, env, env / "bin"):
        p.chmod(0o755)
    hub = make_hub({"auth": {"type": "dummy"}, "user_environment": {"path": str(env)}})
    client = HubClient(hub.url)
    assert client.login(name, "x").status_code == 302
    message = client.spawn(name)[-1]["message"]
    shutil.rmtree(tmp_path)
    assert "exited with status 3" in message and "simulated crash" in message
