"""API tokens: random secrets stored as a SHA-256 hash (one round: they are random,
so slow hashing buys nothing) with a short prefix kept for display."""

import hashlib
import json
import secrets
import time

from . import timeutil


def new_secret():
    return secrets.token_hex(32)


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create(db, user, kind, scopes, *, client_id=None, note=None, expires_in=None, token=None):
    """Store a new token for `user` and return its secret (shown once, never stored)."""
    token = token or new_secret()
    db.execute(
        "INSERT INTO api_tokens (prefix, hash, user, kind, client_id, scopes, note, created, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token[:4],
            hash_token(token),
            user,
            kind,
            client_id,
            json.dumps(sorted(scopes)),
            note,
            timeutil.isoformat(timeutil.now()),
            time.time() + expires_in if expires_in else None,
        ),
    )
    return token


def lookup(db, token):
    """The live token row for a secret, or None (unknown or expired)."""
    if not token:
        return None
    row = db.one("SELECT * FROM api_tokens WHERE hash=?", (hash_token(token),))
    if row is None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= time.time():
        db.execute("DELETE FROM api_tokens WHERE id=?", (row["id"],))
        return None
    return row


def scopes_of(row):
    return set(json.loads(row["scopes"]))


def revoke(db, *, user, kind=None, client_id=None):
    sql, params = "DELETE FROM api_tokens WHERE user=?", [user]
    if kind:
        sql += " AND kind=?"
        params.append(kind)
    if client_id:
        sql += " AND client_id=?"
        params.append(client_id)
    db.execute(sql, params)
