"""TLJH plugins beyond `tljh.hooks`: the `tljh` compatibility modules, and plugins that fail
to import or raise in a hook being named and skipped (the hub still starts and spawns)."""

import logging
import subprocess
import textwrap

import pytest

from tljh_daemon import plugins


def fake_plugin(site, package, name, source):
    """An installed distribution `package` with a `tljh` entry point `name` -> module `name`."""
    info = site / f"{package.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tljh]\n{name} = {name}\n")
    (site / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


COMPAT = """
    from tljh import apt, conda, utils
    from tljh.config import CONFIG_DIR, CONFIG_FILE, HUB_ENV_PREFIX, INSTALL_PREFIX, STATE_DIR, USER_ENV_PREFIX
    from tljh.hooks import hookimpl
    from tljh.user import ensure_group, ensure_user_group, remove_group, remove_user_group

    @hookimpl
    def tljh_extra_user_pip_packages():
        return ["from-{name}"]

    @hookimpl
    def tljh_pre_spawn(user, env, limits):
        env["COMPAT_STATE_DIR"] = STATE_DIR
"""

BROKEN = """
    from tljh.hooks import hookimpl
    from tljh.no_such_module import something

    @hookimpl
    def tljh_extra_user_pip_packages():
        return ["never"]
"""

RAISING = """
    from tljh.hooks import hookimpl

    @hookimpl
    def tljh_extra_user_pip_packages():
        raise ValueError("no packages today")

    @hookimpl
    def tljh_pre_spawn(user, env, limits):
        raise RuntimeError("refusing " + user)

    @hookimpl
    def tljh_custom_jupyterhub_config(c):
        import sys
        sys.exit("a plugin calling sys.exit")
"""


def test_broken_and_raising_plugins_are_named_and_skipped(site):
    fake_plugin(site, "tljh-plugin-compat-a", "compat_a", COMPAT.replace("{name}", "compat_a"))
    fake_plugin(site, "tljh-plugin-broken-a", "broken_a", BROKEN)
    fake_plugin(site, "tljh-plugin-raising-a", "raising_a", RAISING)
    manager = plugins.load()
    loaded = {name for name, _ in manager.list_name_plugin()}
    assert {"compat_a", "raising_a"} <= loaded and "broken_a" not in loaded
    assert manager.failures == [
        "plugin 'broken_a' (package tljh-plugin-broken-a) could not be loaded and is skipped: "
        "ModuleNotFoundError: No module named 'tljh.no_such_module'"]
    results, failures = manager.call_each("tljh_extra_user_pip_packages")
    assert ("compat_a", ["from-compat_a"]) in results
    assert failures == ["plugin 'raising_a' (package tljh-plugin-raising-a) failed in "
                        "tljh_extra_user_pip_packages and is skipped: ValueError: no packages today"]


async def test_the_hub_starts_and_spawns_with_broken_and_raising_plugins(site, start_hub, caplog):
    fake_plugin(site, "tljh-plugin-compat-b", "compat_b", COMPAT.replace("{name}", "compat_b"))
    fake_plugin(site, "tljh-plugin-broken-b", "broken_b", BROKEN)
    fake_plugin(site, "tljh-plugin-raising-b", "raising_b", RAISING)
    caplog.set_level(logging.ERROR)
    hub = await start_hub()
    await hub.start_server("alice", hub.token("alice"))
    env = hub.spawner.requests[-1].env
    assert env["COMPAT_STATE_DIR"].endswith("/state"), "the working plugin's hook ran"
    log = caplog.text
    assert "plugin 'broken_b' (package tljh-plugin-broken-b) could not be loaded and is skipped" in log
    assert "plugin 'raising_b' (package tljh-plugin-raising-b) failed in tljh_pre_spawn" in log
    assert any("raising_b" in e and "SystemExit" in e for e in hub.hub.extra.errors), hub.hub.extra.errors


def test_tljh_config_paths_follow_the_install_prefix(tmp_path, monkeypatch):
    import importlib

    import tljh.config

    monkeypatch.setenv("TLJH_INSTALL_PREFIX", str(tmp_path))
    config = importlib.reload(tljh.config)
    try:
        assert config.INSTALL_PREFIX == str(tmp_path)
        assert (config.HUB_ENV_PREFIX, config.USER_ENV_PREFIX, config.STATE_DIR, config.CONFIG_DIR) == (
            f"{tmp_path}/hub", f"{tmp_path}/user", f"{tmp_path}/state", f"{tmp_path}/config")
        assert config.CONFIG_FILE == f"{tmp_path}/config/config.yaml"
    finally:
        monkeypatch.delenv("TLJH_INSTALL_PREFIX")
        importlib.reload(tljh.config)


def test_tljh_config_edits_are_validated_and_keep_the_file(tmp_path):
    from tljh import config

    path = tmp_path / "config" / "config.yaml"
    path.parent.mkdir()
    path.write_text("# admins\nusers:\n  admin: [alice]\n")
    config.set_config_value(str(path), "limits.memory", "2G")
    config.add_config_value(str(path), "users.admin", "bob")
    assert config.get_current_config(str(path)) == {"users": {"admin": ["alice", "bob"]}, "limits": {"memory": "2G"}}
    assert path.read_text().startswith("# admins\n"), "comments survive"
    before = path.read_text()
    with pytest.raises(ValueError, match="http.port"):
        config.set_config_value(str(path), "http.port", "eighty")
    with pytest.raises(ValueError, match="not in users.admin"):
        config.remove_config_value(str(path), "users.admin", "carol")
    assert path.read_text() == before, "a refused change leaves config.yaml as it was"
    config.remove_config_value(str(path), "users.admin", "bob")
    config.unset_config_value(str(path), "limits.memory")
    assert config.get_current_config(str(path)) == {"users": {"admin": ["alice"]}}
    # The pure helpers return changed copies.
    original = {"a": {"b": 1}}
    assert config.set_item_in_config(original, "a.c.d", 2) == {"a": {"b": 1, "c": {"d": 2}}}
    assert config.unset_item_from_config(original, "a.b") == {}
    assert original == {"a": {"b": 1}}
    assert config.parse_value("12") == 12 and config.parse_value("true") is True
    with pytest.raises(ValueError, match="not set"):
        config.unset_item_from_config(original, "a.x")


def test_tljh_config_gives_up_on_a_held_lock_instead_of_hanging(tmp_path, monkeypatch):
    """A plugin calling set_config_value inside tljh_config_post_install (the installer holds
    the lock) gets an error telling it what to do, not a deadlock."""
    from tljh import config
    from tljh_daemon import configfile

    monkeypatch.setattr(config, "LOCK_TIMEOUT", 0.2)
    path = str(tmp_path / "config.yaml")
    with configfile.editing(path):
        with pytest.raises(RuntimeError, match="change the config mapping the hook is given"):
            config.set_config_value(path, "limits.memory", "1G")


def test_tljh_utils_run_subprocess_and_versions():
    from tljh import utils

    utils.run_subprocess(["true"])
    with pytest.raises(subprocess.CalledProcessError) as failed:
        utils.run_subprocess(["sh", "-c", "echo why; exit 3"])
    assert failed.value.returncode == 3 and b"why" in failed.value.output
    assert utils.parse_version("1.2rc3") == (1, 2, 3)
    assert {"tljh_pre_spawn", "tljh_new_user_create"} <= set(dir(utils.get_plugin_manager().hook))


def test_tljh_conda_names_the_plugin_asking_for_conda(site):
    fake_plugin(site, "tljh-plugin-conda-c", "conda_c", """
        from tljh import conda

        def install():
            conda.ensure_conda_packages("/opt/tljh/user", ["r-base"])
    """)
    import conda_c

    with pytest.raises(RuntimeError, match=r"ensure_conda_packages\(\['r-base'\]\), called from conda_c: "
                                           r"this hub's user environment has no conda"):
        conda_c.install()
    from tljh import conda

    assert conda.get_conda_package_versions(str(site)) == {}
    (site / "f").write_bytes(b"abc")
    assert conda.sha256_file(str(site / "f")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"



def test_a_plugin_found_twice_on_the_path_is_reported_once(site, tmp_path, monkeypatch):
    other = tmp_path / "other-site"
    other.mkdir()
    monkeypatch.syspath_prepend(str(other))
    fake_plugin(site, "tljh-plugin-broken-d", "broken_d", BROKEN)
    fake_plugin(other, "tljh-plugin-broken-d", "broken_d", BROKEN)
    assert [f for f in plugins.load().failures if "broken_d" in f] == [
        "plugin 'broken_d' (package tljh-plugin-broken-d) could not be loaded and is skipped: "
        "ModuleNotFoundError: No module named 'tljh.no_such_module'"]
