"""Test plugin: fails in tljh_config_post_install while $TLJH_TEST_PLUGIN_FAIL is set."""

import os

from tljh.hooks import hookimpl


@hookimpl
def tljh_config_post_install(config):
    if os.environ.get("TLJH_TEST_PLUGIN_FAIL"):
        raise ValueError("asked to fail")
    config["flaky_plugin"] = {"ran": True}
