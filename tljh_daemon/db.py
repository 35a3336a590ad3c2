"""SQLite state (WAL) with a versioned schema.

The schema version lives in `PRAGMA user_version`; MIGRATIONS[i] takes a
database from version i to i+1. Append new migrations, never edit old ones.
"""

import os
import sqlite3
from contextlib import contextmanager

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


class Database:
    """One connection, used from the event loop thread only (queries are tiny)."""

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
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def execute(self, sql, params=()):
        return self.conn.execute(sql, params)

    def one(self, sql, params=()):
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql, params=()):
        return self.conn.execute(sql, params).fetchall()

    def close(self):
        self.conn.close()
