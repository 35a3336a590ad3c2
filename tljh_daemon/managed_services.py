"""Managed services: programs the daemon starts with an API token and keeps running.

Configured under `services.<name>` in config.yaml (every key but `cull`), with JupyterHub's
service fields. One without a `command` runs elsewhere and authenticates with its fixed
`api_token` (JupyterHub's external services); the hub keeps only that token's hash. A service
with a `url` is routed at /services/<name>/ (under base_url) and can log browsers in with
OAuth, like a single-user server: users holding `access:services!service=<name>` (a role gives
it) get in, with a token carrying its `oauth_client_allowed_scopes` and `oauth_roles`' scopes
that they hold. What a service's own token may do comes from its `scopes`, `admin` and the roles
naming it. Services live and die with the daemon; a `command`'s token without `api_token` is
fresh on every start and kept only in memory.
"""

import asyncio
import logging
import os
import pwd
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from . import hub_contract, roles, scopes, tokens
from .settings import ServiceSettings
from .tasks import cancel_and_wait
from .urls import join

log = logging.getLogger(__name__)


@dataclass
class ManagedService:
    """A configured service (its ServiceSettings' fields) and, while it runs, its token and process."""

    name: str
    command: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    url: Optional[str] = None
    admin: bool = False
    scopes: tuple[str, ...] = ()
    user: Optional[str] = None
    display: bool = True
    api_token: Optional[str] = field(default=None, repr=False)
    cwd: Optional[str] = None
    oauth_client_allowed_scopes: tuple[str, ...] = ()
    oauth_roles: tuple[str, ...] = ()
    base_url: str = "/"
    roles: tuple[str, ...] = ()  # the roles naming it (roles.py), and admin for an admin service
    role_scopes: frozenset = frozenset()  # what those roles give it
    oauth_role_scopes: tuple[str, ...] = ()  # the scopes of its oauth_roles
    token: Optional[str] = field(default=None, repr=False)
    proc: Optional[subprocess.Popen] = None

    @property
    def prefix(self):
        return join(self.base_url, f"/services/{self.name}/")

    @property
    def oauth_client(self):
        allowed = tuple(dict.fromkeys((*self.oauth_client_allowed_scopes, *self.oauth_role_scopes)))
        return hub_contract.OAuthClient(f"service-{self.name}", self.prefix, f"Service {self.name}",
                                        [f"access:services!service={self.name}"], allowed)

    @property
    def granted_scopes(self):
        held = set(self.scopes) | self.role_scopes
        return held | scopes.role_scopes(self.name, admin=True) if self.admin else held

    def model(self):
        return {
            "kind": "service",
            "name": self.name,
            "admin": self.admin,
            "roles": list(self.roles),
            "url": self.url or "",
            "prefix": self.prefix if self.url else "",
            "pid": self.proc.pid if self.proc and self.proc.poll() is None else 0,
            "command": list(self.command),
            "display": self.display,
            "info": {},
        }


class ServiceManager:
    restart_delay = 2.0

    def __init__(self, hub, hub_api_url, services: Mapping[str, ServiceSettings]):
        self.hub = hub
        self.hub_api_url = hub_api_url
        self.services = {name: self._service(name, spec) for name, spec in services.items()}
        self._tasks: list[asyncio.Task] = []
        self._by_token_hash: dict[str, ManagedService] = {}

    def _service(self, name, spec):
        """A configured service with what the roles naming it give (the admin role: an admin service)."""
        held = self.hub.roles
        admin = spec.admin or "admin" in held.service_roles(name)
        return ManagedService(**{**asdict(spec), "admin": admin}, name=name, base_url=self.hub.base_url,
                              roles=tuple(held.service_roles(name, admin)),
                              role_scopes=frozenset(held.service_scopes(name)),
                              oauth_role_scopes=held.scopes_of_roles(spec.oauth_roles))

    def service_for_token(self, secret):
        return self._by_token_hash.get(tokens.hash_token(secret))

    def _environment(self, service):
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **service.environment,
            "JUPYTERHUB_SERVICE_NAME": service.name,
            **hub_contract.hub_environment(self.hub_api_url, self.hub.base_url, service.token),
        }
        if service.url:
            env.update(hub_contract.oauth_environment(service.oauth_client, service.url))
        if service.user:
            # As JupyterHub's service spawner: the account's identity, which jupyterhub-singleuser
            # run as a service (nbgrader's formgrader) and the programs it starts read.
            entry = pwd.getpwnam(service.user)
            env.update({"JUPYTERHUB_USER": service.user, "USER": entry.pw_name, "HOME": entry.pw_dir,
                        "SHELL": entry.pw_shell or "/bin/sh"})
        return env

    def _launch(self, service):
        log_path = os.path.join(self.hub.paths.logs_dir, f"service-{service.name}.log")
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        kwargs: dict[str, Any] = {}
        if service.user:
            entry = pwd.getpwnam(service.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "cwd": entry.pw_dir}
            if os.geteuid() == 0:  # the account's own groups, never the hub's (root's) supplementary ones
                kwargs["extra_groups"] = os.getgrouplist(entry.pw_name, entry.pw_gid)
        if service.cwd:
            kwargs["cwd"] = service.cwd
        try:
            service.proc = subprocess.Popen(
                service.command, env=self._environment(service), stdin=subprocess.DEVNULL,
                stdout=fd, stderr=subprocess.STDOUT, **kwargs,
            )
        finally:
            os.close(fd)
        log.info("Started service %s (pid %s)", service.name, service.proc.pid)

    async def _supervise(self, service):
        while True:
            try:
                await asyncio.to_thread(self._launch, service)
            except (OSError, KeyError) as e:
                log.error("Service %s cannot start: %s", service.name, e)
            else:
                # A Popen has no awaitable exit: poll it.
                while service.proc.poll() is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                log.warning("Service %s exited with status %s; restarting", service.name, service.proc.returncode)
            await asyncio.sleep(self.restart_delay)

    async def start(self):
        unreachable = [name for name, s in self.services.items()
                       if s.url and not self.hub.roles.granting("access:services", name)]
        if unreachable:
            log.warning("Note: %s", roles.access_note(unreachable))
        for service in self.services.values():
            service.token = service.api_token or tokens.new_secret()
            self._by_token_hash[tokens.hash_token(service.token)] = service
            if service.url:
                await self.hub.db.run(hub_contract.register_oauth_client, service.oauth_client, service.token)
                await self.hub.proxy.add_route(service.prefix, service.url.rstrip("/"), wait=False)
            if service.command:
                self._tasks.append(asyncio.create_task(self._supervise(service)))
            else:  # an external service: it runs elsewhere with its api_token; only the hash is kept
                service.token = service.api_token = None

    async def close(self):
        await cancel_and_wait(*self._tasks)
        for service in self.services.values():
            if service.proc and service.proc.poll() is None:
                service.proc.terminate()
                try:
                    await asyncio.to_thread(service.proc.wait, 5)
                except subprocess.TimeoutExpired:
                    service.proc.kill()
