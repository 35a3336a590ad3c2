"""What the hub knows about an OAuth 2.0 / OpenID Connect provider: its endpoints (from the
settings, completed by OIDC discovery when the provider offers it) and its signing keys.

All HTTP goes through aiohttp (never blocking the event loop) with the system's CA
certificates (OpenSSL honours SSL_CERT_FILE / SSL_CERT_DIR). ID tokens are checked with
joserfc: signature against the provider's JWKS, issuer, audience, expiry and nonce.
"""

import asyncio
import json
import logging
import ssl
import time
from urllib.parse import urlsplit, urlunsplit

import aiohttp

# joserfc (and with it cryptography, ~8 MiB) is imported where an ID token is checked: the hub
# loads this module with every login backend's config schema, also where nobody signs in with OAuth.

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
#: only public-key signatures: a MAC keyed with public data proves nothing
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# Signed with the client secret as the key (OpenID Connect Core 10.1), as OAuthenticator accepts.
SECRET_ALGORITHMS = ("HS256", "HS384", "HS512")
DISCOVERY_RETRY = 300  # seconds before asking again a provider that offered no discovery document
CLOCK_LEEWAY = 60
KEY_REFRESH_INTERVAL = 60


class ProviderUnreachable(Exception):
    """The provider did not answer (connection refused, timeout, TLS failure, 5xx)."""


class InvalidIDToken(Exception):
    """The ID token is forged, expired, for another client, or replayed (nonce)."""


class UnacceptedAlgorithm(InvalidIDToken):
    """The ID token is signed with an algorithm the hub does not accept (`none`, unknown), or
    with the client secret while no client secret is configured. `algorithm` names it."""

    def __init__(self, algorithm, reason):
        super().__init__(f"signed with {algorithm!r}: {reason}")
        self.algorithm = algorithm


_ssl_context = None


def ssl_context(verify=True):
    """One context for all provider requests (loading the CA bundle takes a while)."""
    global _ssl_context
    if not verify:
        return False
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context


def http_session(verify=True, headers=None):
    """A short-lived aiohttp session for one sign-in's requests to the provider."""
    return aiohttp.ClientSession(timeout=TIMEOUT, headers=headers,
                                 connector=aiohttp.TCPConnector(ssl=ssl_context(verify)))


