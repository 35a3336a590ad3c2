"""OAuth 2.0 / OpenID Connect sign-in (OAuthenticator's GenericOAuthenticator keys), on Authlib.

The login route sends the browser to the provider with a fresh `state` (also kept in an
HttpOnly cookie, so the callback must come back to the browser that started it), PKCE S256
and, for OpenID Connect, a `nonce`. The callback exchanges the code (request built by Authlib,
sent with aiohttp), verifies the ID token (oauth_provider.py), reads the user-info endpoint, and decides
who may enter and who is admin from the allow lists and the provider's groups. Every failure
is an OAuthFailure: a clear page for the person and one log line for the administrator.
GitHub and Google are presets of this class (oauth_presets.py).
"""

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .. import users
from .base import Authenticator, LoggedIn, LoginRefused
from .oauth_provider import InvalidIDToken, Provider, ProviderUnreachable, UnacceptedAlgorithm, fetch, http_session

log = logging.getLogger(__name__)

LOGIN_PATH = "/hub/oauth_login"
CALLBACK_PATH = "/hub/oauth_callback"
STATE_COOKIE = "tljh-oauth-state"
STATE_TTL = 600  # seconds a sign-in may take at the provider
MAX_PENDING = 10000

_str = {"type": "string"}
_strings = {"type": "array", "items": {"type": "string", "minLength": 1}}
_url = {"type": "string", "pattern": r"^(https?://[^\s]+)?$"}

DEFAULTS = {
    "client_id": "",
    "client_secret": "",
    "oauth_callback_url": "",
    "authorize_url": "",
    "token_url": "",
    "userdata_url": "",
    "username_claim": "username",
    "scope": [],
    "login_service": "OAuth 2.0",
    "allowed_users": [],
    "admin_users": [],
    "blocked_users": [],
    "allow_all": False,
    "allowed_groups": [],
    "admin_groups": [],
    "claim_groups_key": "groups",
    "auto_login": False,
    "basic_auth": True,
    "validate_server_cert": True,
}

SCHEMA_PROPERTIES = {
    "client_id": _str,
    "client_secret": _str,
    "oauth_callback_url": _url,
    "authorize_url": _url,
    "token_url": _url,
    "userdata_url": _url,
    "username_claim": {"type": "string", "minLength": 1},
    "scope": {"anyOf": [_strings, _str]},
    "login_service": {"type": "string", "minLength": 1},
    "allowed_users": _strings,
    "admin_users": _strings,
    "blocked_users": _strings,
    "allow_all": {"type": "boolean"},
    "allowed_groups": _strings,
    "admin_groups": _strings,
    "claim_groups_key": {"type": "string", "minLength": 1},
    "auto_login": {"type": "boolean"},
    "basic_auth": {"type": "boolean"},
    "validate_server_cert": {"type": "boolean"},
}

UNREACHABLE = ("{service} could not be reached to finish signing you in. Please try again in a few "
               "minutes; if it keeps failing, tell the hub's administrator.")
CLIENT_REFUSED = ("{service} refused this hub's sign-in request: the hub's OAuth client id or client "
                  "secret is not right. Please tell the hub's administrator.")
CODE_REFUSED = "{service} did not accept this sign-in (it may have expired or been used already). Please sign in again."
BAD_STATE = ("This sign-in could not be finished: it does not match one started in this browser (it may "
             "have expired, been used already, or been started elsewhere). Please sign in again.")
BAD_ID_TOKEN = ("{service}'s answer could not be verified (its ID token is expired, not signed by the "
                "provider, or meant for another site), so you were not signed in. Please sign in again; "
                "if it keeps failing, tell the hub's administrator.")
UNACCEPTED_ALGORITHM = ("{service} signed its answer with {algorithm}, which this hub cannot check, so you "
                       "were not signed in. Signing in again will not help: tell the hub's administrator.")
PROVIDER_SAID_NO = "{service} did not sign you in ({error}). You can try again."
NO_NAME = ("{service} did not say who you are (its answer has no '{claim}'). Please tell the hub's "
           "administrator: the username_claim setting may be wrong.")
