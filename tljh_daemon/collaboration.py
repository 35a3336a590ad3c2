"""Real-time collaboration (collaboration.enabled): jupyter-collaboration's extensions on or off.

jupyter-collaboration turns itself on wherever it is installed (its server extension
`jupyter_server_ydoc` and two JupyterLab extensions). The installer puts it in the user
environment when the key is on. When it is off, servers get a Jupyter config directory of ours on
JUPYTER_CONFIG_PATH that disables those extensions (as `jupyter server extension disable` would):
a user environment that has the package, e.g. from an admin's `pip install`, then runs without it.
"""

import glob
import os
import shutil

#: a Jupyter config directory (jupyter_server_config.d, labconfig) that turns collaboration off
OFF_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter_config", "collaboration-off")
#: what the installer adds to the user environment when collaboration.enabled is on
PACKAGES = ("jupyter-collaboration>=4,<6",)


def spawn_environment(enabled, paths=None):
    """What a server's environment gets: nothing when collaboration is on, else our config dir
    (its copy under the install prefix, given `paths`: see off_config_dir)."""
    if enabled:
        return {}
    return {"JUPYTER_CONFIG_PATH": off_config_dir(paths) if paths is not None else OFF_CONFIG_DIR}


_copied: set[str] = set()


def off_config_dir(paths):
    """OFF_CONFIG_DIR copied to `<prefix>/share/jupyter-config/collaboration-off` (readable by
    everyone), once per daemon: the servers must read it, and the daemon's own files may sit
    where a server cannot see them (a checkout under /tmp, which servers get a private one of)."""
    target = os.path.join(paths.prefix, "share", "jupyter-config", "collaboration-off")
    if target not in _copied:
        shutil.copytree(OFF_CONFIG_DIR, target, dirs_exist_ok=True)
        for directory, _, files in os.walk(os.path.join(paths.prefix, "share", "jupyter-config")):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        _copied.add(target)
    return target


def installer_packages(config):
    """What the installer adds to the user environment for a validated config.yaml mapping."""
    return list(PACKAGES) if config["collaboration"]["enabled"] else []


def installed(user_env):
    """Does the user environment at `user_env` have jupyter-collaboration's server extension?"""
    return bool(glob.glob(os.path.join(user_env, "lib", "python*", "site-packages", "jupyter_server_ydoc")))


def missing_note(config, default_user_env):
    """What `tljh-config reload` tells an admin who turned collaboration on before the user
    environment has it, else None."""
    user_env = config["user_environment"]["path"] or default_user_env
    if not config["collaboration"]["enabled"] or installed(user_env):
        return None
    return (f"collaboration.enabled is on but the user environment ({user_env}) has no jupyter-collaboration: "
            f"run the installer again as you installed, or: sudo -E pip install '{PACKAGES[0]}'; then "
            f"users stop and start their servers (see docs/howto-sharing.md).")
