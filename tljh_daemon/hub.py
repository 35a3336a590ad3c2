"""The Hub object: everything a request handler may need, stored on the app under `HUB`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

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


@dataclass
class Hub:
    settings: Settings  # config.yaml, translated (settings.from_config); a reload replaces it
    paths: Paths
    db: Database
    sessions: SessionStore
    authenticator: Authenticator
    proxy: Proxy
    mode: str = "process"  # or "systemd"
    servers: Optional[ServerManager] = None
    traefik: Optional[ProxyRunner] = None  # TraefikSupervisor or TraefikUnit
    spawner: Optional[Spawner] = None  # handed to the ServerManager
    ensure_account: Optional[EnsureAccount] = None  # the Unix-account step of a spawn
    remove_account: Optional[Callable[[str], Awaitable[bool]]] = None  # removes a temporary user's account
    service_manager: Optional[ServiceManager] = None
    storage: Optional[StorageCheck] = None  # can state be saved? (/hub/health)
    usage: Optional[UsageSampler] = None  # CPU and memory over time (set at start-up)
    background: list[asyncio.Task] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    jupyterhub_version: str = compat.FALLBACK_VERSION
    plugins: Optional[Plugins] = None
    extra: Optional[Extra] = None  # jupyterhub_config.Extra: what plugins' and jupyterhub_config.d's settings added
    roles: Roles = field(default_factory=Roles)  # the roles in force (settings.roles and the defaults)

    @property
    def base_url(self):
        """config's base_url: '/' or a sub-path such as '/jupyter/' that everything lives under."""
        return self.settings.base_url

    def url(self, path):
        """`path` (e.g. '/hub/login') as served, under base_url."""
        return urls.join(self.base_url, path)

    def server_url(self, name):
        return urls.server_prefix(name, base_url=self.base_url)


HUB = web.AppKey("hub", Hub)
