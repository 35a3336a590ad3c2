"""An example plugin using every hook, written exactly as for TLJH (`tljh.hooks.hookimpl`).

Each hook leaves a visible trace, so the integration tests can check it ran.
"""

import os
import pwd

from tljh.hooks import hookimpl

MARKER_DIR = "/var/lib/tljh-plugin-example"


@hookimpl
def tljh_extra_apt_packages():
    return ["tree"]


@hookimpl
def tljh_extra_hub_pip_packages():
    return ["six"]


@hookimpl
def tljh_extra_user_pip_packages():
    return ["cowsay"]


@hookimpl
def tljh_extra_user_conda_packages():
    return []  # the user environment has no conda; a non-empty list is reported, not installed


@hookimpl
def tljh_config_post_install(config):
    config.setdefault("user_environment", {}).setdefault("default_app", "jupyterlab")


@hookimpl
def tljh_post_install():
    os.makedirs(MARKER_DIR, exist_ok=True)
    with open(os.path.join(MARKER_DIR, "post_install"), "w") as f:
        f.write("done\n")


@hookimpl
def tljh_new_user_create(username):
    home = pwd.getpwnam(username).pw_dir
    path = os.path.join(home, "WELCOME.txt")
    with open(path, "w") as f:
        f.write(f"Welcome, {username}!\n")
    entry = pwd.getpwnam(username)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@hookimpl
def tljh_pre_spawn(user, env, limits):
    env["TLJH_EXAMPLE_PLUGIN"] = f"hello {user}"
