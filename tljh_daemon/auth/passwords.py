"""Password hashing (bcrypt, off the event loop) and the rules a new password must pass."""

import asyncio
import functools
import os

import bcrypt

#: bcrypt reads only this many bytes; longer passwords are refused rather than silently cut
MAX_BYTES = 72
COMMON_PASSWORDS_FILE = os.path.join(os.path.dirname(__file__), "data", "common-passwords.txt")


def hash_password(password):
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def verify_password(password, hashed):
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        return False  # bcrypt refuses to look at it (and no such password was ever stored)
    return bcrypt.checkpw(encoded, hashed.encode("ascii"))


async def hash_async(password):
    return await asyncio.to_thread(hash_password, password)


async def verify_async(password, hashed):
    return await asyncio.to_thread(verify_password, password, hashed)


# A bcrypt hash of a random password: verified against when a name is unknown, so a wrong
# name takes as long as a wrong password and timing does not tell which names exist.
DUMMY_HASH = hash_password(os.urandom(16).hex())


@functools.lru_cache(maxsize=1)
def common_passwords():
    """The bundled list of passwords too common to allow (lowercase), read once."""
    with open(COMMON_PASSWORDS_FILE, encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


class PasswordRules:
    """NativeAuthenticator's `minimum_password_length` and `check_common_password`."""

    def __init__(self, minimum_length, check_common):
        self.minimum_length = minimum_length
        self.check_common = check_common

    def problem(self, name, password):
        """Why `password` cannot be used by `name`, or None when it is fine."""
        if len(password) < self.minimum_length:
            return f"The password must be at least {self.minimum_length} characters long."
        if len(password.encode("utf-8")) > MAX_BYTES:
            return f"The password must be at most {MAX_BYTES} bytes long."
        if self.check_common:
            lowered = password.lower()
            if lowered in common_passwords():
                return "This password is too common: choose one that is harder to guess."
            if name and (lowered == name.lower() or lowered in (name.lower() * 2, name.lower()[::-1])):
                return "The password must not be your user name."
        return None
