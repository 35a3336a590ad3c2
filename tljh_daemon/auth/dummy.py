"""Any name logs in (with the shared password when one is set). For demos and tests."""

import hmac
import logging

from .base import Authenticator

log = logging.getLogger(__name__)


class DummyAuthenticator(Authenticator):
    short_name = "dummy"
    class_names = ("jupyterhub.auth.DummyAuthenticator", "dummyauthenticator.DummyAuthenticator")
    section = "DummyAuthenticator"
    DEFAULTS = {"password": None}
    SCHEMA = {"type": "object", "additionalProperties": False,
              "properties": {"password": {"type": ["string", "null"]}}}

    def __init__(self, auth_settings, db):
        super().__init__(auth_settings, db)
        self.password = self.settings["password"]
        log.warning(
            "!!! auth.type is 'dummy': ANY user name can log in%s. Use it only for demos and tests. !!!",
            " with the shared password" if self.password else " WITH ANY PASSWORD",
        )

    async def check_password(self, name, password):
        if self.password is None:
            return True
        return hmac.compare_digest(password.encode(), self.password.encode())
