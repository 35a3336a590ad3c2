"""The hub as a service: its systemd units, its running daemon, (re)starting it and waiting for it.

Shared by `tljh-daemon stop`, `tljh-config reload` and the installer, so each knows the
same unit names, daemon (through its pid file, see pidfile.py) and start-up check. Under systemd (PID 1) the hub is two units,
`tljh-traefik` and `tljh-daemon`; without it ("process mode") the daemon runs in the
background, found through its pid file. The installer writes the units from its templates.
"""

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil

from . import config as config_mod
from . import pidfile, systemd, urls

UNITS = ("tljh-traefik.service", "tljh-daemon.service")
DAEMON_UNIT = "tljh-daemon.service"
TRAEFIK_UNIT = "tljh-traefik.service"
UNIT_DIR = "/etc/systemd/system"


# -- systemd mode ------------------------------------------------------------------------


def units_prefix():
    """The prefix the installed tljh-daemon unit serves, or None when there is none."""
    try:
        with open(os.path.join(UNIT_DIR, DAEMON_UNIT)) as f:
            for line in f:
                if line.startswith("Environment=TLJH_INSTALL_PREFIX="):
                    return line.strip().split("=", 2)[2]
    except FileNotFoundError:
        pass
    return None


def check_units_prefix(paths):
    """The units (and the jupyter-<name> unit names) are machine-wide: one install per machine."""
    other = units_prefix()
    if other is not None and other != paths.prefix:
        raise RuntimeError(
            f"this machine's tljh-daemon and tljh-traefik units already serve the install at {other}; "
            f"under systemd there can be only one install per machine (re-run with --prefix {other} to upgrade it)"
        )


def unit_loaded(unit):
    """systemd knows `unit` (installed, or a live transient unit such as the servers' slice)."""
    return "LoadState=loaded" in systemd.run_systemctl("show", unit, "--property=LoadState", check=False)


def daemon_unit_installed():
    """The daemon runs as a unit here (systemd is PID 1 and the unit is installed)."""
    return systemd.booted() and unit_loaded(DAEMON_UNIT)


def stop_units(servers):
    """Stop the hub's units, with `servers` also the slice holding every jupyter-<name> unit;
    returns the units stopped. (A SIGTERM would only get the daemon restarted: Restart=always.)"""
    from .spawner.systemd import SLICE

    units = list(UNITS)
    if servers and unit_loaded(SLICE):
        units.append(SLICE)
    systemd.run_systemctl("stop", *units)
    return units


# -- process mode ------------------------------------------------------------------------


def running_daemon_pid(paths):
    """The pid of this install's running daemon (checked, not just read from the file), or None."""
    proc, _ = pidfile.identify(paths)
    return proc.pid if proc is not None else None


def daemon_command(paths):
    return [os.path.join(os.path.dirname(sys.executable), "tljh-daemon"), "run", "--prefix", paths.prefix]


def restart_process_mode(paths):
    """(Re)start the daemon in the background. User servers and Traefik keep running.
    Returns the new daemon's Popen and its log file."""
    pid = running_daemon_pid(paths)
    if pid:
        os.kill(pid, signal.SIGTERM)
        try:
            psutil.Process(pid).wait(30)
        except psutil.Error:
            pass
    os.makedirs(paths.logs_dir, mode=0o700, exist_ok=True)
    log_path = os.path.join(paths.logs_dir, "daemon.log")
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        # In <prefix>/state, as the systemd unit's WorkingDirectory (and TLJH's hub); the daemon
        # changes into it too, this makes it so from its first instruction.
        proc = subprocess.Popen(daemon_command(paths), stdin=subprocess.DEVNULL, stdout=fd,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                cwd=paths.state_dir, env={**os.environ, "TLJH_INSTALL_PREFIX": paths.prefix})
    finally:
        os.close(fd)
    return proc, log_path


# -- waiting for the hub -----------------------------------------------------------------


def hub_url(paths):
    """Where people reach the hub: https when it is on, origin and base_url (no trailing slash)."""
    config = config_mod.load(paths.config_file)
    https = config["https"]
    if https["enabled"]:
        url = urls.site_url(config["base_url"], host=https["address"], port=https["port"], https=True,
                            domains=https["letsencrypt"]["domains"])
    else:
        url = urls.site_url(config["base_url"], host=config["http"]["address"], port=config["http"]["port"])
    return url[:-1]


def check_url(config):
    """Where the installer checks that the hub answers through Traefik: on loopback (or the
    address Traefik listens on), at HTTPS's port when it is on, so that no redirect is
    followed, and with the TLS context to use (None for plain HTTP).

    The certificate is not checked there: it is made for the machine's public name (or is
    still Traefik's default while an ACME certificate is on its way), never for 127.0.0.1; the
    check only asks whether Traefik and the daemon answer, and sends no secret."""
    https = config["https"]
    if https["enabled"]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        host, port, scheme = https["address"], https["port"], "https"
    else:
        context, host, port, scheme = None, config["http"]["address"], config["http"]["port"], "http"
    host = host or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{config['base_url']}hub/api", context


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_for_hub(paths, timeout=120, proc=None, log_path=None):
    """Until the hub answers through Traefik; fail fast if the daemon (`proc`) exits."""
    url, context = check_url(config_mod.load(paths.config_file))
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the hub daemon exited with status {proc.returncode}:\n{log_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"the hub did not answer at {url} within {timeout}s ({last})")
