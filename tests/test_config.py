"""The daemon refuses to start on a bad config.yaml, naming the key."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("auth:\n  type: no-such-login\n", "auth.type"),
        ("http:\n  port: 99999\n", "http.port"),
        ("users:\n  admin: alice\n", "users.admin"),
        ("limits:\n  memory: lots\n", "limits.memory"),
        ("user_enviroment:\n  default_app: lab\n", "user_enviroment"),
        ("auth: [\n", "not valid YAML"),
        # Issue 10, item 8: these took the hub down (Traefik on a float port, two listeners on one).
        ("http:\n  port: 19150.0\n", "http.port"),
        ("http:\n  port: 4000\nhub:\n  port: 4000\n", "'hub.port': 4000 is already http.port"),
        ("hub:\n  port: 4001\ntraefik_api:\n  port: 4001\n", "'traefik_api.port': 4001 is already hub.port"),
    ],
)
def test_bad_config_stops_startup_with_the_key_named(tmp_path, yaml_text, expected):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml_text)
    result = subprocess.run([sys.executable, "-m", "tljh_daemon", "run", "--prefix", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "tljh.sqlite").exists()
    assert not (tmp_path / "state" / "traefik").exists()  # nothing half-started
