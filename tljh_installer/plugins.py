"""Installer side of plugins: install them into the hub environment, collect their hooks' answers."""

import copy
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


class Skipped:
    """What the install left out because a plugin failed: one message per failure, printed as
    each happens and again at the end. A failing plugin never stops the install."""

    def __init__(self):
        self.messages = []

    def add(self, messages):
        for message in messages:
            print(f"    warning: {message}")
            self.messages.append(message)


def call_each(manager, hook, skipped, **kwargs):
    """[(plugin name, result)] of every implementation of `hook` that did not raise; each one
    that raised is named (with its package) in `skipped`."""
    results, failures = manager.call_each(hook, **kwargs)
    skipped.add(failures)
    return results


def config_post_install(manager, config, config_dir, skipped):
    """Run each plugin's tljh_config_post_install on the round-trip `config`; the keys it adds
    that our schema does not know become that plugin's own (recorded in the config directory,
    so tljh-config and the hub accept them from then on). A plugin that raises or leaves the
    config invalid is skipped: what it changed is undone, the others' changes stay."""
    owned = config_mod.plugin_keys(config_dir)
    for impl in manager.hook.tljh_config_post_install.get_hookimpls():
        who = manager.describe(impl.plugin_name)
        saved = copy.deepcopy(config)
        before = set(config_mod.unknown_keys(config_mod.merge(config_mod.DEFAULTS, configfile.plain(config))))
        try:
            impl.function(config=config)
        except (Exception, SystemExit) as e:
            _restore(config, saved)
            skipped.add([f"plugin {who} failed in tljh_config_post_install and is skipped: "
                         f"{type(e).__name__}: {e}; its changes to config.yaml were not saved"])
            continue
        merged = config_mod.merge(config_mod.DEFAULTS, configfile.plain(config))
        added = {key: impl.plugin_name for key in config_mod.unknown_keys(merged)
                 if key not in before and not any(key.startswith(k + ".") for k in owned)}
        try:
            config_mod.validate(merged, {**owned, **added})
        except config_mod.ConfigError as e:
            _restore(config, saved)
            skipped.add([f"plugin {who} made config.yaml invalid in tljh_config_post_install and is "
                         f"skipped: {e}; its changes to config.yaml were not saved"])
            continue
        for key, plugin in added.items():
            owned[key] = plugin
            log.info("config key %s belongs to plugin %s", key, plugin)
    if owned != config_mod.plugin_keys(config_dir):
        config_mod.save_plugin_keys(config_dir, owned)
    return owned


def _restore(config, saved):
    config.clear()
    config.update(saved)


def collected(manager, hook, skipped):
    """The flattened, de-duplicated list that all implementations of `hook` returned."""
    items = []
    for _, result in call_each(manager, hook, skipped):
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
