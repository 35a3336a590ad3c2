"""config.yaml translated once into typed, read-only settings for the parts that use them.

`config.load` validates the file (TLJH's keys and layout); the functions here turn the
validated dict into what each component needs, so a component neither reads keys it does
not use nor sees a dict another part may change. A reload builds new settings and hands
them over (see app.reload_proxy).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from . import shared_folders
from .paths import Paths


@dataclass(frozen=True)
class CullSettings:
    """services.cull.*: the built-in idle culler."""

    enabled: bool = True
    timeout: float = 600  # seconds without activity
    every: float = 60  # seconds between checks
    concurrency: int = 5
    max_age: float = 0  # seconds since start; 0: no age limit
    users: bool = False  # also delete culled non-admin users
    exempt_admins: bool = False


@dataclass(frozen=True)
class ServerSettings:
    """What the server manager needs: spawner.*, limits.*, user_environment.*, extra groups,
    base_url, and the public origin servers are told about (from https.*)."""

    user_env: str  # user_environment.path, or the install's user environment
    default_app: str = "jupyterlab"
    start_timeout: float = 120
    stop_timeout: float = 10
    concurrent_starts: int = 1  # spawner.concurrent_starts, 0 (one per CPU) resolved
    concurrent_spawn_limit: int = 100  # 0: no limit
    limits: Mapping[str, Any] = field(default_factory=dict)  # the limits.* keys that are set
    extra_user_groups: Mapping[str, list[str]] = field(default_factory=dict)
    base_url: str = "/"
    public_origin: Optional[str] = None  # e.g. https://hub.example.org, with HTTPS on a known domain
    # shared_folders.*: (name, path, readers group, writers group), linked into homes at spawn
    shared_folders: tuple[tuple[str, str, str, str], ...] = ()


@dataclass(frozen=True)
class ServiceSettings:
    """services.<name> (every key but cull): a program the daemon starts, routes and supervises."""

    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    url: Optional[str] = None  # http://127.0.0.1:<port>: routed at <base_url>services/<name>/
    admin: bool = False
    scopes: tuple[str, ...] = ()
    user: Optional[str] = None  # the Unix account it runs as (default: root)
    display: bool = True


def service_settings(config: Mapping[str, Any]) -> dict[str, ServiceSettings]:
    """{name: ServiceSettings} of the managed services configured under services.*."""
    return {
        name: ServiceSettings(
            command=tuple(spec["command"]), environment=dict(spec.get("environment") or {}), url=spec.get("url"),
            admin=spec.get("admin", False), scopes=tuple(spec.get("scopes") or ()), user=spec.get("user"),
            display=spec.get("display", True),
        )
        for name, spec in config["services"].items()
        if name != "cull"
    }


def cull_settings(config: Mapping[str, Any]) -> CullSettings:
    cull = config["services"]["cull"]
    return CullSettings(
        enabled=cull["enabled"], timeout=cull["timeout"], every=cull["every"], concurrency=cull["concurrency"],
        max_age=cull["max_age"], users=cull["users"], exempt_admins=cull["exempt_admins"],
    )


def public_origin(config: Mapping[str, Any]) -> Optional[str]:
    """The site's public origin when HTTPS serves a known (Let's Encrypt) domain, else None."""
    https = config["https"]
    domains = https["letsencrypt"]["domains"]
    if not (https["enabled"] and domains):
        return None
    return f"https://{domains[0]}" + (f":{https['port']}" if https["port"] != 443 else "")


def server_settings(config: Mapping[str, Any], paths: Paths) -> ServerSettings:
    spawner = config["spawner"]
    return ServerSettings(
        user_env=config["user_environment"]["path"] or paths.user_env,
        default_app=config["user_environment"]["default_app"],
        start_timeout=spawner["start_timeout"],
        stop_timeout=spawner["stop_timeout"],
        concurrent_starts=spawner["concurrent_starts"] or os.cpu_count() or 1,
        concurrent_spawn_limit=spawner["concurrent_spawn_limit"],
        limits={key: value for key, value in config["limits"].items() if value is not None},
        extra_user_groups=dict(config["users"]["extra_user_groups"]),
        base_url=config["base_url"],
        public_origin=public_origin(config),
        shared_folders=tuple(shared_folders.folders(config)),
    )
