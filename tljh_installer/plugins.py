"""Installer side of plugins: install them into the hub environment, collect their hooks' answers."""

import logging
import os
import shutil
import subprocess
import sys
import tempfile

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


def collected(manager, hook):
    """The flattened, de-duplicated list that all implementations of `hook` returned."""
    items = []
    for result in getattr(manager.hook, hook)():
        for item in result or []:
            if item not in items:
                items.append(item)
    return items


def install_apt_packages(packages):
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if missing:
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", *missing], env=env)


def install_hub_packages(packages):
    if packages:
        run([uv(), "pip", "install", "--python", sys.executable, *packages])
