"""Installer side of plugins: install them into the hub environment, collect their hooks' answers."""

import logging
import os
import shutil
import subprocess
import sys
import tempfile

from tljh_daemon import config as config_mod
from tljh_daemon import configfile

from .steps import run, uv

log = logging.getLogger("tljh_installer")


def install(specs):
    """Install every --plugin spec (all of them are kept; TLJH kept only the last).

    A local directory is built from a scratch copy, as bootstrap.py does for the hub:
    building writes egg-info into the tree, which fails where it is read-only.
    """
    if not specs:
        return
    with tempfile.TemporaryDirectory(prefix="tljh-plugins-") as scratch:
        specs = [_build_copy(spec, scratch) if os.path.isdir(spec) else spec for spec in specs]
        run([uv(), "pip", "install", "--python", sys.executable, *specs])


def _build_copy(path, scratch):
    copy = os.path.join(scratch, os.path.basename(os.path.normpath(path)))
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__")
    shutil.copytree(path, copy, ignore=ignore, symlinks=True)
    return copy


class PluginFailed(RuntimeError):
    """A plugin's hook raised: the install stops, naming the plugin and the hook."""


def describe(manager, plugin_name):
    """'name' or 'name' (package dist-name), for messages."""
    for plugin, dist in manager.list_plugin_distinfo():
        if manager.get_name(plugin) == plugin_name:
            return f"{plugin_name!r} (package {dist.project_name})"
    return repr(plugin_name)


def call_each(manager, hook, **kwargs):
    """[(plugin name, result)] of every implementation of `hook`, one plugin at a time, so a
    failure names its plugin (pluggy's own call would raise the bare exception)."""
    results = []
    for impl in getattr(manager.hook, hook).get_hookimpls():
        try:
            results.append((impl.plugin_name, impl.function(**kwargs)))
        except Exception as e:
            raise PluginFailed(f"plugin {describe(manager, impl.plugin_name)} failed in {hook}: "
                               f"{type(e).__name__}: {e}. Fix or uninstall the plugin, then re-run the "
                               f"installer; nothing it was asked for has been saved") from e
    return results


def config_post_install(manager, config, config_dir):
    """Run each plugin's tljh_config_post_install on the round-trip `config`; the keys it adds
    that our schema does not know become that plugin's own (recorded in the config directory,
    so tljh-config and the hub accept them from then on)."""
    owned = config_mod.plugin_keys(config_dir)
    for impl in manager.hook.tljh_config_post_install.get_hookimpls():
        before = set(config_mod.unknown_keys(config_mod.merge(config_mod.DEFAULTS, configfile.plain(config))))
        try:
            impl.function(config=config)
        except Exception as e:
            raise PluginFailed(f"plugin {describe(manager, impl.plugin_name)} failed in tljh_config_post_install: "
                               f"{type(e).__name__}: {e}. Fix or uninstall the plugin, then re-run the "
                               f"installer; config.yaml was not changed") from e
        merged = config_mod.merge(config_mod.DEFAULTS, configfile.plain(config))
        for key in config_mod.unknown_keys(merged):
            if key not in before and not any(key.startswith(k + ".") for k in owned):
                owned[key] = impl.plugin_name
                log.info("config key %s belongs to plugin %s", key, impl.plugin_name)
        try:
            config_mod.validate(merged, owned)
        except config_mod.ConfigError as e:
            raise PluginFailed(f"plugin {describe(manager, impl.plugin_name)} made config.yaml invalid in "
                               f"tljh_config_post_install: {e}; config.yaml was not changed") from None
    if owned != config_mod.plugin_keys(config_dir):
        config_mod.save_plugin_keys(config_dir, owned)
    return owned


def collected(manager, hook):
    """The flattened, de-duplicated list that all implementations of `hook` returned."""
    items = []
    for _, result in call_each(manager, hook):
        for item in result or []:
            if item not in items:
                items.append(item)
    return items


def install_apt_packages(packages):
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if missing:
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        run(["apt-get", "update", "-qq"], env=env)
        # Wait for another apt (unattended-upgrades, a parallel install) instead of failing.
        run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", *missing], env=env)


def install_hub_packages(packages):
    if packages:
        run([uv(), "pip", "install", "--python", sys.executable, *packages])
