"""The small interface every authenticator implements."""

import asyncio
import logging
import time

from ..users import InvalidName, normalize_name, system_username

log = logging.getLogger(__name__)


class LoginRefused(Exception):
    """Shown to the user on the login page (never says which part was wrong)."""


class FailedLoginThrottle:
    """Slow down repeated failures for one name: the 3rd failure on waits 1 s, then 2, 4 ... 16 s."""

    free_failures = 2
    max_delay = 16
    forget_after = 15 * 60

    def __init__(self):
        self._failures = {}

    def delay(self, name):
        count, last = self._failures.get(name, (0, 0))
        if time.monotonic() - last > self.forget_after:
            self._failures.pop(name, None)
            return 0
        extra = count - self.free_failures
        return 0 if extra < 0 else min(2**extra, self.max_delay)

    def failed(self, name):
        count, _ = self._failures.get(name, (0, 0))
        self._failures[name] = (count + 1, time.monotonic())

    def succeeded(self, name):
        self._failures.pop(name, None)


class Authenticator:
    """Checks a name and password; knows which Unix account a hub user runs as."""

    #: shown on the login page
    login_hint = ""
    #: whether a missing Unix account is created on first spawn
    creates_accounts = True

    def __init__(self, config, db):
        self.config = config
        self.db = db
        self.throttle = FailedLoginThrottle()

    @property
    def admins(self):
        return {normalize_name(n) for n in self.config["users"]["admin"]}

    def check_allowed(self, name):
        users = self.config["users"]
        if name in {normalize_name(n) for n in users["banned"]}:
            return False
        allowed = {normalize_name(n) for n in users["allowed"]}
        if allowed and name not in allowed | self.admins:
            return False
        return True

    def system_username(self, name):
        """The Unix account a user's server runs as."""
        return system_username(name)

    async def check_password(self, name, password):
        """True (or the user's hub name, when the provider renames) when `password` is right
        for `name`. Runs blocking work in a thread; may raise LoginRefused with a specific reason."""
        raise NotImplementedError

    async def login(self, name, password):
        """The normalized name on success; raise LoginRefused otherwise."""
        try:
            name = normalize_name(name)
        except InvalidName as e:
            raise LoginRefused(str(e)) from None
        delay = self.throttle.delay(name)
        if delay:
            log.warning("Slowing down login for %s by %ss after failed attempts", name, delay)
            await asyncio.sleep(delay)
        if not self.check_allowed(name) or not password:
            ok = False
        else:
            ok = await self.check_password(name, password)
        if not ok:
            self.throttle.failed(name)
            log.warning("Failed login for %s", name)
            raise LoginRefused("Invalid username or password")
        self.throttle.succeeded(name)
        return ok if isinstance(ok, str) else name
