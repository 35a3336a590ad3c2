"""The daemon refuses to start on a bad config.yaml, naming the key."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("auth:\n  type: ldap\n", "auth.type"),
        ("http:\n  port: 99999\n", "http.port"),
        ("users:\n  admin: alice\n", "users.admin"),
        ("limits:\n  memory: lots\n", "limits.memory"),
        ("user_enviroment:\n  default_app: lab\n", "user_enviroment"),
        ("auth: [\n", "not valid YAML"),
    ],
)
def test_bad_config_stops_startup_with_the_key_named(tmp_path, yaml_text, expected):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml_text)
    result = subprocess.run([sys.executable, "-m", "tljh_daemon", "run", "--prefix", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert not (tmp_path / "state" / "tljh.sqlite").exists()
