"""The server store: its transitions, and that no other module writes the servers table."""

import pathlib
import re

from tljh_daemon.db import Database
from tljh_daemon.server_state import ServerState
from tljh_daemon.server_store import ServerStore


async def _store(tmp_path):
    db = Database(str(tmp_path / "hub.sqlite"))
    await db.execute("INSERT INTO users (name, created) VALUES ('ann', '2026-01-01T00:00:00Z')")
    return db, ServerStore(db)


def _statements(db):
    """The statements SQLite runs from now on (traced on the database thread)."""
    seen = []
    db.blocking(lambda sync: sync.conn.set_trace_callback(seen.append))
    return seen


async def test_a_spawn_goes_through_its_states_one_statement_each(tmp_path):
    db, store = await _store(tmp_path)
    assert await store.get("ann") is None and await store.state("ann") == ServerState.STOPPED
    seen = _statements(db)
    await store.pending("ann", started="t0")
    await store.launched("ann", 42, 1.5, 8000, limits="{}")
    await store.running("ann", None, 8001, last_activity="t1")
    assert len(seen) == 3 and not any(s.lstrip().upper().startswith("SELECT") for s in seen)
    record = await store.get("ann")
    assert (record.state, record.pid, record.port, record.host, record.last_activity) == ("running", 42, 8001, None, "t1")
    assert record.name == "" and await store.count(ServerState.RUNNING) == 1
    assert [r.user for r in await store.in_states(ServerState.RUNNING)] == ["ann"]
    await store.down("ann", ServerState.FAILED, message="it broke")
    record = await store.get("ann")
    assert (record.state, record.message, record.pid, record.port) == ("failed", "it broke", None, None)
    await store.pending("ann", started="t2")  # a second start clears the message, keeps the one row
    record = await store.get("ann")
    assert (record.message, record.started) == (None, "t2")
    assert list(await store.of_users(["ann", "bob"])) == ["ann"]
    db.close()


async def test_activity_only_moves_forward(tmp_path):
    db, store = await _store(tmp_path)
    await store.pending("ann", started="t0")
    await store.touch("ann", "2026-01-02T00:00:00Z")
    await store.touch("ann", "2026-01-01T00:00:00Z")
    assert (await store.get("ann")).last_activity == "2026-01-02T00:00:00Z"
    db.close()


def test_only_the_store_writes_the_servers_table():
    root = pathlib.Path(__file__).parents[2] / "tljh_daemon"
    write = re.compile(r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+servers\b", re.IGNORECASE)
    writers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if write.search(p.read_text()))
    assert writers == ["server_store.py"]