NOT_ALLOWED = ("You signed in with {service} as {name}, but {name} may not use this hub: {reason}. "
               "Ask the hub's administrator (the person who gave you this address) to let you in.")


class OAuthFailure(LoginRefused):
    """A failed sign-in: `str()` is for the person, `log_message` for the log (never secrets)."""

    def __init__(self, message, log_message, status=403):
        super().__init__(message)
        self.log_message = log_message
        self.status = status


@dataclass
class Pending:
    """A sign-in sent to the provider and not yet back."""

    nonce: str  # sent (and an ID token required back) only when `oidc`
    oidc: bool
    code_verifier: str
    next_url: str
    redirect_uri: str
    created: float


class PendingLogins:
    """State values of sign-ins in progress; each can be used once, for STATE_TTL seconds."""

    def __init__(self):
        self._pending = OrderedDict()

    def add(self, state, pending):
        self._expire()
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        self._pending[state] = pending

    def pop(self, state):
        self._expire()
        return self._pending.pop(state, None)

    def _expire(self):
        now = time.monotonic()
        while self._pending:
            state, oldest = next(iter(self._pending.items()))
            if now - oldest.created < STATE_TTL:
                break
            del self._pending[state]


def claim(claims, path):
    """The value at a dotted path (`realm_access.roles`), or None."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def scope_list(scope):
    return scope.split() if isinstance(scope, str) else list(scope or [])


def check_settings(settings):
    """Cross-key rules; returns (key, message) or None."""
    for key in ("client_id", "client_secret", "authorize_url"):
        if not settings[key]:
            return key, "is required for OAuth sign-in"
    if not settings["token_url"] and "openid" not in scope_list(settings["scope"]):
        return "token_url", "is required (or add 'openid' to scope to find it by OpenID Connect discovery)"
    callback = settings["oauth_callback_url"]
    if callback and not urlsplit(callback).path.endswith(CALLBACK_PATH):
        return "oauth_callback_url", ("must be this hub's /hub/oauth_callback, e.g. "
                                      "https://hub.example.org/hub/oauth_callback")
    return None


class GenericOAuthenticator(Authenticator):
    """Any OAuth 2.0 provider; OpenID Connect (discovery, verified ID token) when it offers it."""

    short_name = "generic"
    class_names: tuple[str, ...] = ("generic-oauth", "oauthenticator.generic.GenericOAuthenticator",
                                    "oauthenticator.GenericOAuthenticator")
    section = "GenericOAuthenticator"
    DEFAULTS = DEFAULTS
    SCHEMA = {"type": "object", "additionalProperties": False, "properties": SCHEMA_PROPERTIES}
    SECRET_KEYS = ("client_secret",)
    check_settings = staticmethod(check_settings)
    password_form = False
    pages = ("oauth",)  # the login and callback pages (backend_routes.py)

    def __init__(self, auth_settings, db):
        super().__init__(auth_settings, db)
        s = self.settings
        self.login_service = s["login_service"]
        self.scope = scope_list(s["scope"])
        self.provider = Provider(s["authorize_url"], s["token_url"], s["userdata_url"], s["client_id"],
                                 verify=s["validate_server_cert"], discover="openid" in self.scope,
                                 client_secret=s["client_secret"])
        self.pending = PendingLogins()
        if not self._has_allow_rule():
            log.warning("OAuth: no allow rule is set (allow_all, allowed_users, allowed_groups or users.allowed): "
                        "only admins can sign in")

    # -- the interface ------------------------------------------------------------------------

    def login_url(self, next_url):
        return self.url(LOGIN_PATH) + ("?" + urlencode({"next": next_url}) if next_url else "")

    def redirect_uri(self, origin):
        """oauth_callback_url, or the callback under the URL the browser used (`origin`)."""
        return self.settings["oauth_callback_url"] or origin + self.url(CALLBACK_PATH)

    # -- step 1: off to the provider ----------------------------------------------------------

    async def begin(self, origin, next_url):
        """(the provider's authorization URL, the state to bind to this browser)."""
        try:
            authorize_url, _, _ = await self.provider.endpoints()
        except ProviderUnreachable as e:
            raise self._failure(UNREACHABLE, f"OAuth: {self.login_service} unreachable at sign-in start: {e}", 502) from e
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        redirect_uri = self.redirect_uri(origin)
        extra = {"nonce": nonce} if self.provider.metadata else {}
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # where OAuth signs in (see oauth_provider)
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        url = prepare_grant_uri(authorize_url, self.settings["client_id"], "code", redirect_uri=redirect_uri,
                                scope=" ".join(self.scope) or None, state=state,
                                code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256",
                                **extra)
        self.pending.add(state, Pending(nonce, bool(extra), verifier, next_url, redirect_uri, time.monotonic()))
        return url, state

    # -- step 2: back from the provider -------------------------------------------------------

    async def complete(self, query, cookie_state):
        """The LoggedIn for a callback request's query, or an OAuthFailure; and the next URL."""
        state = query.get("state", "")
        # Only the browser that started a sign-in may finish (or use up) its state.
        same_browser = bool(state and cookie_state) and secrets.compare_digest(state, cookie_state)
        pending = self.pending.pop(state) if same_browser else None
        if pending is None:
            raise self._failure(BAD_STATE, "OAuth: callback refused: state missing, unknown, expired, reused "
                                           "or not this browser's", 400)
        if query.get("error"):
            error = query["error"][:64]
            raise self._failure(PROVIDER_SAID_NO.replace("{error}", error),
                                f"OAuth: {self.login_service} returned error {error!r} to the callback")
        if not query.get("code"):
            raise self._failure(BAD_STATE, "OAuth: callback without a code", 400)
        try:
            claims, access_token = await self._exchange(query["code"], pending)
            name = self.username(claims)
            async with self._api_session(access_token) as api:
                groups = await self.groups(claims, api)
                rules = await self.provider_rules(name, claims, api)
            return self.decide(name, groups, rules), pending.next_url
        except ProviderUnreachable as e:
            raise self._failure(UNREACHABLE, f"OAuth: {self.login_service} unreachable during sign-in: {e}", 502) from e

    async def _exchange(self, code, pending):
        """(claims about the user, access token): token endpoint, ID token, user info."""
        s = self.settings
        _, token_url, userdata_url = await self.provider.endpoints()
        from authlib.oauth2.auth import ClientAuth
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        body = prepare_token_request("authorization_code", code=code, redirect_uri=pending.redirect_uri,
                                     code_verifier=pending.code_verifier)
        client_auth = ClientAuth(s["client_id"], s["client_secret"],
                                 "client_secret_basic" if s["basic_auth"] else "client_secret_post")
        _, headers, body = client_auth.prepare(
            "POST", token_url, {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
            body)
        async with http_session(s["validate_server_cert"]) as session:
            status, token = await fetch(session, "POST", token_url, data=body, headers=headers)
        if not isinstance(token, dict):
            if status == 401:
                token = {"error": "invalid_client"}
            else:
                raise ProviderUnreachable(f"{token_url}: HTTP {status} without a JSON answer")
        error = str(token.get("error") or "")[:64]
        if error or status == 401:
            if status == 401 or error in ("invalid_client", "unauthorized_client", "incorrect_client_credentials"):
                raise self._failure(CLIENT_REFUSED, f"OAuth: {self.login_service}'s token endpoint refused the "
                                                    f"client ({error or 'HTTP 401'}): check client_id and client_secret",
                                    502)
            raise self._failure(CODE_REFUSED, f"OAuth: {self.login_service}'s token endpoint refused the code "
                                              f"({error or f'HTTP {status}'})")
        access_token = token.get("access_token")
        if not access_token:
            raise ProviderUnreachable(f"{token_url}: the answer has no access_token")
        claims = {}
        if pending.oidc:
            if not token.get("id_token"):
                raise self._failure(BAD_ID_TOKEN, f"OAuth: {self.login_service} sent no ID token", 502)
            try:
                claims = await self.provider.verify_id_token(token["id_token"], pending.nonce)
            except UnacceptedAlgorithm as e:
                message = UNACCEPTED_ALGORITHM.replace("{algorithm}", str(e.algorithm))
                raise self._failure(message, f"OAuth: ID token from {self.login_service} refused: {e}", 502) from e
            except InvalidIDToken as e:
                raise self._failure(BAD_ID_TOKEN, f"OAuth: ID token from {self.login_service} refused: {e}", 502) from e
        if userdata_url:
            async with self._api_session(access_token) as api:
                status, info = await fetch(api, "GET", userdata_url)
            if status != 200 or not isinstance(info, dict):
                raise ProviderUnreachable(f"{userdata_url}: HTTP {status}" + ("" if status != 200 else ", not a JSON object"))
            if claims and info.get("sub") not in (None, claims["sub"]):
                raise self._failure(BAD_ID_TOKEN, "OAuth: user info is about another subject than the ID token", 502)
            claims = {**claims, **info}
        return claims, access_token

    def _api_session(self, access_token):
        """A session that calls the provider's API as the user (user info, GitHub's org checks)."""
        return http_session(self.settings["validate_server_cert"],
                            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})

    # -- who is it, and may they enter --------------------------------------------------------

    def username(self, claims):
        key = self.settings["username_claim"]
        value = claim(claims, key)
        if value is None or value == "" or isinstance(value, (dict, list)):
            raise self._failure(NO_NAME.replace("{claim}", key),
                                f"OAuth: {self.login_service}'s answer has no usable {key!r} (username_claim)", 502)
        try:
            return users.normalize_name(str(value))
        except users.InvalidName as e:
            raise self._failure(f"{self.login_service} signed you in as {str(value)[:64]!r}, which cannot be a "
                                f"user name here ({e}). Please tell the hub's administrator.",
                                f"OAuth: refused name {str(value)[:64]!r} from {key!r}: {e}") from e

    async def groups(self, claims, api):
        """The provider's groups for this user (from claim_groups_key)."""
        value = claim(claims, self.settings["claim_groups_key"])
        if isinstance(value, str):
            return {value}
        return {str(g) for g in value} if isinstance(value, list) else set()

    async def provider_rules(self, name, claims, api):
        """Presets' extra rules: (admits, refusal reason or None). Generic: no opinion."""
        return False, None

    def _names(self, key, listed):
        """auth.<section>.<key> and users.<...> (`listed`, normalized) together."""
        return users.valid_names(self.settings[key]) | listed

    def _has_allow_rule(self):
        s = self.settings
        return bool(s["allow_all"] or s["allowed_users"] or s["allowed_groups"] or self.auth_settings.allowed
                    or self._preset_allow_rule())

    def _preset_allow_rule(self):
        return False

    def decide(self, name, groups, rules):
        """LoggedIn when `name` may enter (admin from the lists and admin_groups); else OAuthFailure."""
        s = self.settings
        admits, refusal = rules
        if name in self._names("blocked_users", self.banned):
            raise self._refuse(name, "this account is blocked", "in blocked_users or users.banned")
        if refusal:
            raise self._refuse(name, refusal, refusal)
        listed_admin = name in self._names("admin_users", self.admins)
        group_admin = bool(groups & set(s["admin_groups"]))
        admin = listed_admin or group_admin
        allowed = (admin or s["allow_all"] or admits or name in self._names("allowed_users", self.allowed)
                   or bool(groups & set(s["allowed_groups"])))
        if not allowed:
            raise self._refuse(name, *self.not_allowed_reason(groups))
        # With admin_groups, the provider decides admin at every login; else lists only promote.
        return LoggedIn(name, admin=admin if s["admin_groups"] else (True if listed_admin else None))

    def not_allowed_reason(self, groups):
        """(for the person, for the log): why someone matching no allow rule is refused."""
        if not self._has_allow_rule():
            return ("this hub has not been told who may sign in",
                    "no allow rule set (allow_all, allowed_users, allowed_groups)")
        if self.settings["allowed_groups"]:
            return "you are not in a group this hub admits", f"not in allowed_groups (groups: {sorted(groups)})"
        return "you are not on this hub's list of users", "not in allowed_users"

    def _refuse(self, name, reason, log_reason):
        return OAuthFailure(NOT_ALLOWED.format(service=self.login_service, name=name, reason=reason),
                            f"OAuth: sign-in of {name} refused: {log_reason}", 403)

    def _failure(self, message, log_message, status=403):
        return OAuthFailure(message.replace("{service}", self.login_service), log_message, status)