def describe(error):
    """A short, secret-free description of a transport error for the log."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def fetch(session, method, url, **kwargs):
    """(status, parsed JSON or None) of one request; ProviderUnreachable when there is no
    proper answer (no connection, timeout, TLS failure, a 5xx)."""
    try:
        async with session.request(method, url, allow_redirects=False, **kwargs) as response:
            status, body = response.status, await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError, ssl.SSLError) as e:
        raise ProviderUnreachable(f"{url}: {describe(e)}") from None
    if status >= 500:
        raise ProviderUnreachable(f"{url}: HTTP {status}")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def discovery_candidates(authorize_url):
    """Where an OIDC discovery document may be: `<issuer>/.well-known/openid-configuration`
    for each path prefix of the authorization endpoint, longest first (Keycloak's
    .../realms/R/protocol/openid-connect/auth has its issuer at .../realms/R)."""
    parts = urlsplit(authorize_url)
    segments = [s for s in parts.path.split("/") if s]
    for n in range(len(segments) - 1, -1, -1):
        path = "/".join(segments[:n])
        yield urlunsplit((parts.scheme, parts.netloc, (f"/{path}" if path else "") +
                          "/.well-known/openid-configuration", "", ""))


class Provider:
    """Endpoints and keys of one provider; discovery and keys are fetched once and cached."""

    def __init__(self, authorize_url, token_url, userdata_url, client_id, verify=True, discover=True,
                 client_secret=""):
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.userdata_url = userdata_url
        self.client_id = client_id
        self.client_secret = client_secret  # the key of HS256/384/512 ID tokens
        self._secret_algorithms_seen = set()
        self.verify = verify
        self.discover = discover
        self.metadata = None  # the discovery document, when the provider offers one
        self._discovered_at = None
        self._keys = None
        self._keys_at = None
        self._lock = asyncio.Lock()

    @property
    def issuer(self):
        return self.metadata["issuer"] if self.metadata else None

    async def endpoints(self):
        """(authorize_url, token_url, userdata_url): the settings, completed by discovery."""
        await self._discover()
        meta = self.metadata or {}
        token_url = self.token_url or meta.get("token_endpoint")
        if not token_url:
            raise ProviderUnreachable(f"no OpenID Connect discovery document describes {self.authorize_url}; "
                                      "set token_url (and userdata_url)")
        return self.authorize_url, token_url, self.userdata_url or meta.get("userinfo_endpoint")

    async def _discover(self):
        if not self.discover or self.metadata is not None:
            return
        async with self._lock:
            if self.metadata is not None or (
                    self._discovered_at and time.monotonic() - self._discovered_at < DISCOVERY_RETRY):
                return
            async with http_session(self.verify) as session:
                for url in discovery_candidates(self.authorize_url):
                    status, doc = await fetch(session, "GET", url)
                    if status != 200:
                        continue
                    # Only the issuer's own document (OIDC Discovery 4.3) that describes this
                    # authorization endpoint counts.
                    if isinstance(doc, dict) and doc.get("authorization_endpoint") == self.authorize_url \
                            and isinstance(doc.get("issuer"), str) and doc.get("jwks_uri") \
                            and url == doc["issuer"].rstrip("/") + "/.well-known/openid-configuration":
                        self.metadata = doc
                        log.info("OAuth: using OpenID Connect discovery from %s", url)
                        break
            self._discovered_at = time.monotonic()
            if self.metadata is None:
                log.warning("OAuth: no OpenID Connect discovery document describes %s; signing in with plain "
                            "OAuth 2.0 (token_url and userdata_url), ID tokens unused", self.authorize_url)

    def _may_refresh(self):
        """At most one key refresh a minute: forged tokens with made-up key ids cannot make
        the hub hammer the provider."""
        if self._keys_at and time.monotonic() - self._keys_at < KEY_REFRESH_INTERVAL:
            return False
        return True

    def _oidc_metadata(self):
        """The discovery document: ID tokens are checked only with one (its jwks_uri, issuer)."""
        if self.metadata is None:
            raise InvalidIDToken("the provider has no OpenID Connect discovery document")
        return self.metadata

    async def _key_set(self, refresh=False):
        if self._keys is None or refresh:
            self._keys_at = time.monotonic()
            jwks_uri = self._oidc_metadata()["jwks_uri"]
            async with http_session(self.verify) as session:
                _, jwks = await fetch(session, "GET", jwks_uri)
            from joserfc.errors import JoseError
            from joserfc.jwk import KeySet

            try:
                self._keys = KeySet.import_key_set(jwks)
            except (ValueError, JoseError, KeyError, TypeError) as e:
                raise ProviderUnreachable(f"{jwks_uri}: not a key set ({e})") from None
        return self._keys

    async def verify_id_token(self, id_token, nonce):
        """The claims of `id_token` once its signature, issuer, audience, expiry and nonce hold."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import OctKey
        from joserfc.jws import extract_compact

        try:
            headers = extract_compact(id_token.encode()).headers()
            alg = headers.get("alg")
            if alg in SECRET_ALGORITHMS:
                if not self.client_secret:
                    raise UnacceptedAlgorithm(alg, "its key is the client secret, and client_secret is not set")
                token = jwt.decode(id_token, OctKey.import_key(self.client_secret.encode()), algorithms=[alg])
                if alg not in self._secret_algorithms_seen:
                    self._secret_algorithms_seen.add(alg)
                    log.info("OAuth: the provider signs ID tokens with %s; checking them with the client secret", alg)
            else:
                advertised = self._oidc_metadata().get("id_token_signing_alg_values_supported", SIGNING_ALGORITHMS)
                algorithms = [a for a in advertised if a in SIGNING_ALGORITHMS] or list(SIGNING_ALGORITHMS)
                if alg not in algorithms:
                    raise UnacceptedAlgorithm(alg, f"the hub accepts {', '.join(algorithms + list(SECRET_ALGORITHMS))}")
                keys = await self._key_set()
                kid = headers.get("kid")
                if kid and kid not in {key.kid for key in keys.keys} and self._may_refresh():
                    keys = await self._key_set(refresh=True)  # the provider may have rotated its keys
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            claims = token.claims
            jwt.JWTClaimsRegistry(
                leeway=CLOCK_LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as e:
            raise InvalidIDToken(f"{type(e).__name__}: {e}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise InvalidIDToken("the token names several audiences and another authorized party (azp)")
        return claims
