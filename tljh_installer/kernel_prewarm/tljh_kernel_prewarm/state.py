"""The server's one kernel zygote (started on first use, see __init__.py), replaced when stale."""

import logging

from .client import Unavailable, Zygote

log = logging.getLogger("tljh_kernel_prewarm")
enabled = False  # kernels.prewarm asked for, and this server may use it
zygote = None
_retired = []  # still holding kernels they forked


def enable(logger=None):
    global enabled, log
    log = logger or log
    enabled = True


def warm():
    """Start the zygote unless it runs."""
    global zygote
    if enabled and zygote is None:
        zygote = Zygote(log)


async def fork(cmd, env, cwd):
    """A kernel forked from the zygote, or Unavailable (then a new zygote starts for next time)."""
    try:
        warm()
    except OSError as e:
        raise Unavailable(f"the kernel zygote did not start: {e}") from e
    stale = zygote.stale()
    if stale:
        replace()
        raise Unavailable(f"{stale}; a new kernel zygote starts")
    return await zygote.fork(cmd, env, cwd)


def replace():
    global zygote
    zygote.retire()
    _retired.append(zygote)
    zygote = None
    warm()
