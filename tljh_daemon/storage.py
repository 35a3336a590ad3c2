"""Can the hub save its state right now? (/hub/health reports it; monitors alert on it.)

SQLite in WAL mode keeps answering reads on a full disk and may even fit small writes
into its existing log, so the question is asked of the file system itself: a small
write, synced, in the state directory (where the database lives). Results are reused
for a second so a monitor polling /hub/health cannot turn into a stream of syncs. The
probe runs off the event loop (the write in a worker thread, the write lock on the
database thread): a failing disk slows /hub/health, never the rest of the hub.
"""

import asyncio
import errno
import os
import time

from .db import StorageError

PROBE_BYTES = 4096
CACHE_SECONDS = 1.0

_REASONS = {
    errno.ENOSPC: "the disk holding its state is full",
    errno.EDQUOT: "the disk quota for its state is used up",
    errno.EROFS: "its state is on read-only storage",
    errno.EIO: "the disk holding its state fails (I/O error)",
}


def reason_for(error):
    """A reason safe to show anyone (no paths) for an OSError or StorageError."""
    if isinstance(error, StorageError):
        return error.reason
    return _REASONS.get(getattr(error, "errno", None), f"its state cannot be written ({error.strerror or error})")


def is_storage_fault(error):
    return isinstance(error, StorageError) or (isinstance(error, OSError) and error.errno in _REASONS)


class StorageCheck:
    def __init__(self, state_dir, db):
        self.state_dir = state_dir
        self.db = db
        self._cached = (float("-inf"), None)
        self._probing = asyncio.Lock()  # callers during a probe wait for its answer

    async def problem(self):
        """None when state can be saved, else why not (a sentence fragment, no paths)."""
        async with self._probing:
            checked, problem = self._cached
            if time.monotonic() - checked < CACHE_SECONDS:
                return problem
            problem = await self._probe()
            self._cached = (time.monotonic(), problem)
            return problem

    async def _probe(self):
        try:
            await asyncio.to_thread(self._write_probe)
            await self.db.transaction(lambda db: None)  # the database's write lock can be taken
            return low_space(await asyncio.to_thread(os.statvfs, self.state_dir))
        except (OSError, StorageError) as e:
            return reason_for(e)

    def _write_probe(self):
        path = os.path.join(self.state_dir, ".write-probe")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(path)


#: below this, the disk counts as full even though the (root) daemon can still write
LOW_SPACE_BYTES = 16 << 20


def low_space(vfs):
    """The daemon runs as root and can fill ext4's reserved blocks after the disk is full for
    everyone else (users' notebooks, sign-ups' homes): report that as trouble too."""
    if vfs.f_bavail * vfs.f_frsize < LOW_SPACE_BYTES:
        return (f"the disk holding its state is full ({vfs.f_bavail * vfs.f_frsize >> 20} MiB left "
                f"for anyone but root)")
    if vfs.f_files and vfs.f_favail == 0:
        return "the disk holding its state has no free inodes left for anyone but root"
    return None
