"""Changing `auth.type` without handing accounts to whoever types their names.

Each hub user records the login method its account belongs to (`users.login_type`: an
`auth.type` such as `generic`, `ldap`, `firstuse`): set at every sign-in, and by an admin's
password reset or set under `firstuse`. NULL means no method has claimed it yet (a user an
admin added, waiting for a first login).

Methods where a name is claimed by typing it (`firstuse`: the first password typed becomes
the password; `pam`: whoever holds the same-named Unix account) refuse a user whose account
belongs to another method, until an admin resets its password (`firstuse`) or deletes the
user (either; the home and Unix account stay). Providers that prove an identity
(OAuth/OpenID Connect, LDAP, ...) sign same-named people in to the existing account: that is
how a switch between them keeps users' homes, and what docs/admin-guide.md warns about.

When the daemon starts with another `auth.type` than last time, every login session and
every server login (OAuth token) ends: everyone signs in again with the new method.
"""

import logging

log = logging.getLogger(__name__)

#: methods where typing a name is enough to claim an account nobody has a password for
CLAIM_BY_NAME = ("firstuse", "pam")
STATE_KEY = "auth.type"
#: the owner recorded, on the first start that keeps login types, for an account no method can claim
EARLIER = "earlier"


def method_of(authenticator):
    """The `auth.type` an authenticator stands for (its class path when it has no short name)."""
    cls = type(authenticator)
    return authenticator.short_name or f"{cls.__module__}.{cls.__qualname__}"


def refusal(row, method):
    """Why `method` may not sign in the user of `row` (None: it may)."""
    if row is None or method not in CLAIM_BY_NAME:
        return None
    owner = row["login_type"]
    if owner is None or owner == method:
        return None
    how = ("an admin resets its password (admin panel) or deletes the user"
           if method == "firstuse" else "an admin deletes the user (its home directory stays)")
    made_by = "an earlier sign-in method" if owner == EARLIER else f"another sign-in method ({owner})"
    return f"The account {row['name']} was made by {made_by}. It can sign in here only after {how}."


def claimable_by_firstuse_sql():
    """SQL condition: a `firstuse` password may be claimed for the row."""
    return "(login_type IS NULL OR login_type = 'firstuse')"


def record(db, name, method):
    """`name` signed in with `method` (in the caller's transaction); returns the former method."""
    row = db.one("SELECT login_type FROM users WHERE name=?", (name,))
    former = row["login_type"] if row else None
    if former != method:
        db.execute("UPDATE users SET login_type=? WHERE name=?", (method, name))
    return former


def at_start(db, method):
    """On start-up: end every session if `auth.type` changed since the last start, and record
    for users from before login types were kept which method their account belongs to.
    Writes nothing when `auth.type` is the one of the last start."""
    row = db.one("SELECT value FROM hub_state WHERE key=?", (STATE_KEY,))
    former = row["value"] if row else None
    if former == method:
        return
    ended = None
    with db.transaction():
        if former is not None:
            ended = (db.execute("DELETE FROM sessions").rowcount,
                     db.execute("DELETE FROM api_tokens WHERE kind='oauth'").rowcount)
        else:
            # The first start that keeps login types. Users who have used the hub and have no
            # password the hub keeps belong to the method in use; under `firstuse` (where such
            # accounts can only come from an earlier method, or an admin's reset) to one we
            # cannot name, so an admin has to hand them over.
            db.execute(
                "UPDATE users SET login_type=? WHERE login_type IS NULL AND password_hash IS NULL AND ("
                " last_activity IS NOT NULL OR EXISTS (SELECT 1 FROM sessions s WHERE s.user = users.name)"
                " OR EXISTS (SELECT 1 FROM api_tokens t WHERE t.user = users.name))",
                (method if method != "firstuse" else EARLIER,),
            )
        db.execute("INSERT INTO hub_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET"
                   " value=excluded.value", (STATE_KEY, method))
    if ended:
        log.warning("auth.type changed from %s to %s: ended %d login sessions and %d server logins; "
                    "everyone signs in again", former, method, *ended)
