"""`tljh-config export z2jh` as a subprocess: the file is private, holds what the chart needs
(including this hub's groups from its database) and the leftovers are printed."""

import os
import stat
import subprocess
import sys

from ruamel.yaml import YAML

from hubprocess import needs_root
from tljh_daemon.db import SyncDatabase
from tljh_daemon.paths import Paths

pytestmark = needs_root

CONFIG = """\
auth:
  type: dummy
  DummyAuthenticator:
    password: the-shared-secret
users:
  admin: [teacher]
  extra_user_groups:
    lab: [ann]
limits:
  memory: 2G
"""


def tljh_config(prefix, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", str(prefix), *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def test_export_writes_a_private_values_file_and_lists_leftovers(tmp_path):
    paths = Paths(str(tmp_path / "prefix"))
    os.makedirs(paths.config_dir)
    with open(paths.config_file, "w") as f:
        f.write(CONFIG)
    config_d = os.path.join(paths.config_dir, "jupyterhub_config.d")
    os.makedirs(config_d)
    with open(os.path.join(config_d, "site.py"), "w") as f:  # what the running hub applies over config.yaml
        f.write('c.Spawner.environment = {"COURSE": "physics"}\nc.Spawner.mem_limit = "3G"\n'
                'c.JupyterHub.cookie_secret_file = "/elsewhere"\n')
    paths.ensure()
    db = SyncDatabase(paths.database)
    db.execute("INSERT INTO users (name, created) VALUES ('ann', '2026-01-01T00:00:00Z')")
    db.execute("INSERT INTO groups (name) VALUES ('class-a')")
    db.execute("INSERT INTO group_members (group_name, user) VALUES ('class-a', 'ann')")
    db.close()
    dist = tmp_path / "prefix" / "user" / "lib" / "python3.11" / "site-packages" / "pandas-2.2.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pandas\nVersion: 2.2.2\n")

    result = tljh_config(paths.prefix, "export", "z2jh", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "z2jh-values.yaml"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    values = YAML(typ="safe").load(text)
    hub = values["hub"]["config"]
    assert hub["DummyAuthenticator"] == {"password": "the-shared-secret"}
    assert hub["Authenticator"]["admin_users"] == ["teacher"]
    assert hub["JupyterHub"]["load_groups"] == {"class-a": {"users": ["ann"]}}
    assert values["singleuser"]["memory"] == {"limit": "3G"}, "jupyterhub_config.d's, as the hub uses it"
    assert values["singleuser"]["extraEnv"] == {"COURSE": "physics"}
    assert "JupyterHub.cookie_secret_file (jupyterhub_config.d)" in result.stderr
    assert "pandas==2.2.2" in text
    assert "users.extra_user_groups" in result.stderr and "user environment packages" in result.stderr
    assert "the-shared-secret" not in result.stderr

    result = tljh_config(paths.prefix, "export", "z2jh", "-o", "-")
    assert result.returncode == 0, result.stderr
    assert YAML(typ="safe").load(result.stdout) == values


def test_export_of_a_broken_config_names_the_key(tmp_path):
    os.makedirs(tmp_path / "config")
    (tmp_path / "config" / "config.yaml").write_text("limits:\n  cpu: lots\n")
    result = tljh_config(tmp_path, "export", "z2jh", "-o", str(tmp_path / "v.yaml"))
    assert result.returncode != 0
    assert "limits.cpu" in result.stderr
    assert not (tmp_path / "v.yaml").exists()
