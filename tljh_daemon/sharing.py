"""Sharing a server, as JupyterHub 5 does: shares and share codes (storage and rules).

A share gives one user or one group some scopes on one server of its owner (by default
`access:servers!server=<owner>/<server>`: opening it through Traefik with their own identity).
The receiver holds those scopes for as long as the share exists: they are added to the scopes
their roles give (roles.py), at each request, so a revoked share stops new logins and new tokens
at once. A share code is a secret link that turns into a share for whoever accepts it.

The functions taking `db` first run on the database thread (`await db.run(fn, ...)`).
"""

from __future__ import annotations

import json
import re
import secrets
import time

from . import groups, scopes, timeutil, tokens

#: JupyterHub's bounds for a share code's lifetime (seconds), and its default
CODE_MIN_EXPIRES, CODE_MAX_EXPIRES, CODE_DEFAULT_EXPIRES = 60, 525600 * 60, 86400
#: a share code's public id (`sc_<n>`), as JupyterHub shows it
CODE_ID = re.compile(r"^sc_(\d+)$")
#: the prefix of the codes themselves (JupyterHub's `sc_` + random)
CODE_PREFIX = "sc_"


class ShareError(ValueError):
    """A share request that cannot be granted (the API answers 400 with the message)."""


def default_scopes(owner, server):
    return [f"access:servers!server={owner}/{server}"]


def filtered(requested, owner, server):
    """`requested` (or the default) filtered to the one server, sorted; ShareError for scopes
    that are unknown or filtered to anything else (JupyterHub's rule)."""
    if not requested:
        return default_scopes(owner, server)
    want = f"server={owner}/{server}"
    result = set()
    for scope in requested:
        if not isinstance(scope, str):
            raise ShareError(f"scopes must be strings, not {scope!r}")
        base, sep, flt = scope.partition("!")
        if base not in scopes.KNOWN or base in ("self", "inherit"):
            raise ShareError(f"Unknown scope for a share: {scope!r}")
        if sep and flt != want:
            raise ShareError(f"!{flt} is not allowed on the sharing scope {scope!r}, only !{want}")
        result.add(f"{base}!{want}")
    return sorted(result)


def follow_rename(db, owner, server, new_name):
    """(In the rename's transaction.) The shares and share codes of `owner`'s server `server`
    move to `new_name`, their scopes' `!server=` filters with them."""
    old, new = f"!server={owner}/{server}", f"!server={owner}/{new_name}"
    for table in ("shares", "share_codes"):
        for row in db.all(f"SELECT id, scopes FROM {table} WHERE owner=? AND server=?", (owner, server)):
            moved = sorted(s[:-len(old)] + new if s.endswith(old) else s for s in json.loads(row["scopes"]))
            db.execute(f"UPDATE {table} SET server=?, scopes=? WHERE id=?", (new_name, json.dumps(moved), row["id"]))


def server_exists(db, owner, server):
    """Does `owner` exist with a server called `server` (the default one always exists)?"""
    if db.one("SELECT 1 FROM users WHERE name=?", (owner,)) is None:
        return False
    return server == "" or db.one("SELECT 1 FROM servers WHERE user=? AND name=?", (owner, server)) is not None


def held_by(db, user):
    """The scopes `user` holds through shares (theirs and their groups')."""
    rows = db.all(
        "SELECT scopes FROM shares WHERE user=? OR group_name IN"
        " (SELECT group_name FROM group_members WHERE user=?)", (user, user))
    return {scope for row in rows for scope in json.loads(row["scopes"])}


def _share_where(owner, server, user=None, group=None):
    if user is not None:
        return "owner=? AND server=? AND user=?", (owner, server, user)
    return "owner=? AND server=? AND group_name=?", (owner, server, group)


def find(db, owner, server, *, user=None, group=None):
    where, params = _share_where(owner, server, user, group)
    return db.one(f"SELECT * FROM shares WHERE {where}", params)


def grant(db, owner, server, granted, *, user=None, group=None):
    """(In a transaction.) Add `granted` to the share of `owner/server` with `user` or
    `group` (made if missing); the share's row."""
    row = find(db, owner, server, user=user, group=group)
    if row is None:
        db.execute("INSERT INTO shares (owner, server, user, group_name, scopes, created) VALUES (?, ?, ?, ?, ?, ?)",
                   (owner, server, user, group, json.dumps(sorted(set(granted))), timeutil.isoformat(timeutil.now())))
    else:
        merged = sorted(set(json.loads(row["scopes"])) | set(granted))
        db.execute("UPDATE shares SET scopes=? WHERE id=?", (json.dumps(merged), row["id"]))
    return find(db, owner, server, user=user, group=group)


