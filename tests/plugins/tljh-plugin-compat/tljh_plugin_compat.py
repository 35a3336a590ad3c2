"""Test plugin: imports what published TLJH plugins import (tljh-shared-directory, tljh-new-user
and others) from each tljh.* module, and leaves a trace of each use tests can check."""

import json
import os

from tljh import apt, conda, utils  # noqa: F401  (imported as plugins do; apt is only imported)
from tljh.config import CONFIG_DIR, CONFIG_FILE, HUB_ENV_PREFIX, INSTALL_PREFIX, STATE_DIR, USER_ENV_PREFIX
from tljh.hooks import hookimpl
from tljh.user import ensure_group, ensure_user_group

GROUP = "tljh-compat-test"


@hookimpl
def tljh_config_post_install(config):
    ensure_group(GROUP)
    config["compat_plugin"] = {
        "paths": {"install_prefix": INSTALL_PREFIX, "hub_env": HUB_ENV_PREFIX, "user_env": USER_ENV_PREFIX,
                  "state_dir": STATE_DIR, "config_dir": CONFIG_DIR, "config_file": CONFIG_FILE},
        "conda_versions": len(conda.get_conda_package_versions(USER_ENV_PREFIX)),
    }


@hookimpl
def tljh_post_install():
    utils.run_subprocess(["touch", os.path.join(STATE_DIR, "compat-post-install")])


@hookimpl
def tljh_new_user_create(username):
    ensure_user_group(username, GROUP)
    # A relative path, as tljh-new-user and TLJH's own test plugin use: the hub's working
    # directory is <prefix>/state, as in TLJH.
    with open(f"compat-new-user-{username}", "w") as f:
        json.dump({"cwd": os.getcwd()}, f)
