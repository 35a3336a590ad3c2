"""config.yaml translated into the typed settings components receive."""

import dataclasses
import os

import pytest

from tljh_daemon import config as config_mod
from tljh_daemon import settings
from tljh_daemon.paths import Paths


def _config(overrides):
    config = config_mod.merge(config_mod.DEFAULTS, overrides)
    config_mod.validate(config)
    return config


def _proxy(overrides):
    return settings.proxy_settings(_config(overrides))


def test_server_settings_resolve_defaults():
    server = settings.server_settings(_config({"limits": {"memory": "1G"}}), Paths("/opt/x"))
    assert server.user_env == "/opt/x/user" and server.default_app == "jupyterlab"
    assert server.concurrent_starts == (os.cpu_count() or 1)  # 0 means one per CPU
    assert dict(server.limits) == {"memory": "1G"}  # unset limits are left out
    assert server.public_origin is None and server.base_url == "/"


def test_public_origin_only_with_https_on_a_known_domain():
    le = {"email": "a@b.c", "domains": ["hub.example.org"]}
    assert settings.public_origin(_proxy({"https": {"enabled": True, "letsencrypt": le}})) == "https://hub.example.org"
    assert settings.public_origin(
        _proxy({"https": {"enabled": True, "port": 8443, "letsencrypt": le}})) == "https://hub.example.org:8443"
    assert settings.public_origin(_proxy({"https": {"enabled": False, "letsencrypt": le}})) is None


def test_cull_settings_carry_the_cull_keys():
    cull = settings.cull_settings(_config({"services": {"cull": {"timeout": 30, "users": True}}}))
    assert (cull.enabled, cull.timeout, cull.every, cull.users, cull.exempt_admins) == (True, 30, 60, True, False)


def test_service_settings_are_every_service_but_cull():
    config = _config({"services": {"board": {"command": ["board", "--port=1"], "url": "http://127.0.0.1:10102",
                                             "scopes": ["list:users"]}}})
    assert settings.service_settings(config) == {"board": settings.ServiceSettings(
        command=("board", "--port=1"), url="http://127.0.0.1:10102", scopes=("list:users",))}


def test_from_config_gives_each_component_its_part_read_only():
    le = {"email": "a@b.c", "domains": ["hub.example.org", "www.example.org"]}
    s = settings.from_config(_config({
        "https": {"enabled": True, "letsencrypt": le}, "users": {"admin": ["Boss"], "banned": ["eve"]},
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "announcement": {"login": "<b>hi</b>"}, "branding": {"site_name": "Lab"}, "hub": {"port": 15005}}),
        Paths("/opt/x"))
    assert s.proxy.uses_acme and s.proxy.letsencrypt.domains == ("hub.example.org", "www.example.org")
    assert (s.hub_port, s.proxy.hub_port, s.server.public_origin) == (15005, 15005, "https://hub.example.org")
    assert (s.auth.type, s.auth.admin, s.auth.banned, s.auth.base_url) == ("dummy", ("Boss",), ("eve",), "/")
    assert s.auth.section("DummyAuthenticator", {"password": None, "x": 1}) == {"password": "pw", "x": 1}
    assert s.auth.section(None, {"x": 1}) == {}
    assert (s.pages.announcements["login"], s.pages.site_name, s.pages.auth_type) == ("<b>hi</b>", "Lab", "dummy")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.proxy.http_port = 8080  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.auth.sections["DummyAuthenticator"]["password"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        s.pages.announcements["all"] = "changed"  # type: ignore[index]
