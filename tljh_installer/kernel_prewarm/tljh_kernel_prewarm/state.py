"""The server's one kernel zygote (None while kernel pre-warm is off), replaced when stale."""

import logging

from .client import Unavailable, Zygote

log = logging.getLogger("tljh_kernel_prewarm")
zygote = None
_retired = []  # still holding kernels they forked


def start(logger=None):
    global log, zygote
    log = logger or log
    zygote = Zygote(log)


async def fork(cmd, env, cwd):
    """A kernel forked from the zygote, or Unavailable (then a new zygote starts for next time)."""
    stale = zygote.stale()
    if stale:
        replace()
        raise Unavailable(f"{stale}; a new kernel zygote starts")
    return await zygote.fork(cmd, env, cwd)


def replace():
    global zygote
    zygote.retire()
    _retired.append(zygote)
    zygote = Zygote(log)
