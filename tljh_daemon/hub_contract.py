"""What a program the hub starts needs from it: its `JUPYTERHUB_*` environment and its OAuth client.

Single-user servers (servers.py) and managed services (managed_services.py) speak the same
protocol to the hub: jupyterhub-singleuser and JupyterHub's `HubOAuth` read these variables,
and log browsers in through the OAuth client registered here, whose secret is the program's
API token. Only what differs (a server's user and default URL, a service's name) stays with
the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import tokens
from .db import SyncDatabase


@dataclass(frozen=True)
class OAuthClient:
    """A program that logs browsers in with the hub: routed at `prefix`, callback under it."""

    id: str
    prefix: str
    description: str
    access_scopes: list[str]
    #: what its tokens may carry beyond access, held by the user logging in (a service's
    #: oauth_client_allowed_scopes and oauth_roles; `!user` filters stand for that user)
    allowed_scopes: tuple[str, ...] = ()

    @property
    def redirect_uri(self) -> str:
        return f"{self.prefix}oauth_callback"


def hub_environment(api_url: str, base_url: str, api_token: str) -> dict[str, str]:
    """How any program reaches the hub's API (JupyterHub's names); `base_url` is the hub's
    sub-path on the site (config key base_url, "/" by default)."""
    return {
        "JUPYTERHUB_API_TOKEN": api_token,
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_BASE_URL": base_url,
        "JUPYTERHUB_HOST": "",
    }


def oauth_environment(client: OAuthClient, service_url: str) -> dict[str, str]:
    """What a routed program needs to log browsers in as `client`."""
    return {
        "JUPYTERHUB_SERVICE_URL": service_url,
        "JUPYTERHUB_SERVICE_PREFIX": client.prefix,
        "JUPYTERHUB_CLIENT_ID": client.id,
        "JUPYTERHUB_OAUTH_CALLBACK_URL": client.redirect_uri,
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(client.access_scopes),
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": json.dumps(list(client.allowed_scopes)),
    }


def register_oauth_client(db: SyncDatabase, client: OAuthClient, secret: str) -> None:
    """Register (or update) `client`; its secret is the program's API token, stored hashed.
    The access_scopes column holds the list of access scopes, or {"access": [...], "allowed":
    [...]} for a client with allowed scopes. On the database thread:
    `await hub.db.run(register_oauth_client, ...)`."""
    db.execute(
        "INSERT INTO oauth_clients (id, secret_hash, redirect_uri, description, access_scopes)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET secret_hash=excluded.secret_hash,"
        " redirect_uri=excluded.redirect_uri, access_scopes=excluded.access_scopes",
        (client.id, tokens.hash_token(secret), client.redirect_uri, client.description,
         json.dumps({"access": client.access_scopes, "allowed": list(client.allowed_scopes)}
                    if client.allowed_scopes else client.access_scopes)),
    )


def limits_environment(limits, guarantees) -> dict[str, str]:
    """MEM_LIMIT, MEM_GUARANTEE (bytes), CPU_LIMIT, CPU_GUARANTEE (cores), as JupyterHub puts them
    in every server's environment when they are set (jupyter-resource-usage shows them).
    `limits`: limits.memory / limits.cpu; `guarantees`: Spawner.mem_guarantee / cpu_guarantee."""
    from .cgroups import memory_bytes

    env = {}
    for key, source, name in (("MEM_LIMIT", limits, "memory"), ("MEM_GUARANTEE", guarantees, "mem_guarantee")):
        if source.get(name):
            env[key] = str(memory_bytes(source[name]))
    for key, source, name in (("CPU_LIMIT", limits, "cpu"), ("CPU_GUARANTEE", guarantees, "cpu_guarantee")):
        if source.get(name):
            env[key] = str(float(source[name]))
    return env
