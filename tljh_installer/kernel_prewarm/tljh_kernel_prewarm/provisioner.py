"""`tljh-prewarm`: a LocalProvisioner whose kernels of the environment's own Python kernelspec are
forked from the server's kernel zygote (and those of the hub's environments.* from that
environment's zygote). Anything else, and any failure, starts as LocalProvisioner
does (a failure with one log line), so clients see an ordinary kernel either way."""

import os
import sys

from jupyter_client.provisioning import LocalProvisioner

from . import state
from .client import StillImporting, Unavailable
from .zygote import LAUNCHER_MODULE


# In the kernelspecs the hub's installer writes for environments.* (tljh_daemon/environments.py):
# that environment has this package too, so its kernels have a zygote of their own.
ENVIRONMENT_KEY = "tljh_environment"
PREWARM_KEY = "tljh_prewarm"


def unknown_spec(spec, cmd, kwargs):
    """Why this kernel is not one a zygote can fork (None when it is)."""
    metadata = getattr(spec, "metadata", None) or {}
    if metadata.get(ENVIRONMENT_KEY) and metadata.get(PREWARM_KEY) and cmd and os.path.isabs(cmd[0]):
        python = cmd[0]  # another environment's kernel: that environment's zygote
    else:
        python = sys.executable
        resource_dir = os.path.realpath(getattr(spec, "resource_dir", "") or "/")
        if os.path.commonpath([resource_dir, os.path.realpath(sys.prefix)]) != os.path.realpath(sys.prefix):
            return f"its kernelspec is not the environment's own ({resource_dir})"
    if cmd[:3] != [python, "-m", LAUNCHER_MODULE] or getattr(spec, "interrupt_mode", "signal") != "signal":
        return f"its command is not this Python's {LAUNCHER_MODULE} ({cmd[:3]})"
    extra = set(kwargs) - {"env", "cwd"}
    if extra:
        return f"it is launched with {sorted(extra)}"
    return None


class PrewarmProvisioner(LocalProvisioner):
    async def launch_kernel(self, cmd, **kwargs):
        cmd = [os.path.expanduser(s) for s in cmd]  # as jupyter_client's launcher does
        scrubbed = self._scrub_kwargs(kwargs)
        why = unknown_spec(self.kernel_spec, cmd, scrubbed) if state.enabled else "kernel pre-warm is off"
        if why is None:
            env = dict(scrubbed.get("env") or os.environ)
            env["JPY_PARENT_PID"] = str(os.getpid())
            cwd = scrubbed.get("cwd") or os.getcwd()
            try:
                self.process = await state.fork(cmd, env, os.fspath(cwd))
            except Unavailable as e:
                log = self.log.info if isinstance(e, StillImporting) else self.log.warning
                log("Kernel pre-warm: starting kernel %s fresh: %s", self.kernel_id, e)
            else:
                self.pid = self.pgid = self.process.pid  # the child called setsid() before answering
                self.cwd = cwd
                self.log.debug("Kernel pre-warm: forked kernel %s (pid %s)", self.kernel_id, self.pid)
                return self.connection_info
        else:
            self.log.debug("Kernel pre-warm: starting kernel %s as usual: %s", self.kernel_id, why)
        return await super().launch_kernel(cmd, **kwargs)
