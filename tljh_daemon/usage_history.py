"""Usage over time: each running server's CPU and memory, the machine's, and spawn durations.

Kept in its own SQLite file (`state/usage.sqlite`), apart from the hub's state: it is
disposable (an unreadable or outdated file is started afresh) and its steady writes never
compete with a login for the hub database.

Two resolutions bound it: every sample for the last `FINE_SECONDS`, and one row per minute
(mean and peak CPU, peak memory) for `retention` seconds. Both are pruned by age, and each
table also has a row cap, so neither a long retention nor many servers can fill the disk.
Queries are downsampled in SQL to at most `points` buckets, so an answer stays small
whatever the period and however many users there are.
"""

import logging
import os
import sqlite3
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FINE_SECONDS = 3600  # every sample is kept this long; older ones only as minutes
MAX_POINTS = 500  # the most buckets a query returns per series

#: row caps (about 60 bytes a row with its indexes: at most ~90 MB in all)
MAX_FINE_ROWS = 200_000  # e.g. 100 servers sampled every 2 s for an hour
MAX_MINUTE_ROWS = 1_000_000  # e.g. 100 servers for a week

# Rows are appended in time order and only the oldest are deleted, so each round writes a
# page or two at the end of each table (not one page per user), and rowids count the rows.
_TABLES = """
CREATE TABLE server_fine (t REAL NOT NULL, user TEXT NOT NULL, cpu REAL NOT NULL, mem INTEGER NOT NULL);
CREATE INDEX server_fine_t ON server_fine(t);
CREATE TABLE server_minute (t INTEGER NOT NULL, user TEXT NOT NULL, cpu REAL NOT NULL, cpu_max REAL NOT NULL,
    mem INTEGER NOT NULL);
CREATE INDEX server_minute_t ON server_minute(t);
CREATE TABLE machine_fine (t REAL NOT NULL, cpu REAL NOT NULL, mem INTEGER NOT NULL, mem_total INTEGER NOT NULL,
    servers INTEGER NOT NULL);
CREATE INDEX machine_fine_t ON machine_fine(t);
CREATE TABLE machine_minute (t INTEGER NOT NULL, cpu REAL NOT NULL, cpu_max REAL NOT NULL, mem INTEGER NOT NULL,
    mem_total INTEGER NOT NULL, servers INTEGER NOT NULL);
CREATE INDEX machine_minute_t ON machine_minute(t);
CREATE TABLE spawns (t REAL NOT NULL, user TEXT NOT NULL, seconds REAL NOT NULL, ok INTEGER NOT NULL);
CREATE INDEX spawns_t ON spawns(t);
"""


@dataclass(frozen=True)
class ServerSample:
    user: str
    cpu_percent: float  # of one core (a server busy on two cores shows 200)
    memory_bytes: int  # of its process tree (PSS, see usage_sampler)


@dataclass(frozen=True)
class MachineSample:
    cpu_percent: float  # of all cores
    memory_bytes: int  # in use (total - available)
    memory_total: int
    servers: int  # running


