"""Self sign-up with admin approval (nativeauthenticator.NativeAuthenticator's keys).

People sign up with a name and password; the request waits (`pending`) until an admin
approves or refuses it in the admin panel or through `/hub/api/signups`. Requests live in
the `signups` table, apart from hub users: a pending or refused name never gets a session,
a server or a Unix account. Approval makes the hub user. Names in `users.admin` or
`users.allowed` (and everyone, with `open_signup`) are approved at sign-up.
"""

import logging
import time
from typing import Any

from .. import timeutil, users
from .base import Authenticator, LoginRefused
from .passwords import DUMMY_HASH, PasswordRules, hash_async, verify_async

log = logging.getLogger(__name__)

STATUSES = ("pending", "approved", "refused")

PENDING = (
    "Your sign-up is waiting for an administrator's approval. You can sign in once an "
    "administrator of this hub has approved it; ask them if it takes long."
)
REFUSED = (
    "An administrator of this hub refused your sign-up, so this account cannot sign in. "
    "If you think this is a mistake, ask the hub's administrator."
)


class SignupRefused(Exception):
    """Why a sign-up cannot be taken; shown on the sign-up page."""


class SignupNotFound(LookupError):
    pass


class NativeAuthenticator(Authenticator):
    """Passwords chosen at sign-up, bcrypt-hashed; an admin approves who may sign in."""

    short_name = "native"
    class_names = ("nativeauthenticator.NativeAuthenticator",)
    section = "NativeAuthenticator"
    DEFAULTS: dict[str, Any] = {
        "enable_signup": True,
        "open_signup": False,
        "minimum_password_length": 8,
        "check_common_password": True,
        "ask_email_on_signup": False,
        "allowed_failed_logins": 0,
        "seconds_before_next_try": 600,
    }
    SCHEMA: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enable_signup": {"type": "boolean"},
            "open_signup": {"type": "boolean"},
            "minimum_password_length": {"type": "integer", "minimum": 1, "maximum": 72},
            "check_common_password": {"type": "boolean"},
            "ask_email_on_signup": {"type": "boolean"},
            "allowed_failed_logins": {"type": "integer", "minimum": 0},
            "seconds_before_next_try": {"type": "integer", "minimum": 1},
        },
    }
    can_change_password = True
    can_reset_password = True
    pages = ("signup",)  # the sign-up pages and API (backend_routes.py)

    def __init__(self, auth_settings, db):
        super().__init__(auth_settings, db)
        self.rules = PasswordRules(self.settings["minimum_password_length"],
                                   self.settings["check_common_password"])
        self._locked = {}  # name -> (failures, locked until (monotonic))

    @property
    def signup_url(self):
        """Linked from the login page while sign-up is open."""
        return self.url("/hub/signup") if self.settings["enable_signup"] else None

    def check_allowed(self, name):
        # Approval is the gate: users.allowed only pre-approves sign-ups.
        return name not in self.banned

    def pre_approved(self, name):
        return self.settings["open_signup"] or name in self.admins or name in self.allowed

    # -- sign-up ----------------------------------------------------------------------------

    async def signup(self, name, password, confirm, email=""):
        """Record a sign-up; returns its status ('approved' or 'pending')."""
        if not self.settings["enable_signup"]:
            raise SignupRefused("Sign-up is closed on this hub. Ask its administrator for an account.")
        try:
            name = users.normalize_name(name)
            if await self.db.run(users.user_model_row, name) is None:
                users.check_new_name(name)
        except users.InvalidName as e:
            raise SignupRefused(f"That user name cannot be used: {e}.") from None
        if "," in name or len(name) > 100:
            raise SignupRefused("That user name cannot be used: no commas, at most 100 characters.")
        if not self.check_allowed(name):
            log.warning("Sign-up refused for %s: the name is in users.banned", name)
            raise SignupRefused("This user name cannot sign up here. Ask the hub's administrator.")
        if password != confirm:
            raise SignupRefused("The two passwords differ.")
        problem = self.rules.problem(name, password)
        if problem:
            raise SignupRefused(problem)
        email = (email or "").strip() if self.settings["ask_email_on_signup"] else ""
        if self.settings["ask_email_on_signup"] and ("@" not in email or len(email) > 254 or " " in email):
            raise SignupRefused("Please give a valid email address.")
        if await self.db.run(self._taken, name):
            raise SignupRefused("This user name is already taken. Choose another one.")
        hashed = await hash_async(password)
        status = "approved" if self.pre_approved(name) else "pending"

        def record(db):
            if self._taken(db, name):  # someone took it while the password was hashed
                raise SignupRefused("This user name is already taken. Choose another one.")
            db.execute(
                "INSERT INTO signups (name, password_hash, status, email, created) VALUES (?, ?, ?, ?, ?)",
                (name, hashed, status, email or None, timeutil.isoformat(timeutil.now())))
            if status == "approved":
                users.ensure_user(db, name, admin=name in self.admins)

        await self.db.transaction(record)
        log.info("Sign-up of %s: %s", name, status)
        return status

    @staticmethod
    def _taken(db, name):
        """A name is taken by a sign-up, or by a hub user that has one (an admin-made user
        with no sign-up yet may still sign up to choose a password; it then needs approval)."""
        return db.one("SELECT 1 FROM signups WHERE name=?", (name,)) is not None

    # -- admin decisions ------------------------------------------------------------------

    async def list_signups(self, status=None):
        sql = "SELECT name, status, email, created, decided, decided_by FROM signups"
        params: tuple[str, ...] = ()
        if status:
            sql, params = sql + " WHERE status=?", (status,)
        return [dict(r) for r in await self.db.all(sql + " ORDER BY created, name", params)]

    async def decide(self, name, status, by):
        """Approve or refuse a sign-up (again, if the admin changes their mind)."""
        assert status in ("approved", "refused")

        def record(db):
            row = db.one("SELECT status FROM signups WHERE name=?", (name,))
            if row is None:
                raise SignupNotFound(name)
            if row["status"] == "approved" and status == "refused":
                raise SignupRefused(f"{name} is already an approved user: delete the user instead")
            db.execute("UPDATE signups SET status=?, decided=?, decided_by=? WHERE name=?",
                       (status, timeutil.isoformat(timeutil.now()), by, name))
            if status == "approved":
                users.ensure_user(db, name, admin=name in self.admins)

        await self.db.transaction(record)
        log.info("Sign-up of %s %s by %s", name, status, by)
        return await self.signup_model(name)

    async def discard(self, name):
        """Forget a sign-up (not an approved one: delete that user instead)."""
        row = await self.db.one("SELECT status FROM signups WHERE name=?", (name,))
        if row is None:
            raise SignupNotFound(name)
        if row["status"] == "approved":
            raise SignupRefused(f"{name} is an approved user: delete the user instead")
        await self.db.execute("DELETE FROM signups WHERE name=?", (name,))

    async def signup_model(self, name):
        row = await self.db.one("SELECT name, status, email, created, decided, decided_by FROM signups WHERE name=?",
                          (name,))
        return dict(row) if row else None

    # -- login and passwords ----------------------------------------------------------------

    def _lock_remaining(self, name):
        failures, until = self._locked.get(name, (0, 0))
        return max(0, until - time.monotonic())

    def _failed(self, name):
        limit = self.settings["allowed_failed_logins"]
        if not limit:
            return
        failures = self._locked.get(name, (0, 0))[0] + 1
        until = time.monotonic() + self.settings["seconds_before_next_try"] if failures >= limit else 0
        self._locked[name] = (0 if until else failures, until)
        if until:
            log.warning("Login of %s blocked for %ss after %d failed attempts", name,
                        self.settings["seconds_before_next_try"], limit)

    async def check_password(self, name, password):
        remaining = self._lock_remaining(name)
        if remaining:
            raise LoginRefused(f"Too many failed sign-in attempts. Try again in {int(remaining // 60) + 1} minute(s).")
        row = await self.db.one("SELECT password_hash, status FROM signups WHERE name=?", (name,))
        ok = await verify_async(password, row["password_hash"] if row else DUMMY_HASH)
        if not ok or row is None:
            self._failed(name)
            return False
        self._locked.pop(name, None)
        if row["status"] == "pending":
            log.warning("Login refused for %s: the sign-up is still pending", name)
            raise LoginRefused(PENDING)
        if row["status"] == "refused":
            log.warning("Login refused for %s: the sign-up was refused", name)
            raise LoginRefused(REFUSED)
        return True

    async def change_password(self, name, old, new):
        row = await self.db.one("SELECT password_hash FROM signups WHERE name=? AND status='approved'", (name,))
        if row is None or not await verify_async(old, row["password_hash"]):
            raise LoginRefused("The current password is not right")
        await self.set_password(name, new)

    async def set_password(self, name, password):
        problem = self.rules.problem(name, password)
        if problem:
            raise LoginRefused(problem)
        hashed = await hash_async(password)
        changed = (await self.db.execute("UPDATE signups SET password_hash=? WHERE name=?", (hashed, name))).rowcount
        if not changed:
            # An admin-made user with no sign-up: setting a password approves them.
            await self.db.execute(
                "INSERT INTO signups (name, password_hash, status, created, decided) VALUES (?, ?, 'approved', ?, ?)",
                (name, hashed, *(timeutil.isoformat(timeutil.now()),) * 2))

    async def reset_password(self, name):
        raise LoginRefused("Type the new password: with sign-up, the hub cannot let the next login choose one.")


def signups_of(auth):
    """`auth` if it is a NativeAuthenticator (the sign-up pages and API need one); else 404."""
    from aiohttp import web

    if not isinstance(auth, NativeAuthenticator):
        raise web.HTTPNotFound(text="Sign-up is not in use on this hub (auth.type is not NativeAuthenticator)")
    return auth
