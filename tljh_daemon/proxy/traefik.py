"""Traefik as the proxy: static config, the dynamic rules file, and route checks.

Facts this follows (measured): the file provider watches a *directory*; the
rules file is written next to it and `os.replace`d in (a temp file inside the
watched directory costs an extra reload); `providersThrottleDuration` is 100ms;
a route counts as live only once Traefik's API lists it.
"""

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import unquote

import aiohttp

from ..files import read_or_create_secret, write_atomically
from ..paths import Paths
from ..settings import LetsEncryptSettings, ProxySettings

log = logging.getLogger(__name__)

RULES_FILE = "tljh.yaml"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
TLS_OPTIONS = {
    "minVersion": "VersionTLS12",
    "sniStrict": False,
    "cipherSuites": [  # TLS 1.2 suites with forward secrecy and AEAD (TLS 1.3 suites are fixed)
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ],
}
HUB_ROUTER = "hub"
API_ROUTER = "traefik-api"


def write_json(data, path, tmp_dir=None):
    """JSON is YAML, so Traefik reads it, and unambiguously (no YAML quoting surprises)."""
    write_atomically(path, json.dumps(data, indent=1, sort_keys=True), tmp_dir=tmp_dir)


# Go's garbage collector lets the heap grow to twice what is live and returns the rest to the
# system slowly: after a 100-user class start Traefik held ~90 MiB of heap for ~25 MiB live. With
# this soft limit it collects (and gives memory back) as it nears 40 MiB: ~31 MiB after the same
# storm, the same CPU per proxied request (benchmarks/run.py B4/B5). It is soft: a heap that
# needs more gets it, with more frequent collections.
GO_MEMORY_LIMIT = "40MiB"


def read_env_file(path):
    """KEY=VALUE lines (comments and blanks skipped); a missing file is an empty mapping."""
    env = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    env[key.strip()] = value.strip().strip('"').strip("'")
    except FileNotFoundError:
        pass
    return env


def router_name(prefix):
    """A Traefik-safe, stable router name for a URL prefix."""
    slug = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")[:40]
    return f"route-{slug}-{hashlib.sha256(prefix.encode()).hexdigest()[:8]}"


def _backtick_safe(path):
    if "`" in path:
        raise ValueError(f"route prefix cannot contain a backtick: {path!r}")
    return path


