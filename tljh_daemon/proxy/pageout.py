"""Give back the pages of Traefik's binary that only its start-up touched.

Traefik's start-up runs the init code of every provider and plugin built into it and leaves
~90 MiB of its ~185 MiB binary resident, while serving routes touches ~20 MiB of it
(benchmarks/proxy_memory.py measures this). Those are clean pages of the executable file: the
kernel may drop them at any time and reads back the few that are used again. After Traefik
answers, the daemon asks the kernel to drop them now with process_madvise(MADV_PAGEOUT)
(Linux >= 5.10; the daemon runs as root), so Traefik's resident memory is what it uses. Its own
heap (anonymous memory) is not touched. Where the call is not available nothing changes.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os

log = logging.getLogger(__name__)

# Linux gives new system calls the same number on every architecture since 5.1.
_SYS_PROCESS_MADVISE = 440
_MADV_PAGEOUT = 21
_IOV_MAX = 1024


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def executable_ranges(pid: int) -> list[tuple[int, int]]:
    """(start, end) of each mapping of `pid`'s own executable file."""
    exe = os.readlink(f"/proc/{pid}/exe")
    ranges = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].rstrip("\n") == exe:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((start, end))
    return ranges


def page_out_executable(pid: int) -> int:
    """Ask the kernel to drop `pid`'s resident pages of its executable; the bytes advised, or 0
    where this kernel or process cannot (logged once at debug level: it only costs memory)."""
    try:
        ranges = executable_ranges(pid)
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError) as e:
        log.debug("Cannot page out pid %s's executable: %s", pid, e)
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    advised = 0
    try:
        for first in range(0, len(ranges), _IOV_MAX):
            chunk = ranges[first:first + _IOV_MAX]
            iov = (_IoVec * len(chunk))(*[_IoVec(start, end - start) for start, end in chunk])
            done = libc.syscall(_SYS_PROCESS_MADVISE, pidfd, iov, len(chunk), _MADV_PAGEOUT, 0)
            if done < 0:
                code = ctypes.get_errno()
                log.debug("process_madvise(MADV_PAGEOUT) on pid %s: %s", pid, errno.errorcode.get(code, code))
                break
            advised += done
    finally:
        os.close(pidfd)
    return advised
