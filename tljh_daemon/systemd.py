"""Talking to systemd: is it PID 1, systemctl, sd_notify (readiness and watchdog), and the
manager's D-Bus API (transient scopes; jeepney, pure Python, on the event loop)."""

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


MANAGER = ("/org/freedesktop/systemd1", "org.freedesktop.systemd1", "org.freedesktop.systemd1.Manager")


async def _manager_call(method, signature=None, body=(), timeout=30.0):
    """One method call to systemd's manager over the system bus (a connection of its own: calls
    are rare, a spawn at most); its reply body. SystemdError on failure."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.asyncio import open_dbus_router
    from jeepney.io.common import RouterClosed
    from jeepney.wrappers import DBusErrorResponse, Properties, unwrap_msg

    path, bus_name, interface = MANAGER
    manager = DBusAddress(path, bus_name=bus_name, interface=interface)
    if method == "Get":
        msg = Properties(manager).get(body[0])
    else:
        msg = new_method_call(manager, method, signature, body)
    try:
        async with open_dbus_router(bus="SYSTEM") as router:
            return unwrap_msg(await asyncio.wait_for(router.send_and_get_reply(msg), timeout))
    except DBusErrorResponse as e:
        detail = e.data[0] if e.data and isinstance(e.data[0], str) else e.name
        raise SystemdError(f"{method} failed: {detail}") from None
    except (OSError, EOFError, ValueError, RouterClosed, asyncio.TimeoutError) as e:  # ValueError: auth, size
        raise SystemdError(f"{method}: no answer from systemd on the system bus ({e or type(e).__name__})") from None


async def manager_version():
    """systemd's version number (252 for "252.39-1~deb12u2")."""
    (value,) = await _manager_call("Get", body=("Version",))
    digits = "".join(ch for ch in str(value[1]).split(".")[0] if ch.isdigit())
    return int(digits or 0)


async def start_scope(name, pids, properties, timeout=30.0):
    """StartTransientUnit: the transient scope `name` holding `pids`, with `properties`
    ([(name, (D-Bus signature, value)), ...]). Returns once systemd queued the job; the
    processes are moved when it runs (see `in_unit`)."""
    props = [("PIDs", ("au", [int(p) for p in pids])), *properties]
    await _manager_call("StartTransientUnit", "ssa(sv)a(sa(sv))", (name, "fail", props, []), timeout)


def in_unit(pid, unit):
    """Whether process `pid` is in `unit`'s cgroup (any hierarchy: v1's name=systemd or v2)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return any(line.rstrip("\n").endswith("/" + unit) for line in f)
    except OSError:
        return False


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
