"""traefik.env, which both the process-mode proxy and the tljh-traefik unit read: Go's soft
memory limit is in it, the daemon's own GOMEMLIMIT where it has one."""

import os

from tljh_daemon import config as config_mod
from tljh_daemon.paths import Paths
from tljh_daemon.proxy.traefik import GO_MEMORY_LIMIT, TraefikProxy, read_env_file
from tljh_daemon.settings import proxy_settings


def written_env(tmp_path):
    paths = Paths(str(tmp_path))
    os.makedirs(paths.traefik_dir, exist_ok=True)
    config = config_mod.merge(config_mod.DEFAULTS, {"traefik_api": {"password": "x"}})
    proxy = TraefikProxy(paths, proxy_settings(config), "traefik")
    proxy.write_static_config()
    return read_env_file(proxy.env_file)


def test_traefik_gets_a_soft_memory_limit(tmp_path, monkeypatch):
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    assert written_env(tmp_path)["GOMEMLIMIT"] == GO_MEMORY_LIMIT == "40MiB"


def test_the_daemons_own_memory_limit_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("GOMEMLIMIT", "96MiB")
    assert written_env(tmp_path)["GOMEMLIMIT"] == "96MiB"
