"""What the hub needs from its proxy, and from what runs the proxy.

`TraefikProxy` (proxy/traefik.py) is the proxy; `TraefikSupervisor` (process mode) and
`TraefikUnit` (systemd mode) run it. The fast test tier stands in for both (tests/fast/fakes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Proxy(Protocol):
    """Routes URL prefixes to servers and services, and says when a change is live."""

    routes: dict[str, str]  # prefix -> target URL, as last written

    @property
    def log_path(self) -> str: ...

    @property
    def acme_store(self) -> str: ...

    def write_static_config(self) -> bool:
        """Write the proxy's start-up configuration; True when it changed (a restart applies it)."""
        ...

    async def add_route(self, prefix: str, target: str, *, wait: bool = True) -> None: ...

    async def delete_route(self, prefix: str, *, wait: bool = True) -> None: ...

    async def set_routes(self, routes: Mapping[str, str]) -> None:
        """Replace every route at once."""
        ...

    async def wait_for_route(self, prefix: str, *, present: bool, timeout: float = 10) -> None:
        """Until the route is (or is no longer) served; TimeoutError after `timeout` seconds."""
        ...

    async def close(self) -> None: ...


class ProxyRunner(Protocol):
    """Starts the proxy (adopting a running one) and lets go of it at shutdown."""

    async def start(self, *, config_changed: bool) -> None:
        """Start or adopt the proxy; restart it when `config_changed`; return once it answers."""
        ...

    async def close(self) -> None:
        """Stop watching the proxy (it keeps running, so routes survive a daemon restart)."""
        ...
