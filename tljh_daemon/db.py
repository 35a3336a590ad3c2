"""SQLite state (WAL) with a versioned schema.

The schema version lives in `PRAGMA user_version`; MIGRATIONS[i] takes a
database from version i to i+1. Append new migrations, never edit old ones.
"""

import os
import sqlite3
from contextlib import contextmanager
from functools import partial

from .db_thread import CallThread

# SQLite's primary result codes that blame the storage, not the statement, and what to tell people.
_STORAGE_FAULTS = {
    13: ("database or disk is full", "the disk holding its state is full"),
    10: ("disk I/O error", "the disk holding its state fails (I/O error)"),
    8: ("readonly database", "its state is on read-only storage"),
    14: ("unable to open database file", "its database file cannot be opened"),
}


class StorageError(Exception):
    """The database cannot be written (disk full, read-only or failing storage). `reason` is
    safe to show anyone; the exception's text adds SQLite's own words for the log."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason} ({detail})")
        self.reason = reason


def _storage_fault(error):
    code = getattr(error, "sqlite_errorcode", None)  # Python >= 3.11
    for primary, (words, reason) in _STORAGE_FAULTS.items():
        if (code is not None and code & 0xFF == primary) or (code is None and words in str(error)):
            return reason
    return None


@contextmanager
def _storage_errors():
    try:
        yield
    except sqlite3.OperationalError as e:
        reason = _storage_fault(e)
        if reason is None:
            raise
        raise StorageError(reason, str(e)) from e

MIGRATIONS = [
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        admin INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        last_activity TEXT,
        password_hash TEXT
    );
    CREATE TABLE servers (
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        name TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        port INTEGER,
        pid INTEGER,
        pid_create_time REAL,
        started TEXT,
        last_activity TEXT,
        message TEXT,
        PRIMARY KEY (user, name)
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        client_id TEXT,
        scopes TEXT NOT NULL,
        note TEXT,
        created TEXT NOT NULL,
        expires_at REAL,
        last_activity TEXT
    );
    CREATE INDEX api_tokens_user ON api_tokens(user);
    CREATE TABLE oauth_clients (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        description TEXT,
        access_scopes TEXT NOT NULL
    );
    CREATE TABLE oauth_codes (
        hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        redirect_uri TEXT NOT NULL,
        scopes TEXT NOT NULL,
        code_challenge TEXT,
        code_challenge_method TEXT,
        expires_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        created REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        properties TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE group_members (
        group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        PRIMARY KEY (group_name, user)
    );
    CREATE INDEX group_members_user ON group_members(user);
    """,
    # Self sign-up (NativeAuthenticator): requests live apart from `users`, so a pending or
    # refused name is never a hub user (no session, no server, no Unix account). Deleting an
    # approved hub user forgets their sign-up too, so the name can sign up afresh.
    # Workshop accounts (TmpAuthenticator) are marked `temporary`: culling removes them.
    """
    CREATE TABLE signups (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
        email TEXT,
        created TEXT NOT NULL,
        decided TEXT,
        decided_by TEXT
    );
    CREATE INDEX signups_status ON signups(status);
    CREATE TRIGGER signups_forget_deleted_users AFTER DELETE ON users
    BEGIN
        DELETE FROM signups WHERE name = old.name AND status = 'approved';
    END;
    ALTER TABLE users ADD COLUMN temporary INTEGER NOT NULL DEFAULT 0;
    """,
    # Where a server runs when not on this machine (a Slurm node); NULL is 127.0.0.1.
    """
    ALTER TABLE servers ADD COLUMN host TEXT;
    """,
    # Servers' OAuth client ids are fully %-quoted, as JupyterHub makes them (servers.client_id):
    # jupyterhub-singleuser names cookies after them, and `@` is not allowed in a cookie name.
    # Ids made before kept `@` (the only character URL paths keep that quoting does not); their
    # servers answered 500 to every page. Their unused authorization codes (valid for minutes)
    # go; the tokens stay with the renamed client (the token page shows them under it).
    """
    DELETE FROM oauth_codes WHERE client_id LIKE 'jupyterhub-user-%@%';
    UPDATE api_tokens SET client_id = replace(client_id, '@', '%40') WHERE client_id LIKE 'jupyterhub-user-%@%';
    UPDATE oauth_clients SET id = replace(id, '@', '%40') WHERE id LIKE 'jupyterhub-user-%@%';
    """,
    # The login method (auth.type) each account belongs to, and the hub's own small state (the
    # auth.type of the last start): see login_switch.py. The configured limits each server
    # started with (JSON): see limit_changes.py.
    """
    ALTER TABLE servers ADD COLUMN limits TEXT;
    ALTER TABLE users ADD COLUMN login_type TEXT;
    CREATE TABLE hub_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # Backends own their state (spawner/base.py): a JSON object the spawner returned from start.
    # The old handle columns move into it: a local server's PID and start time, or a Slurm job's
    # id (stored as a PID with start time 0). They stay in the table, empty and unused.
    """
    ALTER TABLE servers ADD COLUMN spawner_state TEXT;
    UPDATE servers SET spawner_state = CASE
        WHEN pid_create_time IS NULL OR pid_create_time = 0 THEN '{"job_id": ' || pid || '}'
        ELSE '{"pid": ' || pid || ', "create_time": ' || CAST(pid_create_time AS TEXT) || '}'
    END WHERE pid IS NOT NULL;
    UPDATE servers SET pid = NULL, pid_create_time = NULL;
    """,
    # The user_options a server was started with (JSON, e.g. {"profile": "big"}): see profiles.py.
    """
    ALTER TABLE servers ADD COLUMN user_options TEXT;
    """,
    # Sharing (sharing.py, as JupyterHub 5): a share grants one user or one group scopes on one
    # server of its owner; a share code (stored hashed) is exchanged for a share by whoever opens it.
    """
    CREATE TABLE shares (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        server TEXT NOT NULL DEFAULT '',
        user TEXT REFERENCES users(name) ON DELETE CASCADE,
        group_name TEXT REFERENCES groups(name) ON DELETE CASCADE,
        scopes TEXT NOT NULL,
        created TEXT NOT NULL,
        CHECK ((user IS NULL) != (group_name IS NULL))
    );
    CREATE UNIQUE INDEX shares_user ON shares(owner, server, user) WHERE user IS NOT NULL;
    CREATE UNIQUE INDEX shares_group ON shares(owner, server, group_name) WHERE group_name IS NOT NULL;
    CREATE INDEX shares_with_user ON shares(user);
    CREATE INDEX shares_with_group ON shares(group_name);
    CREATE TABLE share_codes (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        server TEXT NOT NULL DEFAULT '',
        hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created TEXT NOT NULL,
        expires_at REAL NOT NULL,
        exchange_count INTEGER NOT NULL DEFAULT 0,
        last_exchanged TEXT
    );
    CREATE INDEX share_codes_owner ON share_codes(owner, server);
    """,
    # A server's display name (JupyterHub 6); NULL shows its name.
    """
    ALTER TABLE servers ADD COLUMN display_name TEXT;
    """,
]


def statements(script):
    """The SQL statements of `script`, one by one (a trigger's body keeps its inner `;`).

    Not `executescript`: it commits first, and a migration must stay in one transaction."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


class SyncDatabase:
    """One connection and its calls, all on the thread that opened it (sqlite3 checks that).

    The daemon reaches it only through `Database`, which runs it on a thread of its own; a
    program without an event loop (the CLI, uninstall) may open one directly."""

    def __init__(self, path):
        new = not os.path.exists(path)
        self.conn = sqlite3.connect(path, isolation_level=None)
        if new:
            os.chmod(path, 0o600)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    @property
    def version(self):
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self):
        while self.version < len(MIGRATIONS):
            target = self.version + 1
            with self.transaction():
                for statement in statements(MIGRATIONS[target - 1]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={target}")

    @contextmanager
    def transaction(self):
        with _storage_errors():
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                with _storage_errors():
                    self.conn.execute("COMMIT")
            except StorageError:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def execute(self, sql, params=()):
        with _storage_errors():
            return self.conn.execute(sql, params)

    def one(self, sql, params=()):
        with _storage_errors():
            return self.conn.execute(sql, params).fetchone()

    def all(self, sql, params=()):
        with _storage_errors():
            return self.conn.execute(sql, params).fetchall()

    def close(self):
        self.conn.close()


def _in_transaction(db, fn, *args, **kwargs):
    with db.transaction():
        return fn(db, *args, **kwargs)


class Database:
    """The daemon's database: every statement runs on one dedicated thread, never on the event loop.

    A slow or full disk then delays only the requests that need storage; the rest of the hub
    (pages and API calls that need none, the proxy, progress streams) keeps answering. One
    thread keeps SQLite's single writer in order and lets a `transaction(fn)` run as a unit:
    `fn(db, ...)` gets the `SyncDatabase` and runs start to end on that thread, so no other
    statement lands inside it. `execute` returns the finished cursor (read `rowcount`, not rows).
    """

    def __init__(self, path):
        self._thread = CallThread("sqlite")
        try:  # opened and migrated on its thread (start-up: nothing else runs yet)
            self._db = self._thread.submit(partial(SyncDatabase, path)).result()
        except BaseException:
            self._thread.stop()
            raise

    async def run(self, fn, *args, **kwargs):
        """`fn(db, *args, **kwargs)` on the database thread, `db` the `SyncDatabase`; its result.
        The helpers that take a `db` first (users.ensure_user, tokens.create, ...) run this way."""
        return await self._thread.call(partial(fn, self._db, *args, **kwargs))

    async def transaction(self, fn, *args, **kwargs):
        """`fn(db, ...)` in one transaction (BEGIN IMMEDIATE ... COMMIT, rolled back if it raises)."""
        return await self.run(_in_transaction, fn, *args, **kwargs)

    async def execute(self, sql, params=()):
        return await self.run(SyncDatabase.execute, sql, params)

    async def one(self, sql, params=()):
        return await self.run(SyncDatabase.one, sql, params)

    async def all(self, sql, params=()):
        return await self.run(SyncDatabase.all, sql, params)

    def blocking(self, fn, *args, **kwargs):
        """`fn(db, ...)` on the database thread, waiting for it: for code outside the event loop
        (start-up before serving, tests). Never call it from a coroutine of the running daemon."""
        return self._thread.submit(partial(fn, self._db, *args, **kwargs)).result()

    @property
    def version(self):
        return self.blocking(lambda db: db.version)

    def close(self):
        """Close the connection once the statements already queued have run."""
        try:
            self._thread.submit(self._db.close).result()
        finally:
            self._thread.stop()
