"""Talking to systemd: is it PID 1, systemctl, and sd_notify (readiness and watchdog)."""

import asyncio
import logging
import os
import subprocess

log = logging.getLogger(__name__)


class SystemdError(RuntimeError):
    pass


def booted():
    """sd_booted(): true when systemd is the init system."""
    return os.path.isdir("/run/systemd/system")


def _failed(args, stderr):
    return SystemdError(f"systemctl {' '.join(args)} failed: {stderr.strip()}")


async def systemctl(*args, check=False):
    """systemctl from the event loop: (exit status, stdout); SystemdError on failure if `check`."""
    proc = await asyncio.create_subprocess_exec(
        "systemctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise _failed(args, err.decode())
    return proc.returncode, out.decode()


def run_systemctl(*args, check=True):
    """systemctl from the CLIs and the installer: its stdout; SystemdError on failure if `check`."""
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise _failed(args, result.stderr)
    return result.stdout


def _notify(message):
    from systemd import daemon  # systemd-python; only needed under a Type=notify unit

    daemon.notify(message)


async def notify_ready_and_keep_watchdog():
    """Tell systemd we are ready; then pet the watchdog from the event loop, so a
    blocked loop (not just a dead process) gets the daemon restarted."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return None
    _notify("READY=1")
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if not usec:
        return None

    async def pet():
        while True:
            await asyncio.sleep(usec / 2e6)
            _notify("WATCHDOG=1")

    return asyncio.create_task(pet())
