"""tljh-config as a subprocess, the way admins use it."""

import subprocess
import sys
import threading

import pytest
from ruamel.yaml import YAML

from hubprocess import needs_root
from unprivileged import UNPRIVILEGED, readable_checkout, run_as

pytestmark = needs_root

ORIGINAL = """\
# Our class hub
users:
  admin:
    - teacher   # the one in charge
auth:
  type: firstuse
"""


@pytest.fixture
def prefix(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(ORIGINAL)
    return tmp_path


def tljh_config(prefix, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", str(prefix), *args],
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def config_text(prefix):
    return (prefix / "config" / "config.yaml").read_text()


def test_every_verb_round_trip_keeps_comments_and_order(prefix):
    tljh_config(prefix, "set", "limits.memory", "2G")
    tljh_config(prefix, "set", "limits.cpu", "1.5")
    tljh_config(prefix, "set", "https.enabled", "false")
    tljh_config(prefix, "add-item", "users.admin", "assistant")
    tljh_config(prefix, "add-item", "users.allowed", "student1")
    assert tljh_config(prefix, "get", "limits.memory").stdout.strip() == "2G"
    assert tljh_config(prefix, "get", "limits.cpu").stdout.strip() == "1.5"
    assert tljh_config(prefix, "get", "https.enabled").stdout.strip() == "false"
    assert tljh_config(prefix, "get", "users.admin").stdout.strip() == '["teacher", "assistant"]'
    assert tljh_config(prefix, "get", "http.port").stdout.strip() == "80"  # a default

    tljh_config(prefix, "remove-item", "users.allowed", "student1")
    tljh_config(prefix, "unset", "limits.cpu")
    tljh_config(prefix, "set", "limits.memory", "none")
    text = config_text(prefix)
    assert text.startswith("# Our class hub\nusers:\n  admin:\n    - teacher   # the one in charge\n")
    data = YAML(typ="safe").load(text)
    assert data["users"] == {"admin": ["teacher", "assistant"], "allowed": []}
    assert data["limits"] == {"memory": None}
    assert "cpu" not in tljh_config(prefix, "show").stdout


@pytest.mark.parametrize("args, named, allowed", [
    (("set", "auth.type", "no-such-login"), "auth.type", "firstuse"),
    (("set", "http.port", "99999"), "http.port", "65535"),
    (("set", "limits.memory", "lots"), "limits.memory", "does not match"),
    (("set", "user_environment.default_app", "vscode"), "user_environment.default_app", "jupyterlab"),
    (("add-item", "users.admin", "5"), "users.admin.1", "string"),
    (("set", "userz.admin", "x"), "userz", "unknown key"),
])
def test_bad_values_are_refused_and_the_file_is_untouched(prefix, args, named, allowed):
    before = config_text(prefix)
    result = tljh_config(prefix, *args, check=False)
    assert result.returncode != 0
    assert named in result.stderr and allowed in result.stderr, result.stderr
    assert "was not changed" in result.stderr
    assert config_text(prefix) == before


def test_removing_a_missing_item_is_an_error(prefix):
    result = tljh_config(prefix, "remove-item", "users.admin", "nobody", check=False)
    assert result.returncode != 0 and "'nobody' is not in users.admin" in result.stderr


def test_concurrent_writers_both_land(prefix):
    def add(names):
        for name in names:
            tljh_config(prefix, "add-item", "users.allowed", name)

    a = threading.Thread(target=add, args=([f"a{i}" for i in range(6)],))
    b = threading.Thread(target=add, args=([f"b{i}" for i in range(6)],))
    a.start(), b.start()
    a.join(), b.join()
    allowed = YAML(typ="safe").load(config_text(prefix))["users"]["allowed"]
    assert sorted(allowed) == sorted([f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)])
    assert config_text(prefix).startswith("# Our class hub\n")


def test_needs_root(prefix):
    with readable_checkout() as (repo, python):  # a copy when nobody cannot read this checkout
        result = run_as(UNPRIVILEGED, [python, "-m", "tljh_daemon.config_cli", "--prefix", str(prefix), "show"],
                        cwd="/", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": repo})
    assert result.returncode != 0 and "needs root" in result.stderr, result.stderr


@pytest.mark.parametrize("args, message", [
    (("set", "http.port", "19150.0"), "'http.port': 19150.0 is not of type 'integer'"),
    (("set", "http.port", "-1"), "'http.port': -1 is less than the minimum"),
    (("set", "hub.port", "80"), "'hub.port': 80 is already http.port"),
    (("set", "traefik_api.port", "80"), "'traefik_api.port': 80 is already http.port"),
])
def test_ports_are_integers_and_distinct(prefix, args, message):
    """Issue 10, item 8: refused at `set`, naming the key; the file is untouched."""
    result = tljh_config(prefix, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "No such option" not in result.stderr and "Traceback" not in result.stderr
    assert config_text(prefix) == ORIGINAL


def test_negative_values_are_values_not_options(prefix):
    tljh_config(prefix, "add-item", "users.allowed", "-dash")
    assert "- -dash" in config_text(prefix)
    tljh_config(prefix, "remove-item", "users.allowed", "-dash")


@pytest.mark.parametrize("broken", ["users: [\n", "- just\n- a list\n"])
def test_set_on_a_hand_broken_file_is_a_clean_message(prefix, broken):
    (prefix / "config" / "config.yaml").write_text(broken)
    result = tljh_config(prefix, "set", "http.port", "8080", check=False)
    assert result.returncode != 0
    assert "config.yaml" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert config_text(prefix) == broken


def test_reload_refuses_equal_ports_naming_the_keys(prefix):
    """A file edited by hand with two equal ports: reload says so and applies nothing."""
    with open(prefix / "config" / "config.yaml", "a") as f:
        f.write("http:\n  port: 4100\nhub:\n  port: 4100\n")
    result = tljh_config(prefix, "reload", check=False)
    assert result.returncode != 0
    assert "'hub.port': 4100 is already http.port" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_limits_under_slurm_are_the_jobs_options(prefix):
    tljh_config(prefix, "set", "spawner.type", "slurm")
    assert "each Slurm job's --mem" in tljh_config(prefix, "set", "limits.memory", "2G").stdout
    assert "--cpus-per-task" in tljh_config(prefix, "set", "limits.cpu", "2").stdout
    refused = tljh_config(prefix, "set", "spawner.slurm.cpus", "0", check=False)
    assert refused.returncode != 0 and "spawner.slurm.cpus" in refused.stderr


def test_plugin_owned_keys_are_accepted_and_typos_beside_them_refused(prefix):
    from tljh_daemon import config as config_mod
    config_mod.save_plugin_keys(str(prefix / "config"), {"simplest_plugin": "simplest"})
    tljh_config(prefix, "set", "simplest_plugin.present", "false")
    assert "present: false" in config_text(prefix)
    typo = tljh_config(prefix, "set", "simplest_plugn.present", "false", check=False)
    assert typo.returncode != 0 and "simplest_plugn" in typo.stderr
    assert "simplest_plugn" not in config_text(prefix)
