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
c.Spawner.mem_guarantee = "512M"
c.Spawner.cpu_guarantee = 0.5
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
    # As JupyterHub tells every server its limits and guarantees (bytes, cores).
    assert (request.env["MEM_LIMIT"], request.env["CPU_LIMIT"]) == (str(2 * 1024**3), "1.5")
    assert (request.env["MEM_GUARANTEE"], request.env["CPU_GUARANTEE"]) == (str(512 * 1024**2), "0.5")

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
     "url": "http://127.0.0.1:10102", "api_token": "announcer-token"}},
    {{"name": "nothing", "url": "http://127.0.0.1:10103"}},
]
''')
    hub = await start_hub(prefix=str(prefix))
    assert hub.hub.extra.not_applied == [
        "JupyterHub.services['nothing'] (a service needs a name, and a command for the hub to run "
        "or an api_token for a service that runs elsewhere)",
    ]
    assert hub.proxy.routes["/services/announcer/"] == "http://127.0.0.1:10102"
    async with hub.api("GET", "/user", "announcer-token") as resp:
        assert (await resp.json())["name"] == "announcer", "its api_token is its token"
    stranger = await hub.browser()
    assert (await stranger.login("mallory")).status == 403, "not in Authenticator.allowed_users"
    erin = hub.token("erin")
    await hub.start_server("erin", erin)
    cmd = hub.spawner.requests[-1].cmd
    assert cmd[0].endswith("/bin/jupyterhub-singleuser") and os.path.isabs(cmd[0]) and cmd[1:] == ["--debug"]


async def test_external_service_and_load_roles_as_in_jupyterhub_docs(start_hub, tmp_path, caplog):
    """JupyterHub's server-api example (a service with only a name and an api_token, given a role)
    and jupyterhub-idle-culler's README (load_roles with a `services` member, set before the
    service itself)."""
    prefix = tmp_path / "prefix0"
    config_d = prefix / "config" / "jupyterhub_config.d"
    config_d.mkdir(parents=True)
    (config_d / "launcher.py").write_text('''
c.JupyterHub.load_roles = [
    {"name": "launcher", "scopes": ["servers", "access:servers"], "services": ["launcher"]},
    {"name": "culler-role", "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
     "services": ["culler"]},
    {"name": "admin", "users": ["root-ish"], "services": ["reporter"]},
    {"name": "teachers", "scopes": ["admin:users"], "users": ["tina"], "groups": ["staff"], "colour": 1},
    {"name": "typo", "scopes": ["read:everything"], "services": ["launcher"]},
    {"name": "ghost", "scopes": ["read:users"], "services": ["nobody"]},
]
c.JupyterHub.services = [
    {"name": "launcher", "api_token": "launcher-secret-token"},
    {"name": "culler", "command": ["sleep", "60"]},
]
''')
    caplog.set_level(logging.INFO)
    hub = await start_hub({"services": {"reporter": {"api_token": "reporter-secret-token"}}}, prefix=str(prefix))
    manager = hub.hub.service_manager
    assert manager.services["launcher"].scopes == ("servers", "access:servers")
    assert manager.services["launcher"].proc is None, "an external service is not run"
    assert manager.services["culler"].scopes == ("list:users", "read:users:activity", "read:servers",
                                                 "delete:servers")
    assert manager.services["reporter"].admin is True
    assert "root-ish" in hub.hub.extra.config["users"]["admin"]
    not_applied = hub.hub.extra.not_applied
    # Roles for users and groups apply: tina and the staff group's members hold admin:users.
    assert not any(n.startswith("JupyterHub.load_roles['teachers'].users") for n in not_applied), not_applied
    assert hub.hub.roles.user_roles("tina", False) == ["teachers", "user"]
    assert "admin:users" in hub.hub.roles.user_scopes("sam", False, ["staff"])
    assert "admin:users" not in hub.hub.roles.user_scopes("sam", False, [])
    assert manager.services["launcher"].roles == ("launcher",)
    assert "JupyterHub.load_roles['teachers'].colour" in not_applied
    assert "JupyterHub.load_roles['typo'] (unknown scopes: read:everything)" in not_applied
    assert any(n.startswith("JupyterHub.load_roles['ghost'].services 'nobody' (no such service")
               for n in not_applied)
    assert "Applied JupyterHub.load_roles['launcher'] as services.launcher.scopes: " in caplog.text
    # The launcher starts and stops alice's server through the empty server name, as the example.
    hub.add_user("alice")
    async with hub.api("POST", "/users/alice/servers/", "launcher-secret-token") as resp:
        assert resp.status == 202, await resp.text()
    await hub.wait_for_state("alice", "running")
    async with hub.api("DELETE", "/users/alice/servers/", "launcher-secret-token") as resp:
        assert resp.status in (202, 204)
    await hub.wait_for_state("alice", "stopped")
    async with hub.api("DELETE", "/users/alice", "launcher-secret-token") as resp:
        assert resp.status == 403, "only what the role grants"
