"""JupyterLab itself in a real headless Chromium, on a pre-warmed server (the default).

The user signs in, starts the server, and JupyterLab loads without a console error, a failed
request or an error response; the user changes the theme and opens a notebook, runs a cell, and
after a reload the theme (the settings API) and the open notebook (the workspaces API) are kept
(labpage.lab_keeps_theme_and_workspace; integration-tests/test_prewarm_systemd.py does the same
under systemd).
"""

import os

import pytest

from hubprocess import needs_root
from labpage import lab_keeps_theme_and_workspace
from test_prewarm import is_prewarmed, launcher, server_pid
from waiting import wait_for

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]


def test_jupyterlab_on_a_prewarmed_server_saves_settings_and_workspaces(browser, make_hub, user_env, run_id,
                                                                        unix_accounts):
    name = f"{run_id}-lab"
    unix_accounts.append(f"jupyter-{name}")
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": user_env}})
    wait_for(lambda: launcher(hub), "the launcher to start", 60)

    def prewarmed():
        assert is_prewarmed(server_pid(hub, name))

    lab_keeps_theme_and_workspace(browser, hub.url, name, "pw", started=prewarmed)
