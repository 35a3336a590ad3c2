"""environments.<name>: tljh-config refuses bad values naming the key (file untouched) and takes the
how-to's lines; kernelspecs reach servers through JUPYTER_PATH; a profile learns where a server
from an environment runs; the installer's kernelspec bookkeeping and adoption checks.
(Building a real environment and running its kernel: tests/test_environments.py.)"""

import json
import os
import re
import shlex

import pytest
from click.testing import CliRunner

from tljh_daemon import config as config_mod
from tljh_daemon import environments
from tljh_daemon.config_cli import main
from tljh_daemon.paths import Paths
from tljh_installer import environments as build

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "howto-environments.md")


def tljh_config(prefix, *args):
    return CliRunner().invoke(main, ["--prefix", str(prefix), *args])


@pytest.mark.parametrize("args, key, words", [
    (("set", "environments.ML.display_name", "ML"), "environments.ML", "lowercase"),
    (("set", "environments.python3.display_name", "x"), "environments.python3", "reserved"),
    (("set", "environments.ml.packages", "numpy"), "environments.ml.packages", "not of type 'array'"),
    (("set", "environments.ml.requirements", "req.txt"), "environments.ml.requirements", "absolute path"),
    (("set", "environments.ml.python", "2.7"), "environments.ml.python", "Python 3 version"),
    (("set", "environments.ml.python", "3.10"), "environments.ml.python", "quote it"),  # read as 3.1
    (("set", "environments.ml.path", "conda/ml"), "environments.ml.path", "absolute path"),
    (("set", "environments.ml.pakages", "x"), "environments.ml.pakages", "unknown key"),
    (("set", "environments.ml.display_name", ""), "environments.ml.display_name", ""),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, as_root_for_tljh_config, args, key, words):
    original = "# course environments\nenvironments:\n  ok:\n    packages: [numpy]  # kept\n"
    path = tmp_path / "config" / "config.yaml"
    path.parent.mkdir()
    path.write_text(original)
    result = tljh_config(tmp_path, *args)
    assert result.exit_code != 0
    assert f"config key {key!r}" in result.output and words in result.output, result.output
    assert path.read_text() == original


def test_the_howtos_tljh_config_lines_make_the_documented_config(tmp_path, as_root_for_tljh_config):
    with open(DOCS) as f:
        lines = re.findall(r"^ *sudo tljh-config ((?:set|add-item) environments\..+?)(?:\s+#.*)?$", f.read(), re.M)
    assert len(lines) >= 4
    for line in lines:
        result = tljh_config(tmp_path, *shlex.split(line))
        assert result.exit_code == 0, (line, result.output)
    config = config_mod.load(str(tmp_path / "config" / "config.yaml"))
    ml = config["environments"]["ml"]
    assert ml["display_name"] == "Machine learning" and "scikit-learn" in ml["packages"]
    assert environments.python_version(ml) == "3.12"  # tljh-config read it as a number
    assert config["environments"]["tljh"]["path"].startswith("/")


def test_servers_find_the_kernels_through_jupyter_path(tmp_path):
    paths = Paths(str(tmp_path))
    assert environments.spawn_environment(paths) == {}  # no environments: nothing added
    build.write_kernelspec(paths, "ml", {"display_name": "ML"}, "/opt/x/bin/python")
    assert environments.spawn_environment(paths) == {"JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}
    with open(tmp_path / "share" / "jupyter" / "kernels" / "ml" / "kernel.json") as f:
        spec = json.load(f)
    assert spec["argv"][:3] == ["/opt/x/bin/python", "-m", "ipykernel_launcher"]
    assert spec["display_name"] == "Python (ML)"


async def test_a_spawned_server_gets_jupyter_path(start_hub):
    hub = await start_hub()
    paths = Paths(hub.prefix)
    build.write_kernelspec(paths, "ml", {}, "/opt/x/bin/python")
    await hub.start_server("alice", hub.token("alice"))
    assert hub.spawner.requests[-1].env["JUPYTER_PATH"] == environments.jupyter_data_dir(paths)


def test_kernelspecs_of_removed_environments_go_and_others_stay(tmp_path):
    paths = Paths(str(tmp_path))
    for name in ("ml", "old"):
        build.write_kernelspec(paths, name, {}, "/x/bin/python")
    admins_own = tmp_path / "share" / "jupyter" / "kernels" / "r"
    admins_own.mkdir()
    (admins_own / "kernel.json").write_text('{"argv": ["R"], "display_name": "R", "language": "R"}')
    (tmp_path / "envs" / "old").mkdir(parents=True)
    lines = build.remove_stale_kernelspecs(paths, {"ml": {}})
    assert sorted(os.listdir(environments.kernels_dir(paths))) == ["ml", "r"]
    assert len(lines) == 1 and "old" in lines[0] and "kept" in lines[0]
    assert (tmp_path / "envs" / "old").is_dir()  # the environment itself is the admin's to delete


def _fake_env(directory, has_ipykernel=True, singleuser=False):
    os.makedirs(os.path.join(directory, "bin"))
    for name, code in (("python", 0 if has_ipykernel else 1), ("jupyterhub-singleuser", 0)):
        if name == "jupyterhub-singleuser" and not singleuser:
            continue
        path = os.path.join(directory, "bin", name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexit {code}\n")
        os.chmod(path, 0o755)
    return str(directory)


def test_adopting_an_environment_needs_its_python_with_ipykernel(tmp_path):
    with pytest.raises(config_mod.ConfigError) as e:
        build.adopt("conda", {"path": str(tmp_path / "missing")})
    assert e.value.key == "environments.conda.path" and "does not exist" in str(e.value)
    without = _fake_env(tmp_path / "bare", has_ipykernel=False)
    with pytest.raises(config_mod.ConfigError) as e:
        build.adopt("conda", {"path": without})
    assert "has no ipykernel" in str(e.value) and "pip install ipykernel" in str(e.value)
    with pytest.raises(config_mod.ConfigError) as e:
        build.adopt("conda", {"path": without, "packages": ["numpy"]})
    assert "used as it is" in str(e.value)
    good = _fake_env(tmp_path / "good")
    assert build.adopt("conda", {"path": good}) == os.path.join(good, "bin", "python")


def test_a_profile_learns_where_a_server_from_an_environment_runs(tmp_path):
    paths = Paths(str(tmp_path))
    default = _fake_env(tmp_path / "user", singleuser=True)
    _fake_env(tmp_path / "envs" / "ml", singleuser=True)
    _fake_env(tmp_path / "envs" / "small")
    configured = {"ml": {"packages": ["jupyterhub"]}, "small": {}}
    server = environments.server_from(paths, configured, "ml", default)
    assert server.singleuser == str(tmp_path / "envs" / "ml" / "bin" / "jupyterhub-singleuser")
    assert server.path.split(":")[0] == str(tmp_path / "envs" / "ml" / "bin")
    assert environments.server_from(paths, configured, None, default).prefix == default
    with pytest.raises(environments.EnvironmentProblem, match=r"'gpu' is not configured \(environments\.\*: ml, small\)"):
        environments.server_from(paths, configured, "gpu", default)
    with pytest.raises(environments.EnvironmentProblem, match=r"no jupyterhub-singleuser.*environments\.small\.packages"):
        environments.server_from(paths, configured, "small", default)


def test_a_taken_over_conda_user_environment_is_named_as_one_to_list(tmp_path):
    """TLJH's conda user environment is kept as the user environment; the takeover's summary says
    it (and the environments made inside it) can be listed as kernels with environments.<name>.path,
    which the installer then adopts as they are."""
    from tljh_installer import migrate

    paths = Paths(str(tmp_path))
    _fake_env(tmp_path / "user", singleuser=True)
    assert "it is a conda environment" not in migrate.user_env_line(paths)  # a venv: nothing to say
    (tmp_path / "user" / "conda-meta").mkdir()
    _fake_env(tmp_path / "user" / "envs" / "r-course")
    (tmp_path / "user" / "envs" / "empty").mkdir()
    line = migrate.user_env_line(paths)
    assert "it is a conda environment holding r-course: list one as a kernel" in line
    assert "environments.<name>.path" in line
    configured = {"r-course": {"path": str(tmp_path / "user" / "envs" / "r-course")}}
    python = build.adopt("r-course", configured["r-course"])
    build.write_kernelspec(paths, "r-course", configured["r-course"], python)
    with open(os.path.join(environments.kernels_dir(paths), "r-course", "kernel.json")) as f:
        assert json.load(f)["argv"][0] == python


def test_the_z2jh_export_names_each_environment_once():
    from tljh_daemon import z2jh

    config = config_mod.merge(config_mod.DEFAULTS, {"environments": {"ml": {"packages": ["numpy"], "python": "3.12"}}})
    config_mod.validate(config)
    unmapped = dict(z2jh.Export(config).unmapped)
    assert "singleuser.image" in unmapped["environments.ml"]
    assert not [key for key in unmapped if key.startswith("environments.ml.")]  # not once per leaf


def test_reload_names_the_environments_the_installer_has_not_built(tmp_path, as_root_for_tljh_config, monkeypatch):
    from tljh_daemon import config_cli

    monkeypatch.setattr(config_cli, "_reload_hub", lambda paths: None)  # no hub here to restart
    assert tljh_config(tmp_path, "add-item", "environments.ml.packages", "numpy").exit_code == 0
    assert tljh_config(tmp_path, "set", "environments.stats.display_name", "Stats").exit_code == 0
    build.write_kernelspec(Paths(str(tmp_path)), "stats", {}, "/x/bin/python")
    result = tljh_config(tmp_path, "reload", "hub")
    assert result.exit_code == 0, result.output
    assert "Not built yet: environments ml. The installer builds them" in result.output


def test_a_changed_python_version_is_noticed(tmp_path):
    """`python` asked for differs from the venv's: the installer makes the environment again."""
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.11.2\n")
    assert build.runs_python(str(tmp_path), "3.11") and build.runs_python(str(tmp_path), "3.11.2")
    assert not build.runs_python(str(tmp_path), "3.1") and not build.runs_python(str(tmp_path), "3.12")
    assert not build.runs_python(str(tmp_path / "missing"), "3.11")
    assert environments.python_version({"python": 3.12}) == "3.12"
    assert environments.python_version({"python": "3.10"}) == "3.10"
    assert environments.python_version({}) is None


def test_the_provisioner_reads_the_keys_the_installer_writes():
    """tljh_kernel_prewarm runs in user environments and cannot import the daemon: its copy of the
    kernelspec metadata keys must equal environments.py's (else environments' kernels start fresh)."""
    import ast

    from tljh_installer.steps import KERNEL_PREWARM_SOURCE

    with open(os.path.join(KERNEL_PREWARM_SOURCE, "tljh_kernel_prewarm", "provisioner.py")) as f:
        tree = ast.parse(f.read())
    constants = {node.targets[0].id: node.value.value for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                 and isinstance(node.targets[0], ast.Name)}
    assert constants["ENVIRONMENT_KEY"] == environments.METADATA_KEY
    assert constants["PREWARM_KEY"] == environments.PREWARM_KEY
    spec = environments.kernelspec("ml", {}, "/x/bin/python", prewarm=True)
    assert spec["metadata"][environments.PREWARM_KEY] is True
