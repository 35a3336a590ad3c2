"""config.yaml translated once into typed, read-only settings for the parts that use them.

`config.load` validates the file (TLJH's keys and layout); `from_config` turns the validated
dict into what each component needs (`Settings`, built once by app.make_app), so a component
neither reads keys it does not use nor sees a dict another part may change. A reload builds
new settings and hands them over (see app.reload_proxy). Only plugins' installer hooks still
see the raw mapping (TLJH's plugin API).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from types import MappingProxyType

from . import profiles as profiles_mod
from . import roles as roles_mod
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
    remove_named_servers: bool = False  # delete culled named servers, not only stop them
    exempt_admins: bool = False


@dataclass(frozen=True)
class UsageSettings:
    """usage.*: the usage sampler and its history."""

    interval: float = 10  # seconds between samples
    retention: float = 24 * 3600  # seconds of history kept (per minute; the last hour in full)


def usage_settings(config: Mapping[str, Any]) -> UsageSettings:
    usage = config["usage"]
    return UsageSettings(interval=usage["interval"], retention=usage["retention_hours"] * 3600)


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
    # limits.groups: {hub group: {memory, cpu}} for members (profiles.effective_limits)
    group_limits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    profiles: tuple[profiles_mod.Profile, ...] = ()  # `profiles`: what users choose from
    extra_user_groups: Mapping[str, list[str]] = field(default_factory=dict)
    base_url: str = "/"
    public_origin: Optional[str] = None  # e.g. https://hub.example.org, with HTTPS on a known domain
    # shared_folders.*: (name, path, readers group, writers group), linked into homes at spawn
    shared_folders: tuple[tuple[str, str, str, str], ...] = ()
    kernel_prewarm: bool = True  # kernels.prewarm: the server's kernels forked from its zygote
    collaboration: bool = False  # collaboration.enabled: jupyter-collaboration's extensions on
    named_servers: bool = False  # named_servers.enabled (JupyterHub's allow_named_servers)
    named_server_limit: int = 0  # named_servers.limit_per_user (0: no limit)
    # environments.*: what a profile's `environment` names (environments.server_from)
    environments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSettings:
    """services.<name> (every key but cull): a program the daemon starts, routes and supervises."""

    command: tuple[str, ...] = ()  # none: the service runs elsewhere, with api_token
    environment: Mapping[str, str] = field(default_factory=dict)
    url: Optional[str] = None  # http://127.0.0.1:<port>: routed at <base_url>services/<name>/
    admin: bool = False
    scopes: tuple[str, ...] = ()
    user: Optional[str] = None  # the Unix account it runs as (default: root)
    display: bool = True
    api_token: Optional[str] = field(default=None, repr=False)  # its token (else a fresh one per start)
    cwd: Optional[str] = None  # the command's working directory (default: its user's home, or the hub's)
    oauth_client_allowed_scopes: tuple[str, ...] = ()  # what tokens from its OAuth login may carry
    oauth_roles: tuple[str, ...] = ()  # roles whose scopes those tokens may carry too


def service_settings(config: Mapping[str, Any]) -> dict[str, ServiceSettings]:
    """{name: ServiceSettings} of the managed services configured under services.*."""
    return {
        name: ServiceSettings(
            command=tuple(spec.get("command") or ()), environment=dict(spec.get("environment") or {}),
            url=spec.get("url"), admin=spec.get("admin", False), scopes=tuple(spec.get("scopes") or ()),
            user=spec.get("user"), display=spec.get("display", True), api_token=spec.get("api_token"),
            cwd=spec.get("cwd"), oauth_client_allowed_scopes=tuple(spec.get("oauth_client_allowed_scopes") or ()),
            oauth_roles=tuple(spec.get("oauth_roles") or ()),
        )
        for name, spec in config["services"].items()
        if name != "cull"
    }


def cull_settings(config: Mapping[str, Any]) -> CullSettings:
    cull = config["services"]["cull"]
    return CullSettings(
        enabled=cull["enabled"], timeout=cull["timeout"], every=cull["every"], concurrency=cull["concurrency"],
        max_age=cull["max_age"], users=cull["users"], exempt_admins=cull["exempt_admins"],
        remove_named_servers=cull["remove_named_servers"],
    )


def public_origin(proxy: ProxySettings) -> Optional[str]:
    """The site's public origin when HTTPS serves a known (Let's Encrypt) domain, else None."""
    domains = proxy.letsencrypt.domains
    if not (proxy.https_enabled and domains):
        return None
    return f"https://{domains[0]}" + (f":{proxy.https_port}" if proxy.https_port != 443 else "")


def server_settings(config: Mapping[str, Any], paths: Paths) -> ServerSettings:
    spawner = config["spawner"]
    return ServerSettings(
        user_env=config["user_environment"]["path"] or paths.user_env,
        default_app=config["user_environment"]["default_app"],
        start_timeout=spawner["start_timeout"],
        stop_timeout=spawner["stop_timeout"],
        concurrent_starts=spawner["concurrent_starts"] or os.cpu_count() or 1,
        concurrent_spawn_limit=spawner["concurrent_spawn_limit"],
        limits={key: config["limits"][key] for key in profiles_mod.LIMIT_KEYS if config["limits"].get(key) is not None},
        group_limits=MappingProxyType({group: MappingProxyType(dict(values))
                                       for group, values in (config["limits"].get("groups") or {}).items()}),
        profiles=profiles_mod.from_config(config),
        extra_user_groups=dict(config["users"]["extra_user_groups"]),
        base_url=config["base_url"],
        public_origin=public_origin(proxy_settings(config)),
        shared_folders=tuple(shared_folders.folders(config)),
        kernel_prewarm=config["kernels"]["prewarm"],
        collaboration=config["collaboration"]["enabled"],
        environments=MappingProxyType(dict(config["environments"])),
        named_servers=config["named_servers"]["enabled"],
        named_server_limit=config["named_servers"]["limit_per_user"],
    )


@dataclass(frozen=True)
class LetsEncryptSettings:
    """https.letsencrypt.*: certificates from an ACME server."""

    email: str = ""
    domains: tuple[str, ...] = ()
    staging: bool = False
    acme_server: str = ""  # an ACME directory other than Let's Encrypt's
    acme_ca_file: str = ""  # a CA the ACME client trusts (a private ACME server)
    dns_provider: str = ""  # DNS-01 instead of HTTP-01
    dns_env_file: str = ""  # that provider's credentials (default: <config>/dns.env)


@dataclass(frozen=True)
class ProxySettings:
    """What the proxy needs: http.*, https.*, traefik_api.*, and where the hub listens."""

    hub_port: int = 15001
    http_address: str = ""
    http_port: int = 80
    https_enabled: bool = False
    https_address: str = ""
    https_port: int = 443
    tls_cert: str = ""  # an own certificate (and key); when set, ACME is not used
    tls_key: str = ""
    letsencrypt: LetsEncryptSettings = LetsEncryptSettings()
    api_ip: str = "127.0.0.1"
    api_port: int = 8099
    api_username: str = "api_admin"
    api_password: Optional[str] = None  # None: generated and kept in state/traefik/api_password

    @property
    def uses_acme(self) -> bool:
        """HTTPS with certificates from the ACME server (not an own certificate)."""
        return self.https_enabled and bool(self.letsencrypt.email) and not self.tls_cert


@dataclass(frozen=True)
class AuthSettings:
    """What authenticators read: auth.*, users.*, base_url, and whether the culler runs."""

    type: str = "firstuse"
    # auth.<section>: each class's own settings, read-only (validated by the class's SCHEMA)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    admin: tuple[str, ...] = ()  # users.admin, users.allowed, users.banned as configured
    allowed: tuple[str, ...] = ()
    banned: tuple[str, ...] = ()
    extra_user_groups: Mapping[str, list[str]] = field(default_factory=dict)
    base_url: str = "/"
    cull_enabled: bool = True  # services.cull.enabled (workshop users need the culler)

    def section(self, name: Optional[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
        """auth.<name> merged over `defaults` ({} without a section)."""
        return {**defaults, **(self.sections.get(name) or {})} if name else {}


@dataclass(frozen=True)
class PageSettings:
    """What the HTML pages show: announcement.*, branding.*, and the auth.type they name."""

    announcements: Mapping[str, str] = field(default_factory=dict)  # page ("all", "login" ...) -> HTML
    site_name: str = ""
    logo: str = ""  # a file served as /hub/logo instead of ours
    templates: str = ""  # a directory whose templates override ours
    auth_type: str = "firstuse"


@dataclass(frozen=True)
class SpawnerSettings:
    """spawner.type and what choosing the spawner needs (ServerSettings has the rest)."""

    type: str = "local"
    prewarm: bool = True
    slurm: Mapping[str, Any] = field(default_factory=dict)  # spawner.slurm.*
    #: spawner.<section>.* of every section (a plugin's spawner reads its own here)
    sections: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Everything the daemon reads from config.yaml, one part per component."""

    base_url: str
    hub_port: int
    server: ServerSettings
    spawner: SpawnerSettings
    cull: CullSettings
    services: Mapping[str, ServiceSettings]
    proxy: ProxySettings
    auth: AuthSettings
    pages: PageSettings
    usage: UsageSettings = UsageSettings()
    roles: tuple[roles_mod.Role, ...] = ()  # roles.* (and jupyterhub_config.d's load_roles)
    sharing: bool = False  # sharing.enabled: every user holds shares!user (sharing.py)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def proxy_settings(config: Mapping[str, Any]) -> ProxySettings:
    http, https, api = config["http"], config["https"], config["traefik_api"]
    le = https["letsencrypt"]
    return ProxySettings(
        hub_port=config["hub"]["port"], http_address=http["address"], http_port=http["port"],
        https_enabled=https["enabled"], https_address=https["address"], https_port=https["port"],
        tls_cert=https["tls"]["cert"], tls_key=https["tls"]["key"],
        letsencrypt=LetsEncryptSettings(
            email=le["email"], domains=tuple(le["domains"]), staging=le["staging"], acme_server=le["acme_server"],
            acme_ca_file=le["acme_ca_file"], dns_provider=le["dns_provider"], dns_env_file=le["dns_env_file"]),
        api_ip=api["ip"], api_port=api["port"], api_username=api["username"], api_password=api["password"],
    )


