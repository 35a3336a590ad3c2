"""Workshop accounts (tmpauthenticator.TmpAuthenticator's keys).

Every visit to the login URL makes a fresh user with a random name and starts its server,
with no password. Such users are marked `temporary`: when the idle culler stops their
server, the hub user and its Unix account (with its files) are removed, and the next visit
from the same browser gets a new user.
"""

import logging
import math
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import limits
import limits.storage
import limits.strategies

from .. import timeutil
from .base import Authenticator, LoginRefused

log = logging.getLogger(__name__)

PREFIX = "tmp-"

NOTICE = (
    "This is a temporary account for this workshop. It and its files are deleted once your "
    "server has been idle for a while: download anything you want to keep."
)


class WorkshopBusy(Exception):
    """No new workshop user now: `status` 429 (this client made too many) or 503 (full)."""

    def __init__(self, status, message, retry_after):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class TmpAuthenticator(Authenticator):
    """No passwords: a visit to /hub/tmplogin is a new temporary user."""

    short_name = "tmp"
    class_names = ("tmpauthenticator.TmpAuthenticator",)
    pages = ("tmplogin",)  # the page that makes a temporary user (backend_routes.py)
    section = "TmpAuthenticator"
    DEFAULTS: dict[str, Any] = {"auto_login": True, "login_service": "Automatic Temporary Credentials",
                                "max_users": 200, "rate_per_client": "60/minute"}
    SCHEMA: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "auto_login": {"type": "boolean"},
            "login_service": {"type": "string", "minLength": 1},
            # ours, not TmpAuthenticator's: live workshop users at most (0: no cap), and new
            # ones per client address (limits' notation: "60/minute", "10 per 10 seconds")
            "max_users": {"type": "integer", "minimum": 0},
            "rate_per_client": {"type": "string", "minLength": 1},
        },
    }
    password_form = False
    temporary_notice = NOTICE

    @classmethod
    def check_settings(cls, settings):
        try:
            limits.parse(settings.get("rate_per_client", cls.DEFAULTS["rate_per_client"]))
        except ValueError:
            return ("rate_per_client", "must be a rate such as '60/minute' or '10 per 10 seconds'")
        return None

    def __init__(self, auth_settings, db):
        super().__init__(auth_settings, db)
        self.login_service = self.settings["login_service"]
        self.rate = limits.parse(self.settings["rate_per_client"])
        self.rate_limiter = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
        log.warning("auth.type is 'tmp': anyone who can reach this hub gets a temporary account and a server")
        if not auth_settings.cull_enabled:
            log.warning("services.cull.enabled is false: temporary users and their files are never removed")

    def login_url(self, next_url):
        return self.url("/hub/tmplogin") + (f"?{urlencode({'next': next_url})}" if next_url else "")

    async def check_password(self, name, password):
        raise LoginRefused("This hub gives temporary accounts: use the button, no password is needed.")

    async def new_user(self, address=""):
        """Create a temporary hub user with a fresh random name (10 hex digits, so its Unix
        account `jupyter-tmp-<hex>` stays short enough to keep TLJH's readable shape).

        Raises WorkshopBusy when client `address` made too many lately or the workshop is
        full (`max_users` live temporary users: counted in the same statement that inserts)."""
        if not self.rate_limiter.hit(self.rate, address):
            reset = self.rate_limiter.get_window_stats(self.rate, address).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            log.warning("Workshop: refused a new user for %s (over %s)", address or "?", self.settings["rate_per_client"])
            raise WorkshopBusy(429, f"Too many new workshop accounts from your network just now. "
                                    f"Please try again in {wait} seconds.", wait)
        cap = self.settings["max_users"] or -1
        while True:
            name = PREFIX + secrets.token_hex(5)
            inserted = (await self.db.execute(
                "INSERT OR IGNORE INTO users (name, admin, created, temporary) SELECT ?, 0, ?, 1 "
                "WHERE ? < 0 OR (SELECT COUNT(*) FROM users WHERE temporary=1) < ?",
                (name, timeutil.isoformat(timeutil.now()), cap, cap),
            )).rowcount
            if inserted:
                log.info("New temporary user %s", name)
                return name
            if await self.db.one("SELECT 1 FROM users WHERE name=?", (name,)) is None:
                log.warning("Workshop full: %s temporary users (auth.TmpAuthenticator.max_users)", cap)
                raise WorkshopBusy(503, f"This workshop is full: all {cap} places are taken. Places free up "
                                        f"when idle workshop accounts are removed; please try again in a few "
                                        f"minutes.", 60)
