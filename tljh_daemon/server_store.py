"""The `servers` table: the only code that writes it, and the plain queries on it.

A row is keyed by (user, server name); the default server's name is '' (named servers
fit later without a migration). Every change of a server's stored state is one method
here, named after the transition (`pending`, `launched`, `running`, `stopping`, `down`,
`touch`), each a single statement without a read first. Reads that join other tables
(users.py, culler.py, admins.py, the admin page) stay with their queries; they never write.
Every method is a coroutine: the statement runs on the database thread (`Database`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, fields
from typing import Any, Iterable, Optional

from . import sharing
from .server_state import ServerState, sql_list

DEFAULT = ""  # the default server's name


# JupyterHub 6's rule for new server names: [a-z0-9] and single hyphens, starting with a letter,
# ending with a letter or digit, at most 30 characters.
_SERVER_NAME = re.compile(r"[a-z](?:-?[a-z0-9])*")
SERVER_NAME_MAX = 30


def valid_server_name(server: str) -> bool:
    return len(server) <= SERVER_NAME_MAX and _SERVER_NAME.fullmatch(server) is not None


DISPLAY_NAME_MAX = 255


class InvalidDisplayName(ValueError):
    """Its text says why, to follow "it": "must be 1 to 255 characters long"."""


def display_name(text: str) -> str:
    """`text` as a server's display name: NFC-normalised, as JupyterHub 6 stores it, and checked
    by its rule (1 to 255 printable characters, single spaces inside but none at either end, no
    other whitespace and no control or format characters); InvalidDisplayName otherwise."""
    text = unicodedata.normalize("NFC", text)
    if not 1 <= len(text) <= DISPLAY_NAME_MAX:
        raise InvalidDisplayName(f"must be 1 to {DISPLAY_NAME_MAX} characters long")
    if text != text.strip(" ") or "  " in text:
        raise InvalidDisplayName("must not start or end with a space, or have two spaces in a row")
    if any(c != " " and unicodedata.category(c)[0] in "ZC" for c in text):
        raise InvalidDisplayName("must not contain whitespace other than single spaces, or control characters")
    return text


def server_name_for(text: str) -> str:
    """A valid server name for `text`, what a person typed as a new server's name (its display
    name): `text` itself when it is one, else its ASCII letters and digits, lowercased, as
    hyphen-joined words, and 8 hex digits of its SHA-256 (two texts that read alike get two names)."""
    if valid_server_name(text):
        return text
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    stem = "-".join(re.findall(r"[a-z0-9]+", folded))
    if not stem[:1].isalpha():
        stem = f"server-{stem}".rstrip("-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[:SERVER_NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def spawner_key(user: str, server: str = DEFAULT) -> str:
    """Who a server is to its backend: the user for the default server, `<user>-<server>` for a
    named one (its unit `jupyter-<user>-<server>`, its cgroup, its job), as JupyterHub names them."""
    return f"{user}-{server}" if server else user


def describe(user: str, server: str = DEFAULT) -> str:
    """A server for log lines, usage samples and messages: `alice`, or `alice/project`."""
    return f"{user}/{server}" if server else user


@dataclass(frozen=True)
class ServerRecord:
    """One stored server. `spawner_state` is what the spawner returned from start (its own
    JSON-serialisable state: a PID, a job id); `host` None is 127.0.0.1; `limits` is the JSON
    of the limits it started with; `user_options` the JSON of the options it was started with
    (its profile)."""

    user: str
    name: str
    state: ServerState
    port: Optional[int] = None
    spawner_state: Optional[dict[str, Any]] = None
    started: Optional[str] = None
    last_activity: Optional[str] = None
    message: Optional[str] = None
    host: Optional[str] = None
    limits: Optional[str] = None
    user_options: Optional[str] = None
    display_name: Optional[str] = None  # None: its name

    @property
    def shown_name(self) -> str:
        """What pages and the API show: its display name, else its name."""
        return self.display_name or self.name

    @classmethod
    def from_row(cls, row) -> "ServerRecord":
        values = {f.name: row[f.name] for f in _FIELDS}
        values["state"] = ServerState(values["state"])
        if values["spawner_state"] is not None:
            values["spawner_state"] = json.loads(values["spawner_state"])
        return cls(**values)


_FIELDS = fields(ServerRecord)
_COLUMNS = ", ".join(f.name for f in _FIELDS)
# What a server that is down keeps: no process, port or host (its message says why it is down).
_GONE = "spawner_state=NULL, port=NULL, host=NULL"


def record(db, user: str, name: str = DEFAULT) -> Optional[ServerRecord]:
    """(On the database thread, `db` a SyncDatabase.) One server, for reads that join others in
    one trip to the database thread; ServerStore.get from the event loop."""
    row = db.one(f"SELECT {_COLUMNS} FROM servers WHERE user=? AND name=?", (user, name))
    return ServerRecord.from_row(row) if row else None


def records_of_users(db, users: Iterable[str], name: str = DEFAULT) -> dict[str, ServerRecord]:
    """(On the database thread.) {user: their server `name`} for those that have one."""
    users = list(users)
    marks = ",".join("?" * len(users))
    rows = db.all(f"SELECT {_COLUMNS} FROM servers WHERE name=? AND user IN ({marks})", (name, *users))
    return {row["user"]: ServerRecord.from_row(row) for row in rows}


def named_records_of_users(db, users: Iterable[str]) -> dict[str, dict[str, ServerRecord]]:
    """(On the database thread.) {user: {server name: record}} of the named servers of `users`."""
    users = list(users)
    marks = ",".join("?" * len(users))
    rows = db.all(f"SELECT {_COLUMNS} FROM servers WHERE name != ? AND user IN ({marks}) ORDER BY name",
                  (DEFAULT, *users))
    named: dict[str, dict[str, ServerRecord]] = {}
    for row in rows:
        named.setdefault(row["user"], {})[row["name"]] = ServerRecord.from_row(row)
    return named


class ServerStore:
    def __init__(self, db):
        self.db = db

    # -- reads -----------------------------------------------------------------

    async def get(self, user: str, name: str = DEFAULT) -> Optional[ServerRecord]:
        return await self.db.run(record, user, name)

    async def state(self, user: str, name: str = DEFAULT) -> ServerState:
        row = await self.db.one("SELECT state FROM servers WHERE user=? AND name=?", (user, name))
        return ServerState(row["state"]) if row else ServerState.STOPPED

    async def count(self, *states: ServerState) -> int:
        return (await self.db.one(f"SELECT COUNT(*) FROM servers WHERE state IN ({sql_list(states)})"))[0]

    async def in_states(self, *states: ServerState) -> list[ServerRecord]:
        rows = await self.db.all(f"SELECT {_COLUMNS} FROM servers WHERE state IN ({sql_list(states)})")
        return [ServerRecord.from_row(row) for row in rows]

    async def with_spawner_state(self) -> list[ServerRecord]:
        """Servers that have a spawner state (a process, a batch job) recorded, whatever their state."""
        rows = await self.db.all(f"SELECT {_COLUMNS} FROM servers WHERE spawner_state IS NOT NULL")
        return [ServerRecord.from_row(row) for row in rows]

    async def of_user(self, user: str) -> dict[str, ServerRecord]:
        """Every server of `user`, by server name (the default one under '')."""
        rows = await self.db.all(f"SELECT {_COLUMNS} FROM servers WHERE user=? ORDER BY name", (user,))
        return {row["name"]: ServerRecord.from_row(row) for row in rows}

    async def names(self, user: str) -> list[str]:
        """The names of `user`'s named servers (not the default one)."""
        rows = await self.db.all("SELECT name FROM servers WHERE user=? AND name != ? ORDER BY name", (user, DEFAULT))
        return [row["name"] for row in rows]

    async def key_taken(self, key: str) -> bool:
        """Does another server (a user's default one, or a named one) have the backend key `key`
        (`spawner_key`: user `a-b`'s default server and user `a`'s server `b` would share one)?"""
        row = await self.db.one(
            "SELECT 1 FROM users WHERE name=? UNION ALL SELECT 1 FROM servers WHERE name != '' AND"
            " user || '-' || name = ? LIMIT 1", (key, key))
        return row is not None

    async def of_users(self, users: Iterable[str], name: str = DEFAULT) -> dict[str, ServerRecord]:
        return await self.db.run(records_of_users, list(users), name)

    async def named_of_users(self, users: Iterable[str]) -> dict[str, dict[str, ServerRecord]]:
        """{user: {server name: row}} of the named servers of `users` (one query for a page)."""
        return await self.db.run(named_records_of_users, list(users))

    # -- the transitions (each one statement) ------------------------------------

    async def pending(self, user: str, started: str, user_options: str = "{}", name: str = DEFAULT,
                      display_name: Optional[str] = None) -> None:
        """A start begins, with `user_options` (JSON): the row is created on a user's first start.
        A `display_name` given replaces the stored one; None keeps it."""
        await self.db.execute(
            "INSERT INTO servers (user, name, state, started, user_options, display_name) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (user, name) DO UPDATE SET state=excluded.state, message=NULL,"
            " started=excluded.started, user_options=excluded.user_options,"
            " display_name=COALESCE(excluded.display_name, servers.display_name)",
            (user, name, ServerState.PENDING, started, user_options, display_name),
        )

    async def launched(self, user: str, spawner_state: dict[str, Any], port: int, limits: str,
                       name: str = DEFAULT) -> None:
        """The spawner started it: its state is recorded so a stop or a restarted hub finds it."""
        await self.db.execute(
            "UPDATE servers SET spawner_state=?, port=?, limits=? WHERE user=? AND name=?",
            (json.dumps(spawner_state), port, limits, user, name),
        )

    async def running(self, user: str, host: Optional[str], port: int, last_activity: str,
                name: str = DEFAULT) -> None:
        """It answers and is routed, at `host:port` (where the spawner located it)."""
        await self.db.execute(
            "UPDATE servers SET state=?, host=?, port=?, last_activity=? WHERE user=? AND name=?",
            (ServerState.RUNNING, host, port, last_activity, user, name),
        )

    async def stopping(self, user: str, name: str = DEFAULT) -> None:
        await self.db.execute("UPDATE servers SET state=? WHERE user=? AND name=?", (ServerState.STOPPING, user, name))

    async def down(self, user: str, state: ServerState = ServerState.STOPPED, message: Optional[str] = None,
             name: str = DEFAULT) -> None:
        """No process any more: stopped, failed or cancelled, `message` saying why (None: asked to)."""
        await self.db.execute(
            f"UPDATE servers SET state=?, message=?, {_GONE} WHERE user=? AND name=?",
            (state, message, user, name),
        )

    async def create(self, user: str, name: str, user_options: str = "{}", display_name: Optional[str] = None) -> None:
        """A named server made without starting it (stopped); an existing one stays as it is."""
        await self.db.execute(
            "INSERT OR IGNORE INTO servers (user, name, state, user_options, display_name) VALUES (?, ?, ?, ?, ?)",
            (user, name, ServerState.STOPPED, user_options, display_name))

    async def modify(self, user: str, name: str, *, new_name: Optional[str] = None,
                     display_name: Optional[str] = None, user_options: Optional[str] = None) -> None:
        """A stopped server renamed (its shares and share codes follow it), given a display name
        or new `user_options` (JSON); None leaves that part as it is. One transaction."""
        def change(db):
            if display_name is not None:
                db.execute("UPDATE servers SET display_name=? WHERE user=? AND name=?", (display_name, user, name))
            if user_options is not None:
                db.execute("UPDATE servers SET user_options=? WHERE user=? AND name=?", (user_options, user, name))
            if new_name is not None and new_name != name:
                db.execute("UPDATE servers SET name=? WHERE user=? AND name=?", (new_name, user, name))
                sharing.follow_rename(db, user, name, new_name)
        await self.db.transaction(change)

    async def remove(self, user: str, name: str) -> None:
        """A named server is deleted (JupyterHub's DELETE with {"remove": true}); the default
        server's row stays."""
        await self.db.execute("DELETE FROM servers WHERE user=? AND name=? AND name != ?", (user, name, DEFAULT))

    async def touch(self, user: str, last_activity: str, name: str = DEFAULT) -> None:
        """Activity the server reported; an older time than the stored one changes nothing."""
        await self.db.execute(
            "UPDATE servers SET last_activity=? WHERE user=? AND name=?"
            " AND (last_activity IS NULL OR last_activity < ?)",
            (last_activity, user, name, last_activity),
        )