def revoke(db, owner, server, revoked=None, *, user=None, group=None):
    """(In a transaction.) Take `revoked` (all when None) from the share; the row left, or None
    when no scope remains (the share is deleted)."""
    row = find(db, owner, server, user=user, group=group)
    if row is None:
        return None
    remaining = [] if revoked is None else sorted(set(json.loads(row["scopes"])) - set(revoked))
    if not remaining:
        db.execute("DELETE FROM shares WHERE id=?", (row["id"],))
        return None
    db.execute("UPDATE shares SET scopes=? WHERE id=?", (json.dumps(remaining), row["id"]))
    return find(db, owner, server, user=user, group=group)


def shares_of_owner(db, owner, server=None, offset=0, limit=None):
    """(rows, total) of the shares of `owner`'s servers (or of one), oldest first."""
    where, params = ("owner=?", (owner,)) if server is None else ("owner=? AND server=?", (owner, server))
    return _page(db, "shares", where, params, offset, limit)


def shares_with_user(db, user, offset=0, limit=None):
    """(rows, total) of the shares giving `user` (or one of their groups) access."""
    names = groups.names_of_user(db, user)
    marks = ",".join("?" * len(names))
    where = f"user=? OR group_name IN ({marks})" if names else "user=?"
    return _page(db, "shares", where, (user, *names), offset, limit)


def shares_with_group(db, group, offset=0, limit=None):
    return _page(db, "shares", "group_name=?", (group,), offset, limit)


def _page(db, table, where, params, offset, limit):
    """(rows, total) of `table` (shares, or share_codes not expired) matching `where`, oldest first."""
    if table == "share_codes":
        where, params = f"({where}) AND expires_at > ?", (*params, time.time())
    total = db.one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)["n"]
    rows = db.all(f"SELECT * FROM {table} WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                  (*params, -1 if limit is None else limit, offset))
    return rows, total


def new_code(db, owner, server, granted, expires_in):
    """(row, code) of a new share code; the code itself is shown once and stored hashed."""
    code = CODE_PREFIX + secrets.token_urlsafe(24)
    db.execute("DELETE FROM share_codes WHERE expires_at <= ?", (time.time(),))  # expired ones go here
    cursor = db.execute(
        "INSERT INTO share_codes (owner, server, hash, scopes, created, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (owner, server, tokens.hash_token(code), json.dumps(granted), timeutil.isoformat(timeutil.now()),
         time.time() + expires_in))
    return db.one("SELECT * FROM share_codes WHERE id=?", (cursor.lastrowid,)), code


def codes_of_owner(db, owner, server=None, offset=0, limit=None):
    where, params = ("owner=?", (owner,)) if server is None else ("owner=? AND server=?", (owner, server))
    return _page(db, "share_codes", where, params, offset, limit)


def find_code(db, code):
    """The unexpired share code row for the secret `code`, or None."""
    return db.one("SELECT * FROM share_codes WHERE hash=? AND expires_at > ?", (tokens.hash_token(code), time.time()))


def delete_codes(db, owner, server, *, code=None, code_id=None):
    """Delete one code (by its secret or its `sc_<n>` id) or all of a server's; how many went."""
    if code is not None:
        where, params = "hash=?", (tokens.hash_token(code),)
    elif code_id is not None:
        match = CODE_ID.match(code_id)
        if not match:
            return 0
        where, params = "id=?", (int(match.group(1)),)
    else:
        where, params = "1", ()
    return db.execute(f"DELETE FROM share_codes WHERE owner=? AND server=? AND {where}",
                      (owner, server, *params)).rowcount


def accept_code(db, code, user):
    """(In a transaction.) Exchange `code` for a share with `user`: the share row, or a
    ShareError saying why not."""
    row = find_code(db, code)
    if row is None:
        raise ShareError("This share code is unknown or has expired")
    if row["owner"] == user:
        raise ShareError("This is a share code for your own server")
    db.execute("UPDATE share_codes SET exchange_count = exchange_count + 1, last_exchanged=? WHERE id=?",
               (timeutil.isoformat(timeutil.now()), row["id"]))
    return grant(db, row["owner"], row["server"], json.loads(row["scopes"]), user=user), row

