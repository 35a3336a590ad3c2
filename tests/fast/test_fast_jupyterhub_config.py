"""TLJH's escape hatches: plugin-owned config keys, and jupyterhub_config.d/*.py (the same
translation serves plugins' tljh_custom_jupyterhub_config)."""

import logging
import os
import sys

import pytest

from tljh_daemon import config as config_mod
from tljh_daemon import configfile

CONFIG_D = '''
c.Spawner.environment.update({"FROM_CONFIG_D": "yes", "JUPYTERHUB_API_URL": "hijack"})
c.Spawner.default_url = "/tree"
c.Spawner.args = ["--ServerApp.iopub_data_rate_limit=1e10"]
c.Spawner.notebook_dir = "~/work"
c.Spawner.mem_limit = "2G"
c.Spawner.cpu_limit = 1.5
c.Authenticator.admin_users = {"carol"}
c.JupyterHub.load_groups = {"teachers": ["dora"]}
c.JupyterHub.template_paths = [TEMPLATES]
c.JupyterHub.template_vars = {"org_name": "Example College"}
c.JupyterHub.cookie_secret_file = "/nowhere"
c.Spawner.http_timeout = 5
'''


@pytest.fixture
def prefix_with_config_d(tmp_path):
    prefix = tmp_path / "prefix0"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "login.html").write_text(
        '{% extends "base.html" %}{% block main %}<p id="ours">Welcome to {{ org_name }}</p>{% endblock %}')
    config_d = prefix / "config" / "jupyterhub_config.d"
    config_d.mkdir(parents=True)
    (config_d / "10-site.py").write_text(f"TEMPLATES = {str(templates)!r}\n" + CONFIG_D)
    (config_d / "20-broken.py").write_text("c.Spawner.environment = undefined_name\n")
    return str(prefix)


async def test_config_d_settings_reach_spawns_users_groups_and_pages(start_hub, prefix_with_config_d, caplog):
    with caplog.at_level(logging.WARNING):
        hub = await start_hub(prefix=prefix_with_config_d)
    warnings = [r.getMessage() for r in caplog.records if "were not applied" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "JupyterHub.cookie_secret_file" in warnings[0] and "Spawner.http_timeout" in warnings[0]
    assert any("20-broken.py failed: NameError" in r.getMessage() for r in caplog.records)

    await hub.browser("carol")  # logging in makes carol an admin (Authenticator.admin_users)
    admin = hub.token("carol")
    async with hub.api("GET", "/users/carol", admin) as resp:
        assert (await resp.json())["admin"] is True
    async with hub.api("GET", "/groups/teachers", admin) as resp:
        assert (await resp.json())["users"] == ["dora"]

    await hub.start_server("carol", admin)
    request = hub.spawner.requests[-1]
    assert request.env["FROM_CONFIG_D"] == "yes"
    assert request.env["JUPYTERHUB_API_URL"] != "hijack", "the hub's own variables are not overridden"
    assert request.env["JUPYTERHUB_DEFAULT_URL"] == "/tree"
    assert request.cmd[0].endswith("/bin/jupyterhub-singleuser")
    assert request.cmd[1:] == ["--ServerApp.iopub_data_rate_limit=1e10", f"--notebook-dir={request.home}/work"]
    assert request.limits == {"memory": "2G", "cpu": 1.5}

    async with hub.request("GET", "/hub/login") as resp:
        assert 'id="ours">Welcome to Example College' in await resp.text()


def test_plugin_owned_keys_are_accepted_by_the_schema_and_tljh_config(tmp_path):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    path = str(config_dir / "config.yaml")
    (config_dir / "config.yaml").write_text("simplest_plugin:\n  present: true\n")
    with pytest.raises(config_mod.ConfigError, match="'simplest_plugin': unknown key"):
        config_mod.load(path)
    config_mod.save_plugin_keys(str(config_dir), {"simplest_plugin": "simplest"})
    assert config_mod.load(path)["simplest_plugin"] == {"present": True}
    # Keys inside known sections are still checked.
    with pytest.raises(config_mod.ConfigError, match="limits.memry"):
        with configfile.editing(path) as data:
            data["limits"] = {"memry": "1G"}


async def test_plugin_cmd_allowed_users_and_services(start_hub, tmp_path):
    """The rest of the translated settings, from a plugin-style Config (same code path)."""
    prefix = tmp_path / "prefix0"
    config_d = prefix / "config" / "jupyterhub_config.d"
    config_d.mkdir(parents=True)
    (config_d / "site.py").write_text(f'''
c.Spawner.cmd = ["jupyterhub-singleuser", "--debug"]
c.Authenticator.allowed_users = {{"erin"}}
c.JupyterHub.services = [
    {{"name": "announcer", "command": [{sys.executable!r}, "-c", "import time; time.sleep(60)"],
     "url": "http://127.0.0.1:10102", "api_token": "not-used"}},
    {{"name": "external", "url": "http://127.0.0.1:10103"}},
]
''')
    hub = await start_hub(prefix=str(prefix))
    assert hub.hub.extra.not_applied == [
        "JupyterHub.services['announcer'].api_token",
        "JupyterHub.services['external'] (only services with a name and a command are run)",
    ]
    assert hub.proxy.routes["/services/announcer/"] == "http://127.0.0.1:10102"
    stranger = await hub.browser()
    assert (await stranger.login("mallory")).status == 403, "not in Authenticator.allowed_users"
    erin = hub.token("erin")
    await hub.start_server("erin", erin)
    cmd = hub.spawner.requests[-1].cmd
    assert cmd[0].endswith("/bin/jupyterhub-singleuser") and os.path.isabs(cmd[0]) and cmd[1:] == ["--debug"]