def auth_settings(config: Mapping[str, Any]) -> AuthSettings:
    listed = config["users"]
    return AuthSettings(
        type=config["auth"]["type"],
        sections=_frozen({key: _frozen(value) for key, value in config["auth"].items()
                          if key != "type" and isinstance(value, Mapping)}),
        admin=tuple(dict.fromkeys([*listed["admin"], *admin_role_users(config)])),
        allowed=tuple(listed["allowed"]), banned=tuple(listed["banned"]),
        extra_user_groups=_frozen(listed["extra_user_groups"]),
        base_url=config["base_url"],
        cull_enabled=config["services"]["cull"]["enabled"],
    )


def admin_role_users(config: Mapping[str, Any]) -> list[str]:
    """The users a configured `admin` role names: admins, as users.admin makes them."""
    return [user for role in roles_mod.from_config(config.get("roles") or []) if role.name == "admin"
            for user in role.users]


def page_settings(config: Mapping[str, Any]) -> PageSettings:
    branding = config["branding"]
    return PageSettings(
        announcements=_frozen(config["announcement"]), site_name=branding["site_name"], logo=branding["logo"],
        templates=branding["templates"], auth_type=config["auth"]["type"],
    )


def from_config(config: Mapping[str, Any], paths: Paths) -> Settings:
    """The daemon's settings from a validated config.yaml mapping (after jupyterhub_config's additions)."""
    spawner = config["spawner"]
    return Settings(
        base_url=config["base_url"],
        hub_port=config["hub"]["port"],
        server=server_settings(config, paths),
        spawner=SpawnerSettings(type=spawner["type"], prewarm=spawner["prewarm"], slurm=spawner["slurm"],
                                sections={k: v for k, v in spawner.items() if isinstance(v, Mapping)}),
        cull=cull_settings(config),
        services=_frozen(service_settings(config)),
        proxy=proxy_settings(config),
        auth=auth_settings(config),
        pages=page_settings(config),
        usage=usage_settings(config),
        roles=roles_mod.from_config(config.get("roles") or []),
        sharing=config["sharing"]["enabled"],
    )
