"""Workshop accounts (tmpauthenticator.TmpAuthenticator's keys).

Every visit to the login URL makes a fresh user with a random name and starts its server,
with no password. Such users are marked `temporary`: when the idle culler stops their
server, the hub user and its Unix account (with its files) are removed, and the next visit
from the same browser gets a new user.
"""

import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from .. import timeutil
from .base import Authenticator, LoginRefused

log = logging.getLogger(__name__)

PREFIX = "tmp-"

NOTICE = (
    "This is a temporary account for this workshop. It and its files are deleted once your "
    "server has been idle for a while: download anything you want to keep."
)


class TmpAuthenticator(Authenticator):
    """No passwords: a visit to /hub/tmplogin is a new temporary user."""

    short_name = "tmp"
    class_names = ("tmpauthenticator.TmpAuthenticator",)
    section = "TmpAuthenticator"
    DEFAULTS: dict[str, Any] = {"auto_login": True, "login_service": "Automatic Temporary Credentials"}
    SCHEMA: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "auto_login": {"type": "boolean"},
            "login_service": {"type": "string", "minLength": 1},
        },
    }
    password_form = False
    temporary_notice = NOTICE

    def __init__(self, auth_settings, db):
        super().__init__(auth_settings, db)
        log.warning("auth.type is 'tmp': anyone who can reach this hub gets a temporary account and a server")
        if not auth_settings.cull_enabled:
            log.warning("services.cull.enabled is false: temporary users and their files are never removed")

    @property
    def login_service(self):
        return self.settings["login_service"]

    def login_url(self, next_url):
        return self.url("/hub/tmplogin") + (f"?{urlencode({'next': next_url})}" if next_url else "")

    def routes(self):
        from ..handlers import tmplogin

        return tmplogin.routes

    async def check_password(self, name, password):
        raise LoginRefused("This hub gives temporary accounts: use the button, no password is needed.")

    def new_user(self):
        """Create a temporary hub user with a fresh random name (10 hex digits, so its Unix
        account `jupyter-tmp-<hex>` stays short enough to keep TLJH's readable shape)."""
        while True:
            name = PREFIX + secrets.token_hex(5)
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO users (name, admin, created, temporary) VALUES (?, 0, ?, 1)",
                (name, timeutil.isoformat(timeutil.now())),
            ).rowcount
            if inserted:
                log.info("New temporary user %s", name)
                return name