class TraefikProxy:
    """Owns Traefik's configuration. Routes map URL prefixes to http://127.0.0.1:<port>."""

    def __init__(self, paths: Paths, settings: ProxySettings, traefik_bin: str) -> None:
        self.paths = paths
        self.settings = settings  # replaced (never changed) by a reload, which also rewrites the config
        self.traefik_bin = traefik_bin
        self.api_url = f"http://{settings.api_ip}:{settings.api_port}"
        self.api_user = settings.api_username
        self._api_password = settings.api_password
        self.static_config_path = os.path.join(paths.traefik_dir, "traefik.yaml")
        self.rules_path = os.path.join(paths.traefik_rules_dir, RULES_FILE)
        self.routes: dict[str, str] = {}  # prefix -> target url
        self._write_lock = asyncio.Lock()
        self._api_htpasswd: Optional[str] = None
        self._session: Optional[aiohttp.ClientSession] = None  # one HTTP session for all API calls, opened on first use

    @property
    def api_password(self):
        """traefik_api.password, or a generated one kept in state/traefik/api_password."""
        if not self._api_password:
            path = os.path.join(self.paths.traefik_dir, "api_password")
            self._api_password = read_or_create_secret(path, lambda: secrets.token_urlsafe(24).encode()).decode().strip()
        return self._api_password

    # -- static configuration -------------------------------------------------

    @property
    def letsencrypt(self) -> Optional[LetsEncryptSettings]:
        """The Let's Encrypt (ACME) settings when HTTPS uses them, else None."""
        return self.settings.letsencrypt if self.settings.uses_acme else None

    def static_config(self):
        s = self.settings
        entry_points: dict[str, Any] = {
            "http": {"address": f"{s.http_address}:{s.http_port}"},
            "auth_api": {"address": f"{s.api_ip}:{s.api_port}"},
        }
        config = {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            # A file (not stdout) so ACME errors can be shown to admins in both modes.
            "log": {"level": "INFO" if self.letsencrypt else "WARN", "filePath": self.log_path, "noColor": True},
            "entryPoints": entry_points,
            "api": {"dashboard": False},
            "ping": {"entryPoint": "auth_api"},
            "providers": {
                "providersThrottleDuration": "100ms",
                "file": {"directory": self.paths.traefik_rules_dir, "watch": True},
            },
        }
        if s.https_enabled:
            entry_points["http"]["http"] = {
                "redirections": {"entryPoint": {"to": "https", "scheme": "https", "permanent": True}}
            }
            entry_points["https"] = {"address": f"{s.https_address}:{s.https_port}"}
        le = self.letsencrypt
        if le:
            acme: dict[str, Any] = {"email": le.email, "storage": self.acme_store}
            if le.acme_server:
                acme["caServer"] = le.acme_server
            elif le.staging:
                acme["caServer"] = LETSENCRYPT_STAGING
            if le.dns_provider:
                acme["dnsChallenge"] = {"provider": le.dns_provider}
            else:
                acme["httpChallenge"] = {"entryPoint": "http"}
            config["certificatesResolvers"] = {"letsencrypt": {"acme": acme}}
        return config

    @property
    def log_path(self) -> str:
        return os.path.join(self.paths.logs_dir, "traefik.log")

    @property
    def acme_store(self) -> str:
        return os.path.join(self.paths.traefik_dir, "acme.json")

    @property
    def env_file(self):
        return os.path.join(self.paths.traefik_dir, "traefik.env")

    def environment(self):
        """Go's soft memory limit (the daemon's own GOMEMLIMIT where it has one) and what
        Traefik's ACME client (lego) needs: a private CA, DNS provider credentials."""
        env = {"GOMEMLIMIT": os.environ.get("GOMEMLIMIT") or GO_MEMORY_LIMIT}
        le = self.letsencrypt
        if le and le.acme_ca_file:
            env["LEGO_CA_CERTIFICATES"] = le.acme_ca_file
        if le and le.dns_provider:
            path = le.dns_env_file or os.path.join(self.paths.config_dir, "dns.env")
            env.update(read_env_file(path))
        return env

    def write_static_config(self) -> bool:
        """Render traefik.yaml and traefik.env (0600); return True when either changed."""
        def current(path):
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return None

        before = (current(self.static_config_path), current(self.env_file))
        write_json(self.static_config(), self.static_config_path)
        write_atomically(self.env_file, "".join(f"{k}={v}\n" for k, v in sorted(self.environment().items())))
        return (current(self.static_config_path), current(self.env_file)) != before

    # -- dynamic configuration ------------------------------------------------

    def _api_users(self):
        # SHA-1 ({SHA}, one of the three htpasswd forms Traefik takes), not bcrypt: Traefik checks
        # the hash on every API request, and the daemon asks every 20 ms per starting server whether
        # its route is live; with bcrypt (cost 10) each check cost Traefik ~50 ms of CPU, which in a
        # 30-user class start was ~4 CPU-seconds and routes going live seconds late. A slow hash
        # protects a leaked hash of a guessable password: this password is 192 random bits unless
        # traefik_api.password sets one, and the hash sits in the root-only state directory, where
        # the password itself is readable anyway.
        if self._api_htpasswd is None:
            digest = base64.b64encode(hashlib.sha1(self.api_password.encode()).digest()).decode()
            self._api_htpasswd = f"{self.api_user}:{{SHA}}{digest}"
        return [self._api_htpasswd]

    def dynamic_config(self):
        hub_url = f"http://127.0.0.1:{self.settings.hub_port}"
        routers = {
            HUB_ROUTER: {
                "rule": "PathPrefix(`/`)",
                "entryPoints": ["http"],
                "service": HUB_ROUTER,
                "priority": 1,
            },
            API_ROUTER: {
                "rule": "PathPrefix(`/api`)",
                "entryPoints": ["auth_api"],
                "service": "api@internal",
                "middlewares": ["traefik-api-auth"],
            },
        }
        services = {HUB_ROUTER: {"loadBalancer": {"servers": [{"url": hub_url}]}}}
        for prefix, target in sorted(self.routes.items()):
            name = router_name(prefix)
            routers[name] = {
                # Traefik matches the decoded path; prefixes are %-encoded (as JupyterHub's).
                "rule": f"PathPrefix(`{_backtick_safe(unquote(prefix))}`)",
                "entryPoints": ["http"],
                "service": name,
                # Longer prefixes win; every user route outranks the hub's catch-all.
                "priority": 100 + len(prefix),
            }
            services[name] = {"loadBalancer": {"servers": [{"url": target}]}}
        config = {
            "http": {
                "routers": routers,
                "services": services,
                "middlewares": {"traefik-api-auth": {"basicAuth": {"users": self._api_users()}}},
            }
        }
        if self.settings.https_enabled:
            self._add_tls(config)
        return config

    def _add_tls(self, config):
        """Public routers move to the https entrypoint (http only redirects), TLS 1.2+."""
        le = self.letsencrypt
        if le:
            domains = le.domains
            tls = {"certResolver": "letsencrypt", "domains": [{"main": domains[0], "sans": list(domains[1:])}]}
        else:
            tls = {}
        for router in config["http"]["routers"].values():
            if router["entryPoints"] == ["http"]:
                router["entryPoints"] = ["https"]
                router["tls"] = tls
        config["tls"] = {"options": {"default": TLS_OPTIONS}}
        if self.settings.tls_cert:
            pair = {"certFile": self.settings.tls_cert, "keyFile": self.settings.tls_key}
            config["tls"]["certificates"] = [pair]
            config["tls"]["stores"] = {"default": {"defaultCertificate": pair}}

    async def _write_rules(self):
        """Write the rules file outside the watched directory, then move it in."""
        data = self.dynamic_config()
        async with self._write_lock:
            await asyncio.to_thread(write_json, data, self.rules_path, self.paths.traefik_dir)

    # -- routes -----------------------------------------------------------------

    async def add_route(self, prefix: str, target: str, *, wait: bool = True) -> None:
        self.routes[prefix] = target
        await self._write_rules()
        if wait:
            await self.wait_for_route(prefix, present=True)

    async def delete_route(self, prefix: str, *, wait: bool = True) -> None:
        if self.routes.pop(prefix, None) is None:
            return
        await self._write_rules()
        if wait:
            await self.wait_for_route(prefix, present=False)

    async def set_routes(self, routes: Mapping[str, str]) -> None:
        """Replace all routes at once (start-up reconciliation)."""
        self.routes = dict(routes)
        await self._write_rules()

    async def api_get(self, path):
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                auth=aiohttp.BasicAuth(self.api_user, self.api_password),
                timeout=aiohttp.ClientTimeout(total=2),
            )
        async with self._session.get(self.api_url + path) as resp:
            return resp.status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def route_is_live(self, prefix):
        try:
            return await self.api_get(f"/api/http/routers/{router_name(prefix)}@file") == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def wait_for_route(self, prefix: str, *, present: bool, timeout: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if await self.route_is_live(prefix) == present:
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(
            f"Traefik did not {'add' if present else 'remove'} the route {prefix} within {timeout}s"
        )

    async def wait_until_up(self, timeout=20, alive=None):
        """Until Traefik answers on its API; `alive()` False means it died trying."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if await self.is_up():
                return
            if alive is not None and not alive():
                raise RuntimeError("Traefik exited at start-up; see its log")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"Traefik did not answer on its API within {timeout}s")

    async def is_up(self):
        try:
            return await self.api_get("/api/overview") == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False
