"""First use: the first login of an allowed name sets its password (bcrypt-hashed).

Simultaneous first logins race for the name: the password is claimed with one
conditional UPDATE (only while no password is stored), so exactly one wins and
the others are checked against the winner's password like any later login.
"""

import asyncio

from .. import login_switch, users
from .base import Authenticator, LoginRefused
from .passwords import MAX_BYTES, hash_password, verify_password

__all__ = ["FirstUseAuthenticator", "hash_password", "verify_password"]


class FirstUseAuthenticator(Authenticator):
    short_name = "firstuse"
    class_names = ("firstuseauthenticator.FirstUseAuthenticator",)
    section = "FirstUseAuthenticator"
    DEFAULTS = {"min_password_length": 6}
    SCHEMA = {"type": "object", "properties": {"min_password_length": {"type": "integer", "minimum": 1}}}
    login_hint = "First time here? The password you enter now becomes your password."
    can_change_password = True
    can_reset_password = True

    @property
    def min_length(self):
        return self.settings["min_password_length"]

    def _check_length(self, password):
        if len(password) < self.min_length:
            raise LoginRefused(f"Passwords must be at least {self.min_length} characters long")
        if len(password.encode("utf-8")) > MAX_BYTES:
            raise LoginRefused(f"Passwords must be at most {MAX_BYTES} bytes long")

    async def check_password(self, name, password):
        row = await self.db.run(users.user_model_row, name)
        refusal = login_switch.refusal(row, "firstuse")
        if refusal is not None:  # an account another sign-in method made: never claimed by typing its name
            raise LoginRefused(refusal)
        if row is None:
            try:
                users.check_new_name(name)
            except users.InvalidName as e:
                raise LoginRefused(f"That user name cannot be used: {e}") from None
        if row is None or row["password_hash"] is None:
            self._check_length(password)
            hashed = await asyncio.to_thread(hash_password, password)
            if await self.db.transaction(self._claim, name, hashed):
                return True
            row = await self.db.run(users.user_model_row, name)  # another login claimed it first
            if row is None or row["password_hash"] is None:
                return False
        return await asyncio.to_thread(verify_password, password, row["password_hash"])

    def _claim(self, db, name, hashed):
        """(In a transaction.) Store `hashed` as the password of `name` only if it has none; True if
        this call won."""
        users.ensure_user(db, name, admin=name in self.admins)
        claimed = db.execute(
            "UPDATE users SET password_hash=?, login_type='firstuse' WHERE name=? AND password_hash IS NULL"
            f" AND {login_switch.claimable_by_firstuse_sql()}", (hashed, name)
        )
        return claimed.rowcount == 1

    async def set_password(self, name, password):
        self._check_length(password)
        hashed = await asyncio.to_thread(hash_password, password)
        await self.db.run(users.ensure_user, name, admin=name in self.admins)
        await self.db.execute("UPDATE users SET password_hash=?, login_type='firstuse' WHERE name=?", (hashed, name))

    async def change_password(self, name, old, new):
        row = await self.db.run(users.user_model_row, name)
        if row is None or row["password_hash"] is None or not await asyncio.to_thread(
            verify_password, old, row["password_hash"]
        ):
            raise LoginRefused("The current password is not right")
        await self.set_password(name, new)

    async def reset_password(self, name):
        """Admin action: the next login of `name` sets a new password (also for an account another
        sign-in method made: the admin hands it over to first use)."""
        await self.db.execute("UPDATE users SET password_hash=NULL, login_type='firstuse' WHERE name=?", (name,))
