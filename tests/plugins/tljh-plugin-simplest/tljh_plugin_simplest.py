"""Test plugin: the hooks TLJH's own test plugin uses, each leaving a trace tests can check."""

import os
import pwd

from tljh.hooks import hookimpl


@hookimpl
def tljh_extra_apt_packages():
    return ["hello"]


@hookimpl
def tljh_extra_user_pip_packages():
    return ["tabulate"]


@hookimpl
def tljh_extra_user_conda_channels():
    return ["conda-forge"]


@hookimpl
def tljh_config_post_install(config):
    # A key of the plugin's own, unknown to the hub's schema (TLJH's test plugin does this).
    config["simplest_plugin"] = {"present": True}


@hookimpl
def tljh_custom_jupyterhub_config(c):
    c.Spawner.environment = {"SIMPLEST_PLUGIN": "yes"}
    c.Spawner.default_url = "/tree"
    c.JupyterHub.load_groups = {"simplest-group": ["simplest-member"]}
    c.Test.jupyterhub_config_set_by_simplest_plugin = True  # no meaning to the hub: warned about


@hookimpl
def tljh_new_user_create(username):
    entry = pwd.getpwnam(username)
    path = os.path.join(entry.pw_dir, "simplest-new-user")
    with open(path, "w") as f:
        f.write(username)
    os.chown(path, entry.pw_uid, entry.pw_gid)
