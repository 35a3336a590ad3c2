"""PAM: the hub user is the Unix user of the same name."""

import asyncio
import pwd

import pamela

from .base import Authenticator


class PAMAuthenticator(Authenticator):
    short_name = "pam"
    class_names = ("jupyterhub.auth.PAMAuthenticator",)
    service = "login"
    creates_accounts = False

    def system_username(self, name):
        return name

    def _check(self, name, password):
        try:
            pwd.getpwnam(name)
            pamela.authenticate(name, password, service=self.service)
            pamela.check_account(name, service=self.service)
        except (KeyError, pamela.PAMError):
            return False
        return True

    async def check_password(self, name, password):
        return await asyncio.to_thread(self._check, name, password)
