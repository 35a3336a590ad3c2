"""Real-time collaboration (collaboration.enabled): jupyter-collaboration's extensions on or off.

jupyter-collaboration turns itself on wherever it is installed (its server extension
`jupyter_server_ydoc` and two JupyterLab extensions). The installer puts it in the user
environment when the key is on. When it is off, servers get a Jupyter config directory of ours on
JUPYTER_CONFIG_PATH that disables those extensions (as `jupyter server extension disable` would):
a user environment that has the package, e.g. from an admin's `pip install`, then runs without it.
"""

import os

#: a Jupyter config directory (jupyter_server_config.d, labconfig) that turns collaboration off
OFF_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter_config", "collaboration-off")
#: what the installer adds to the user environment when collaboration.enabled is on
PACKAGES = ("jupyter-collaboration>=4,<6",)


def spawn_environment(enabled):
    """What a server's environment gets: nothing when collaboration is on, else our config dir."""
    return {} if enabled else {"JUPYTER_CONFIG_PATH": OFF_CONFIG_DIR}


def installer_packages(config):
    """What the installer adds to the user environment for a validated config.yaml mapping."""
    return list(PACKAGES) if config["collaboration"]["enabled"] else []
