"""The interface every authenticator implements, and what they share.

An authenticator says how its login page looks (a password form, a "Sign in with ..."
button, or both; `auto_login` skips the page), may add routes of its own (an OAuth
callback, a sign-up page), and decides who a person is. It never creates users or
sessions itself: it hands a `LoggedIn` to the one shared finish-login path
(handlers/login.py), which creates the user, applies admin rights and sets the cookie.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import urls
from .throttle import FailedLoginThrottle, LoginThrottle, TooManyAttempts  # noqa: F401 (re-exported)
from ..users import InvalidName, normalize_name, system_username, valid_names

if TYPE_CHECKING:
    from aiohttp import web

    from ..db import Database
    from ..settings import AuthSettings

log = logging.getLogger(__name__)


class LoginRefused(Exception):
    """Shown to the user on the login page (never says which part was wrong)."""


class PasswordsManagedElsewhere(LoginRefused):
    """This authenticator keeps no passwords the hub could change."""

    def __init__(self, message="Passwords are managed outside the hub for this authenticator"):
        super().__init__(message)


@dataclass
class LoggedIn:
    """Who logged in, as the authenticator found out.

    `admin` None: only `users.admin` may promote (today's rule for password logins).
    `admin` True/False: the provider decides (e.g. from its groups) and it is applied at
    every login, so a person removed from an admin group loses admin at their next login.
    """

    name: str
    admin: Optional[bool] = None


class Authenticator:
    """Decides who a person is; knows which Unix account a hub user runs as.

    Subclasses set the class attributes below; the registry (auth/registry.py) maps
    `auth.type` values to them and validates `auth.<section>.<key>` with SCHEMA."""

    #: the canonical `auth.type` value, and the other values that mean this class
    short_name: Optional[str] = None
    class_names: tuple[str, ...] = ()
    #: config.yaml section holding this authenticator's settings: auth.<section>.<key>
    section: Optional[str] = None
    #: defaults of that section, its JSON schema, and keys never shown or logged
    DEFAULTS: dict[str, Any] = {}
    SCHEMA: dict[str, Any] = {"type": "object"}
    SECRET_KEYS: tuple[str, ...] = ()

    #: login page: a name/password form; a "Sign in with <login_service>" button
    password_form: bool = True
    login_service: Optional[str] = None
    #: shown on the login page
    login_hint: str = ""
    #: whether a missing Unix account is created on first spawn
    creates_accounts: bool = True
    #: users change their own password at /hub/auth/change-password
    can_change_password: bool = False
    #: admins set or clear others' passwords at /hub/auth/change-password/<name>
    can_reset_password: bool = False
    #: the hub's own page sets this authenticator needs ("signup", "oauth", "tmplogin"): the web
    #: layer adds them (backend_routes.py), so an authenticator imports no handler
    pages: tuple[str, ...] = ()

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> Optional[tuple[str, str]]:
        """Cross-key rules a schema cannot express; returns (key, message) or None."""
        return None

    def __init__(self, auth_settings: AuthSettings, db: Database) -> None:
        """`auth_settings`: auth.*, users.* and base_url (settings.auth_settings); this class's own
        section, merged over DEFAULTS, is `self.settings`."""
        self.auth_settings = auth_settings
        self.db = db
        self.throttle = LoginThrottle()
        self.settings = auth_settings.section(self.section, self.DEFAULTS)

    @property
    def auto_login(self) -> bool:
        """Skip the login page and go straight to `login_url` (only with a button, no form)."""
        return bool(self.settings.get("auto_login")) and self.login_service is not None

    def login_url(self, next_url: str) -> str:
        """Where the "Sign in with ..." button goes (authenticators with a login_service)."""
        raise NotImplementedError

    def routes(self) -> list[web.RouteDef]:
        """aiohttp route definitions a plugin's authenticator adds itself (the built-in ones
        name the hub's page sets they need in `pages` instead, so they import no handler)."""
        return []

    def url(self, path: str) -> str:
        """`path` under the hub's base_url (routes themselves are moved there by the app)."""
        return urls.join(self.auth_settings.base_url, path)

    @property
    def admins(self) -> set[str]:
        """users.admin"""
        return valid_names(self.auth_settings.admin)

    @property
    def banned(self) -> set[str]:
        """users.banned"""
        return valid_names(self.auth_settings.banned)

    @property
    def allowed(self) -> set[str]:
        """users.allowed (empty: no list)"""
        return valid_names(self.auth_settings.allowed)

    def check_allowed(self, name: str) -> bool:
        if name in self.banned:
            return False
        allowed = self.allowed
        if allowed and name not in allowed | self.admins:
            return False
        return True

    def system_username(self, name: str) -> str:
        """The Unix account a user's server runs as."""
        return system_username(name)

    # -- password logins ----------------------------------------------------------------

    async def check_password(self, name: str, password: str) -> Union[bool, LoggedIn, str]:
        """True, a LoggedIn, or the user's hub name (when the provider renames) when `password`
        is right for `name`. Runs blocking work in a thread; may raise LoginRefused with a reason."""
        raise NotImplementedError

    async def login(self, name: str, password: str, address: str = "") -> LoggedIn:
        """A LoggedIn on success (the password form's POST from client `address`); raise
        LoginRefused otherwise. Attempts wait their turn in the throttle (throttle.py)."""
        try:
            name = normalize_name(name)
        except InvalidName as e:
            raise LoginRefused(str(e)) from None
        ok: Union[bool, LoggedIn, str]
        try:
            async with self.throttle.attempt(name, address):
                if not self.check_allowed(name) or not password:
                    ok = False
                else:
                    ok = await self.check_password(name, password)
                if not ok:
                    self.throttle.failed(name, address)
        except TooManyAttempts as e:
            log.warning("Login for %s from %s refused unchecked: too many attempts waiting for this %s",
                        name, address or "?", e)
            raise LoginRefused("Too many login attempts at once; wait a minute and try again") from None
        if not ok:
            log.warning("Failed login for %s", name)
            raise LoginRefused("Invalid username or password")
        self.throttle.succeeded(name)
        if isinstance(ok, LoggedIn):
            return ok
        return LoggedIn(ok if isinstance(ok, str) else name)

    # -- passwords kept by the hub ----------------------------------------------------------

    async def change_password(self, name: str, old: str, new: str) -> None:
        """A user changes their own password; LoginRefused says why not."""
        raise PasswordsManagedElsewhere()

    async def set_password(self, name: str, password: str) -> None:
        """Admin action: set `name`'s password."""
        raise PasswordsManagedElsewhere()

    async def reset_password(self, name: str) -> None:
        """Admin action: clear `name`'s password (what happens next is the authenticator's rule)."""
        raise PasswordsManagedElsewhere()
