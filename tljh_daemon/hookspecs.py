"""Every plugin hook, in one place.

Plugins register through the `tljh` entry point group and mark functions with
`tljh.hooks.hookimpl` (or `pluggy.HookimplMarker("tljh")`), exactly as TLJH
plugins do; TLJH's installer hooks keep their names and signatures. Loading them (a broken
plugin is named and skipped) is `plugins.py`'s job.
"""

import pluggy

hookspec = pluggy.HookspecMarker("tljh")
hookimpl = pluggy.HookimplMarker("tljh")


# -- installer hooks (TLJH's, in the order the installer runs them) ---------------

@hookspec
def tljh_extra_apt_packages():
    """Return a list of Debian packages to install."""


@hookspec
def tljh_extra_hub_pip_packages():
    """Return a list of pip specs to install into the hub environment."""


@hookspec
def tljh_extra_user_pip_packages():
    """Return a list of pip specs to install into the user environment."""


@hookspec
def tljh_extra_user_conda_packages():
    """Return a list of conda packages (the user environment has no conda yet: reported, not installed)."""


@hookspec
def tljh_extra_user_conda_channels():
    """Return a list of conda channels (no conda in the user environment: reported, not used)."""


@hookspec
def tljh_custom_jupyterhub_config(c):
    """Change the traitlets Config `c` as in a jupyterhub_config.py; the hub applies what maps
    onto it (see docs/plugins.md) and warns about the rest."""


@hookspec
def tljh_config_post_install(config):
    """Change `config` (the config.yaml mapping) in place; it is validated and saved afterwards."""


@hookspec
def tljh_post_install():
    """Called when the install is complete and the hub answers."""


@hookspec
def tljh_new_user_create(username):
    """Called by the hub after it created the Unix account `username`."""


# -- hub daemon hooks -----------------------------------------------------------------

@hookspec
def tljh_pre_spawn(user, env, limits):
    """Before a server starts: change `env` (dict) or `limits` (dict) in place."""

