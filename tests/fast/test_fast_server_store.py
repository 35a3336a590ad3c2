"""The server store: its transitions, and that no other module writes the servers table."""

import pathlib
import re

from tljh_daemon import db as db_mod
from tljh_daemon.db import Database, SyncDatabase
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
    await store.launched("ann", {"pid": 42, "create_time": 1.5}, 8000, limits="{}")
    await store.running("ann", None, 8001, last_activity="t1")
    assert len(seen) == 3 and not any(s.lstrip().upper().startswith("SELECT") for s in seen)
    record = await store.get("ann")
    assert (record.state, record.spawner_state, record.port, record.host, record.last_activity) == (
        "running", {"pid": 42, "create_time": 1.5}, 8001, None, "t1")
    assert record.name == "" and await store.count(ServerState.RUNNING) == 1
    assert [r.user for r in await store.in_states(ServerState.RUNNING)] == ["ann"]
    await store.down("ann", ServerState.FAILED, message="it broke")
    record = await store.get("ann")
    assert (record.state, record.message, record.spawner_state, record.port) == ("failed", "it broke", None, None)
    await store.pending("ann", started="t2")  # a second start clears the message, keeps the one row
    record = await store.get("ann")
    assert (record.message, record.started) == (None, "t2")
    assert list(await store.of_users(["ann", "bob"])) == ["ann"]
    db.close()


async def test_old_handles_become_the_spawners_state(tmp_path, monkeypatch):
    """A database from before spawner_state: a local server's PID and start time, and a Slurm
    job's id (stored as a PID with start time 0), move into the state its backend reads."""
    path = str(tmp_path / "hub.sqlite")
    before = next(i for i, m in enumerate(db_mod.MIGRATIONS) if "ADD COLUMN spawner_state" in m)
    monkeypatch.setattr(db_mod, "MIGRATIONS", db_mod.MIGRATIONS[:before])
    old = SyncDatabase(path)
    for user, pid, create_time in (("ann", 4242, 1765043123.45), ("job", 77, 0.0), ("off", None, None)):
        old.execute("INSERT INTO users (name, created) VALUES (?, 't')", (user,))
        old.execute("INSERT INTO servers (user, name, state, pid, pid_create_time) VALUES (?, '', ?, ?, ?)",
                    (user, "stopped" if pid is None else "running", pid, create_time))
    old.close()
    monkeypatch.undo()
    new = Database(path)
    store = ServerStore(new)
    assert (await store.get("ann")).spawner_state == {"pid": 4242, "create_time": 1765043123.45}
    assert (await store.get("job")).spawner_state == {"job_id": 77}
    assert (await store.get("off")).spawner_state is None
    assert sorted(r.user for r in await store.with_spawner_state()) == ["ann", "job"]
    assert (await new.one("SELECT COUNT(*) FROM servers WHERE pid IS NOT NULL OR pid_create_time IS NOT NULL"))[0] == 0
    new.close()


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
    # db.py's MIGRATIONS move old rows to a new schema once; they never run with the hub.
    writers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if p.name != "db.py" and write.search(p.read_text()))
    assert writers == ["server_store.py"]
