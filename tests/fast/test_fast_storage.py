"""State that cannot be saved (disk full, read-only storage): a clear 503, never a bare 500.
The real disk-full run (a tmpfs that fills up) is tests/test_disk_full.py."""

import sqlite3

import pytest

from tljh_daemon.db import StorageError, SyncDatabase


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
