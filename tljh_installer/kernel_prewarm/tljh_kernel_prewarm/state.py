"""The server's kernel zygotes: its own environment's (started on first use, see __init__.py), and
one per other environment (environments.* of the hub) started at that environment's first kernel;
each replaced when stale."""

import logging
import sys

from .client import Unavailable, Zygote

log = logging.getLogger("tljh_kernel_prewarm")
enabled = False  # kernels.prewarm asked for, and this server may use it
zygote = None  # the server's own environment's
others = {}  # python of another environment -> its zygote
_retired = []  # still holding kernels they forked


def enable(logger=None):
    global enabled, log
    log = logger or log
    enabled = True


def warm(python=None):
    """Start the zygote of `python` (default: the server's own) unless it runs."""
    global zygote
    if not enabled:
        return
    if python in (None, sys.executable):
        if zygote is None:
            zygote = Zygote(log)
    elif python not in others:
        others[python] = Zygote(log, python)


def _current(python):
    return zygote if python == sys.executable else others.get(python)


async def fork(cmd, env, cwd):
    """A kernel forked from the zygote of its Python (cmd[0]), or Unavailable (then a new zygote
    starts for next time). Another environment's first kernel starts its zygote: that kernel
    starts fresh while the zygote imports."""
    python = cmd[0]
    try:
        warm(python)
    except OSError as e:
        raise Unavailable(f"the kernel zygote did not start: {e}") from e
    current = _current(python)
    stale = current.stale()
    if stale:
        replace(python)
        raise Unavailable(f"{stale}; a new kernel zygote starts")
    return await current.fork(cmd, env, cwd)


def replace(python=None):
    global zygote
    python = python or sys.executable
    old = _current(python)
    old.retire()
    _retired.append(old)
    if python == sys.executable:
        zygote = None
    else:
        del others[python]
    warm(python)
