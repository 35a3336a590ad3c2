"""config.yaml translated into the typed settings components receive."""

import os

from tljh_daemon import config as config_mod
from tljh_daemon import settings
from tljh_daemon.paths import Paths


def _config(overrides):
    config = config_mod.merge(config_mod.DEFAULTS, overrides)
    config_mod.validate(config)
    return config


def test_server_settings_resolve_defaults():
    server = settings.server_settings(_config({"limits": {"memory": "1G"}}), Paths("/opt/x"))
    assert server.user_env == "/opt/x/user" and server.default_app == "jupyterlab"
    assert server.concurrent_starts == (os.cpu_count() or 1)  # 0 means one per CPU
    assert dict(server.limits) == {"memory": "1G"}  # unset limits are left out
    assert server.public_origin is None and server.base_url == "/"


def test_public_origin_only_with_https_on_a_known_domain():
    le = {"email": "a@b.c", "domains": ["hub.example.org"]}
    assert settings.public_origin(_config({"https": {"enabled": True, "letsencrypt": le}})) == "https://hub.example.org"
    assert settings.public_origin(
        _config({"https": {"enabled": True, "port": 8443, "letsencrypt": le}})) == "https://hub.example.org:8443"
    assert settings.public_origin(_config({"https": {"enabled": False, "letsencrypt": le}})) is None


def test_cull_settings_carry_the_cull_keys():
    cull = settings.cull_settings(_config({"services": {"cull": {"timeout": 30, "users": True}}}))
    assert (cull.enabled, cull.timeout, cull.every, cull.users, cull.exempt_admins) == (True, 30, 60, True, False)


def test_service_settings_are_every_service_but_cull():
    config = _config({"services": {"board": {"command": ["board", "--port=1"], "url": "http://127.0.0.1:10102",
                                             "scopes": ["list:users"]}}})
    assert settings.service_settings(config) == {"board": settings.ServiceSettings(
        command=("board", "--port=1"), url="http://127.0.0.1:10102", scopes=("list:users",))}
