"""Samples every running server's CPU and memory, and the machine's, every `usage.interval`
seconds into the usage history; the admin panel's live numbers are the latest round.

A server's CPU is measured from the cumulative CPU times of its process tree, children
already reaped included, so a kernel that ran and exited between two rounds still counts
(its time moves into its parent's `children_*` times when it is reaped), and a
new process counts from its first round. Memory is the tree's proportional set size (PSS:
a page shared by N processes counts 1/N to each), so servers forked from the pre-warm
launcher are not charged for the libraries they share with it and each other; where PSS
cannot be read, the resident size (RSS).
"""

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Optional

import psutil

from .server_state import ServerState
from .server_store import describe
from .tasks import cancel_and_wait
from .usage_history import MachineSample, ServerSample, UsageHistory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    user: str
    pid: int
    create_time: float


class TreeMeter:
    """CPU % and resident memory of process trees between two calls; remembers only the
    trees it measured last time, so its memory follows the number of running servers."""

    def __init__(self):
        self._last: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, start) -> (when, CPU seconds)

    def measure(self, targets, now) -> list[ServerSample]:
        if not targets:
            self._last = {}
            return []
        # One pass over /proc for every tree: psutil's children() reads all processes on
        # each call (~6 ms with 128 processes), once per server would cost seconds a round.
        procs, children = {}, {}
        for proc in psutil.process_iter(["ppid"]):
            procs[proc.pid] = proc
            children.setdefault(proc.info["ppid"], []).append(proc.pid)
        seen, samples = {}, []
        for target in targets:
            measured = self._tree(target, procs, children)
            if measured is None:
                continue
            cpu_seconds, memory = measured
            key = (target.pid, target.create_time)
            then, before = self._last.get(key, (target.create_time, 0.0))
            percent = max(cpu_seconds - before, 0.0) / max(now - then, 1e-3) * 100
            seen[key] = (now, cpu_seconds)
            samples.append(ServerSample(target.user, round(percent, 1), memory))
        self._last = seen
        return samples

    @staticmethod
    def _tree(target, procs, children) -> Optional[tuple[float, int]]:
        root = procs.get(target.pid)
        try:
            if root is None or abs(root.create_time() - target.create_time) > 0.01:
                return None  # gone, or a recycled PID: not the server
        except psutil.Error:
            return None
        cpu_seconds, memory = 0.0, 0
        pending = [target.pid]
        while pending:
            pid = pending.pop()
            pending.extend(children.get(pid, ()))
            try:
                proc = procs[pid]
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
                memory += proportional_size(pid) or rss
                cpu_seconds += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue  # it ended while we looked
        return cpu_seconds, memory


def proportional_size(pid) -> Optional[int]:
    """A process's PSS in bytes from /proc/<pid>/smaps_rollup (Linux >= 4.14), or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_sample(servers) -> MachineSample:
    memory = psutil.virtual_memory()
    return MachineSample(psutil.cpu_percent(None), memory.total - memory.available, memory.total, servers)


class UsageSampler:
    """The sampling loop, its history, and the latest round ({user: ServerSample}).

    The history's SQLite work runs on a thread of its own, never on the event loop: writes
    are handed to it, and pages read through `read` (in order with the writes)."""

    def __init__(self, hub, history: UsageHistory, interval: float):
        self.hub = hub
        self.history = history
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-sqlite")
        self.interval = interval
        self.latest: dict[str, ServerSample] = {}
        self._meter = TreeMeter()
        self._task: Optional[asyncio.Task] = None
        self._failing = False
        self._wake = asyncio.Event()  # a server became ready: sample now, not at the next tick

    def start(self):
        psutil.cpu_percent(None)  # the machine's CPU % is measured from this call on
        self._task = asyncio.create_task(self._loop())

    async def close(self):
        await cancel_and_wait(self._task)
        await asyncio.get_running_loop().run_in_executor(self._thread, self.history.close)
        self._thread.shutdown(wait=False)

    async def read(self, fn, *args):
        """`fn(history, *args)` on the history's thread (usage_chart's functions, the API's reads)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, partial(fn, self.history, *args))

    async def _loop(self):
        while True:
            try:
                await self.sample_once()
            except Exception:
                log.exception("Sampling server usage failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def sample_once(self):
        rows = [r for r in await self.hub.servers.store.in_states(ServerState.RUNNING) if r.spawner_state is not None]
        # The spawner says which process is the server's; a batch job has none here (its usage is
        # the cluster's to report).
        # A named server is sampled as `user/server` (servers.describe), the default one as `user`.
        processes = [(describe(r.user, r.name), self.hub.spawner.process_of(r.spawner_state)) for r in rows]
        targets = [Target(user, p.pid, p.create_time) for user, p in processes if p is not None]
        now = time.time()
        servers, machine = await asyncio.to_thread(
            lambda: (self._meter.measure(targets, now), machine_sample(len(rows))))
        self.latest = {s.user: s for s in servers}
        await asyncio.get_running_loop().run_in_executor(
            self._thread, self._store, self.history.record, now, servers, machine)

    def record_spawn(self, user, seconds, ok):
        """A spawn ended (ServerManager calls this): how long it took, and whether it worked.
        Written on the history's thread; nobody waits for it."""
        self._thread.submit(self._store, self.history.record_spawn, user, seconds, ok)
        if ok:
            self._wake.set()

    def _store(self, write, *args):  # on the history's thread
        try:
            write(*args)
        except sqlite3.Error as e:  # a full disk costs history, never a spawn or the loop
            if not self._failing:
                log.warning("Usage history not saved: %s", e)
            self._failing = True
        else:
            self._failing = False
