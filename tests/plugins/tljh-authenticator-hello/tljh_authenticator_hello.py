"""A third-party authenticator: names that start with `prefix` log in with the shared password."""

import hmac

from tljh_daemon.auth import Authenticator


class HelloAuthenticator(Authenticator):
    short_name = "hello"  # the entry point's name: `auth.type: hello`
    section = "HelloAuthenticator"  # its settings: auth.HelloAuthenticator.*
    DEFAULTS = {"prefix": "hello-", "password": None}
    SCHEMA = {"type": "object", "additionalProperties": False,
              "properties": {"prefix": {"type": "string"}, "password": {"type": ["string", "null"]}}}
    login_hint = "Say hello"

    async def check_password(self, name, password):
        expected = self.settings["password"]
        return (name.startswith(self.settings["prefix"]) and expected is not None
                and hmac.compare_digest(password.encode(), expected.encode()))
