"""State that cannot be saved (disk full, read-only storage): a clear 503, never a bare 500.
The real disk-full run (a tmpfs that fills up) is tests/test_disk_full.py."""

import asyncio
import sqlite3
import threading

import pytest

from tljh_daemon.db import Database, StorageError, SyncDatabase


def test_read_only_database_is_a_storage_error(tmp_path):
    path = str(tmp_path / "state.sqlite")
    SyncDatabase(path).close()
    db = SyncDatabase(path)
    db.conn.close()
    db.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(StorageError) as raised:
        db.execute("INSERT INTO groups (name) VALUES ('x')")
    assert raised.value.reason == "its state is on read-only storage"
    with pytest.raises(StorageError):
        with db.transaction():
            db.execute("DELETE FROM groups")
    assert not db.conn.in_transaction
    assert db.one("SELECT COUNT(*) FROM groups")[0] == 0, "reads still work"
    with pytest.raises(sqlite3.OperationalError):  # a bad statement is not the storage's fault
        db.execute("SELECT nonsense FROM nowhere")


class FullDisk:
    """The hub's database connection (on its thread), refusing every write as SQLite does when
    the disk is full."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, params=()):
        if sql.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN"):
            raise StorageError("the disk holding its state is full", "database or disk is full")
        return self.db.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self.db, name)


async def test_writes_refused_with_a_503_and_reads_work(hub, monkeypatch):
    token = hub.token("alice")
    monkeypatch.setattr(hub.hub.db, "_db", FullDisk(hub.hub.db._db))
    async with hub.api("POST", "/users/alice/tokens", token, json={}) as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["status"] == 503 and "cannot save changes right now: the disk holding its state is full" \
        in body["message"]
    async with hub.api("GET", "/user", token) as resp:
        assert resp.status == 200


async def test_health_reports_what_the_storage_check_finds(hub, monkeypatch):
    async with hub.request("GET", "/hub/health") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok"}
    async def full():
        return "the disk holding its state is full"

    monkeypatch.setattr(hub.hub.storage, "_probe", full)
    monkeypatch.setattr(hub.hub.storage, "_cached", (float("-inf"), None))
    async with hub.request("GET", "/hub/health") as resp:
        assert resp.status == 503
        assert (await resp.json())["message"] == "The hub cannot save changes: the disk holding its state is full"


async def test_statements_run_on_one_thread_that_is_not_the_event_loops(tmp_path):
    db = Database(str(tmp_path / "hub.sqlite"))
    try:
        threads = {await db.run(lambda sync: threading.get_ident()) for _ in range(5)}
        assert len(threads) == 1 and threading.get_ident() not in threads
        assert (await db.one("PRAGMA journal_mode"))[0] == "wal"
        assert (await db.one("PRAGMA synchronous"))[0] == 1, "NORMAL, as before"

        def two_rows_then_fail(sync):
            sync.execute("INSERT INTO groups (name) VALUES ('a')")
            sync.execute("INSERT INTO groups (name) VALUES ('a')")  # the same name: IntegrityError

        with pytest.raises(sqlite3.IntegrityError):
            await db.transaction(two_rows_then_fail)
        assert (await db.one("SELECT COUNT(*) FROM groups"))[0] == 0, "the transaction was rolled back"
        with pytest.raises(sqlite3.ProgrammingError, match="thread"):  # none can slip onto the loop's thread
            db._db.conn.execute("SELECT 1")
    finally:
        db.close()


async def test_a_locked_database_delays_only_the_requests_that_need_it(hub):
    """Another process holds SQLite's write lock (as a slow or stuck disk would hold a write):
    the request that writes waits for it, while pages and API calls that need no storage
    keep answering at once. (With statements on the event loop, SQLite's busy wait froze the
    loop until the write gave up after 5 s with a 500: `write` was done before any GET ran.)"""
    admin = hub.token("boss", admin=True)
    seen = []  # statements as the database thread starts them
    hub.db.run(lambda sync: sync.conn.set_trace_callback(seen.append))
    other = sqlite3.connect(hub.hub.paths.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock until ROLLBACK
    try:
        write = asyncio.ensure_future(_status(hub.api("POST", "/users/bob", admin, json={})))
        await hub.wait_for(lambda: any("INSERT INTO users" in s for s in seen) or write.done(),
                           "the new user's INSERT to wait for the lock")
        loop = asyncio.get_running_loop()
        for path, status in (("/hub/api", 200), ("/hub/login", 200)):
            started = loop.time()
            assert await _status(hub.request("GET", path)) == status
            assert loop.time() - started < 1.0, f"{path} waited for the database"
        assert not write.done(), "the write was waiting for the lock all along"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await write == 201


async def _status(request):
    async with request as resp:
        await resp.read()
        return resp.status
