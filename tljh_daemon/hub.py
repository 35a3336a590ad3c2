"""The Hub object: everything a request handler may need, stored on the app under `HUB`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, TypeVar

from aiohttp import web

from . import compat, urls
from .metrics import Metrics
from .roles import Roles

if TYPE_CHECKING:
    import asyncio

    from .accounts import EnsureAccount
    from .auth.base import Authenticator
    from .db import Database
    from .jupyterhub_config import Extra
    from .managed_services import ServiceManager
    from .paths import Paths
    from .plugins import Plugins
    from .proxy.base import Proxy, ProxyRunner
    from .servers import ServerManager
    from .sessions import SessionStore
    from .settings import Settings
    from .spawner.base import Spawner
    from .storage import StorageCheck
    from .usage_sampler import UsageSampler

T = TypeVar("T")


@dataclass
class Hub:
    settings: Settings  # config.yaml, translated (settings.from_config); a reload replaces it
    paths: Paths
    db: Database
    sessions: SessionStore
    authenticator: Authenticator
    proxy: Proxy
    traefik: ProxyRunner  # TraefikSupervisor or TraefikUnit
    spawner: Spawner  # handed to the ServerManager
    ensure_account: EnsureAccount  # the Unix-account step of a spawn
    remove_account: Callable[[str], Awaitable[bool]]  # removes a temporary user's account
    storage: StorageCheck  # can state be saved? (/hub/health)
    plugins: Plugins
    extra: Extra  # jupyterhub_config.Extra: what plugins' and jupyterhub_config.d's settings added
    mode: str = "process"  # or "systemd"
    background: list[asyncio.Task] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    jupyterhub_version: str = compat.FALLBACK_VERSION
    # Made at start-up (app._lifetime: they need the running loop and its HTTP session); read
    # through the properties below, which fail clearly if something asks earlier.
    _servers: Optional[ServerManager] = field(default=None, init=False, repr=False)
    _service_manager: Optional[ServiceManager] = field(default=None, init=False, repr=False)
    _usage: Optional[UsageSampler] = field(default=None, init=False, repr=False)  # CPU and memory over time

    @property
    def servers(self) -> ServerManager:
        return _started(self._servers, "servers")

    @servers.setter
    def servers(self, value: ServerManager) -> None:
        self._servers = value

    @property
    def service_manager(self) -> ServiceManager:
        return _started(self._service_manager, "service_manager")

    @service_manager.setter
    def service_manager(self, value: ServiceManager) -> None:
        self._service_manager = value

    @property
    def usage(self) -> UsageSampler:
        return _started(self._usage, "usage")

    @usage.setter
    def usage(self, value: UsageSampler) -> None:
        self._usage = value
    roles: Roles = field(default_factory=Roles)  # the roles in force (settings.roles and the defaults)

    @property
    def base_url(self):
        """config's base_url: '/' or a sub-path such as '/jupyter/' that everything lives under."""
        return self.settings.base_url

    def url(self, path):
        """`path` (e.g. '/hub/login') as served, under base_url."""
        return urls.join(self.base_url, path)

    def server_url(self, name, server=""):
        return urls.server_prefix(name, server, base_url=self.base_url)


def _started(value: Optional[T], name: str) -> T:
    if value is None:
        raise RuntimeError(f"Hub.{name} is made when the application starts; it has not started")
    return value


HUB = web.AppKey("hub", Hub)