class UsageHistory:
    """The store. Used from one thread at a time: the daemon's UsageSampler runs every call on a
    thread of its own (opened at start-up, before that thread takes over)."""

    def __init__(self, path, retention=24 * 3600, *, max_fine_rows=MAX_FINE_ROWS, max_minute_rows=MAX_MINUTE_ROWS):
        self.path = path
        self.retention = retention
        self.max_fine_rows = max_fine_rows
        self.max_minute_rows = max_minute_rows
        self.conn = self._open()
        latest = self.conn.execute("SELECT MAX(IFNULL((SELECT MAX(t) FROM server_minute), 0),"
                                   " IFNULL((SELECT MAX(t) FROM machine_minute), 0))").fetchone()[0]
        self._folded_until = latest + 60 if latest else 0  # the minutes before it are folded
        # The last hour of each server in memory as well: pages read it on every load, and a scan
        # of the time-ordered table for a few users costs tens of milliseconds at 100 servers.
        self._recent: dict[str, deque] = {}
        for t, user, cpu, mem in self.conn.execute("SELECT * FROM server_fine WHERE t >= ? ORDER BY t",
                                                   (time.time() - FINE_SECONDS,)):
            self._remember(user, t, cpu, mem)

    def _open(self):
        try:
            return self._connect()
        except sqlite3.DatabaseError as e:  # a damaged file: history is disposable
            log.warning("Starting the usage history afresh: %s is unreadable (%s)", self.path, e)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self.path + suffix)
                except FileNotFoundError:
                    pass
            return self._connect()

    def _connect(self):
        new = not os.path.exists(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if new:
            os.chmod(self.path, 0o600)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                conn.execute(f'DROP TABLE "{name}"')
            for statement in _TABLES.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        return conn

    def close(self):
        self.conn.close()

    # -- writing -----------------------------------------------------------------

    def record(self, t, servers, machine=None):
        """Store one round of samples taken at `t` (seconds since the epoch); once a minute,
        fold the minutes that ended into per-minute rows and prune."""
        minute = int(t // 60 * 60)
        with self._transaction():
            self.conn.executemany("INSERT INTO server_fine VALUES (?, ?, ?, ?)",
                                  [(t, s.user, s.cpu_percent, s.memory_bytes) for s in servers])
            if machine is not None:
                self.conn.execute("INSERT INTO machine_fine VALUES (?, ?, ?, ?, ?)",
                                  (t, machine.cpu_percent, machine.memory_bytes, machine.memory_total,
                                   machine.servers))
            for sample in servers:
                self._remember(sample.user, t, sample.cpu_percent, sample.memory_bytes)
            if minute > self._folded_until:
                self._fold(max(self._folded_until, minute - FINE_SECONDS), minute)
                self._prune(t)
                self._folded_until = minute
                self._forget_before(t - FINE_SECONDS)

    def _remember(self, user, t, cpu, mem):
        self._recent.setdefault(user, deque(maxlen=FINE_SECONDS)).append((t, cpu, mem))  # >= 1 s apart

    def _forget_before(self, start):
        for user in list(self._recent):
            recent = self._recent[user]
            while recent and recent[0][0] < start:
                recent.popleft()
            if not recent:
                del self._recent[user]

    def _fold(self, start, end):
        """Per-minute rows for the minutes in [start, end)."""
        self.conn.execute(
            "INSERT INTO server_minute SELECT CAST(t / 60 AS INTEGER) * 60 AS m, user, AVG(cpu), MAX(cpu), MAX(mem)"
            " FROM server_fine WHERE t >= ? AND t < ? GROUP BY m, user ORDER BY m", (start, end))
        self.conn.execute(
            "INSERT INTO machine_minute SELECT CAST(t / 60 AS INTEGER) * 60 AS m, AVG(cpu), MAX(cpu), MAX(mem),"
            " MAX(mem_total), MAX(servers) FROM machine_fine WHERE t >= ? AND t < ? GROUP BY m ORDER BY m",
            (start, end))

    def record_spawn(self, user, seconds, ok, t=None):
        with self._transaction():
            self.conn.execute("INSERT INTO spawns VALUES (?, ?, ?, ?)",
                              (time.time() if t is None else t, user, seconds, int(ok)))

    def _prune(self, now):
        fine_start, start = now - FINE_SECONDS, now - self.retention
        for table, since in (("server_fine", fine_start), ("machine_fine", fine_start),
                             ("server_minute", start), ("machine_minute", start), ("spawns", start)):
            self.conn.execute(f"DELETE FROM {table} WHERE t < ?", (since,))
        for table, cap in (("server_fine", self.max_fine_rows), ("server_minute", self.max_minute_rows),
                           ("spawns", self.max_minute_rows)):
            # Over the cap (more servers than it was sized for): the oldest rows go first.
            self.conn.execute(f"DELETE FROM {table} WHERE rowid <= (SELECT MAX(rowid) FROM {table}) - ?", (cap,))

    @contextmanager
    def _transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reading -----------------------------------------------------------------

    def _window(self, period, points, now):
        """(start, bucket seconds, fine?) for the last `period` seconds in at most `points` buckets."""
        now = time.time() if now is None else now
        fine = period <= FINE_SECONDS
        step = max(period / max(points, 1), 1 if fine else 60)
        return now - period, step, fine

    def servers(self, users, period=3600, points=60, now=None):
        """{user: [{t, cpu_percent, cpu_percent_max, memory_bytes}]} over the last `period`
        seconds, in buckets of period/points seconds (peaks are the bucket's maximum)."""
        users = list(users)
        if not users:
            return {}
        start, step, fine = self._window(period, points, now)
        if fine:
            return {user: _buckets(self._recent.get(user, ()), start, step) for user in users}
        marks = ", ".join("?" * len(users))
        result = {user: [] for user in users}
        for user, bucket, cpu, cpu_max, mem in self.conn.execute(
                "SELECT user, CAST((t - ?) / ? AS INTEGER) AS b, AVG(cpu), MAX(cpu_max), MAX(mem)"
                f" FROM server_minute WHERE user IN ({marks}) AND t >= ? GROUP BY user, b ORDER BY user, b",
                (start, step, *users, start)):
            result[user].append(_point(start, step, bucket, cpu, cpu_max, mem))
        return result

    def machine(self, period=3600, points=60, now=None):
        """The machine's samples ({t, cpu_percent, cpu_percent_max, memory_bytes, memory_total,
        servers}) and the spawns ({t, user, seconds, ok}, at most `points`, the slowest when
        there were more) of the last `period` seconds."""
        start, step, fine = self._window(period, points, now)
        table, cpu_max = ("machine_fine", "MAX(cpu)") if fine else ("machine_minute", "MAX(cpu_max)")
        samples = [
            {"t": round(start + bucket * step, 3), "cpu_percent": round(cpu, 1), "cpu_percent_max": round(peak, 1),
             "memory_bytes": mem, "memory_total": total, "servers": servers}
            for bucket, cpu, peak, mem, total, servers in self.conn.execute(
                f"SELECT CAST((t - ?) / ? AS INTEGER) AS b, AVG(cpu), {cpu_max}, MAX(mem), MAX(mem_total),"
                f" MAX(servers) FROM {table} WHERE t >= ? GROUP BY b ORDER BY b", (start, step, start))
        ]
        spawns = [
            {"t": round(t, 3), "user": user, "seconds": round(seconds, 3), "ok": bool(ok)}
            for t, user, seconds, ok in self.conn.execute(
                "SELECT * FROM (SELECT t, user, seconds, ok FROM spawns WHERE t >= ? ORDER BY seconds DESC LIMIT ?)"
                " ORDER BY t", (start, points))
        ]
        return {"samples": samples, "spawns": spawns}

    def rows(self):
        """{table: row count} (for tests and the docs' size figures)."""
        tables = [name for (name,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: self.conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in tables}



def _point(start, step, bucket, cpu, cpu_max, mem):
    return {"t": round(start + bucket * step, 3), "cpu_percent": round(cpu, 1), "cpu_percent_max": round(cpu_max, 1),
            "memory_bytes": mem}


def _buckets(samples, start, step):
    """Samples [(t, cpu, mem)] in time order, from `start` on, as buckets of `step` seconds."""
    points, bucket = [], None
    total = peak = mem_peak = n = 0
    for t, cpu, mem in samples:
        if t < start:
            continue
        b = int((t - start) // step)
        if b != bucket:
            if n:
                points.append(_point(start, step, bucket, total / n, peak, mem_peak))
            bucket, total, peak, mem_peak, n = b, 0.0, cpu, mem, 0
        total += cpu
        n += 1
        if cpu > peak:
            peak = cpu
        if mem > mem_peak:
            mem_peak = mem
    if n:
        points.append(_point(start, step, bucket, total / n, peak, mem_peak))
    return points
