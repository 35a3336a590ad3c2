"""Hub login sessions: a random id in a signed, HttpOnly cookie scoped to /hub/
(under base_url).

The cookie is signed with a secret kept in the state directory (0600), and
only the id's hash is stored, so a copy of the database logs nobody in.
"""

import secrets
import time
import uuid

from itsdangerous import BadSignature, URLSafeSerializer

from . import tokens
from .files import read_or_create_secret

COOKIE_NAME = "jupyterhub-hub-login"
MAX_AGE = 14 * 24 * 3600
# JupyterHub's browser-session id: set at login on the hub's base_url (so user servers see it),
# cleared at logout. jupyterhub-singleuser derives its XSRF token id from it; without it, from
# the client's address and User-Agent, so a client whose address changes gets 403s.
SESSION_ID_COOKIE = "jupyterhub-session-id"


def load_or_create_secret(path):
    return read_or_create_secret(path, lambda: secrets.token_bytes(32))


class SessionStore:
    def __init__(self, db, secret):
        self.db = db
        self.signer = URLSafeSerializer(secret, salt="tljh-hub-login")

    async def create(self, user):
        """A new session for `user`; returns the signed cookie value."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        await self.db.execute(
            "INSERT INTO sessions (hash, user, created, expires_at) VALUES (?, ?, ?, ?)",
            (tokens.hash_token(session_id), user, now, now + MAX_AGE),
        )
        return self.signer.dumps(session_id)

    async def user_for(self, cookie_value):
        """The user name behind a cookie value, or None."""
        if not cookie_value:
            return None
        try:
            session_id = self.signer.loads(cookie_value)
        except BadSignature:
            return None
        row = await self.db.one("SELECT user, expires_at FROM sessions WHERE hash=?", (tokens.hash_token(session_id),))
        if row is None or row["expires_at"] < time.time():
            return None
        return row["user"]

    async def delete(self, cookie_value):
        try:
            session_id = self.signer.loads(cookie_value)
        except BadSignature:
            return
        await self.db.execute("DELETE FROM sessions WHERE hash=?", (tokens.hash_token(session_id),))


def new_session_id():
    """A browser-session id as JupyterHub makes them (32 hex characters; not a secret)."""
    return uuid.uuid4().hex
