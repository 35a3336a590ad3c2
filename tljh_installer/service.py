"""Running the hub after install: under systemd where it is PID 1, else process mode."""

import os
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil

from tljh_daemon import config as config_mod
from tljh_daemon import pidfile


UNITS = ("tljh-traefik.service", "tljh-daemon.service")
UNIT_DIR = "/etc/systemd/system"
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "units")


def render_units(paths):
    """{unit name: content} from the templates in tljh_installer/units/."""
    rendered = {}
    for unit in UNITS:
        with open(os.path.join(TEMPLATES, unit)) as f:
            rendered[unit] = string.Template(f.read()).substitute(prefix=paths.prefix, hub_env=paths.hub_env)
    return rendered


def systemctl(*args):
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def write_traefik_static_config(paths):
    """So Traefik's unit can start before the daemon ever ran. True when the file changed."""
    from tljh_daemon.proxy.traefik import TraefikProxy

    paths.ensure()
    return TraefikProxy(paths, config_mod.load(paths.config_file), "traefik").write_static_config()


def units_prefix():
    """The prefix the installed tljh-daemon unit serves, or None when there is none."""
    try:
        with open(os.path.join(UNIT_DIR, "tljh-daemon.service")) as f:
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


def restart_systemd_mode(paths):
    """Install the units; (re)start the daemon. User servers are separate units and keep running;
    Traefik (and so every open connection) is restarted only when its unit or config changed."""
    changed = []
    for unit, content in render_units(paths).items():
        path = os.path.join(UNIT_DIR, unit)
        old = open(path).read() if os.path.exists(path) else None
        if old != content:
            with open(path, "w") as f:
                f.write(content)
            changed.append(unit)
    if changed:
        systemctl("daemon-reload")
    traefik_config_changed = write_traefik_static_config(paths)
    systemctl("enable", *UNITS)
    restart_traefik = traefik_config_changed or "tljh-traefik.service" in changed
    systemctl("restart" if restart_traefik else "start", "tljh-traefik.service")
    systemctl("restart", "tljh-daemon.service")


def daemon_command(paths):
    return [os.path.join(os.path.dirname(sys.executable), "tljh-daemon"), "run", "--prefix", paths.prefix]


def running_daemon_pid(paths):
    proc, _ = pidfile.identify(paths)
    return proc.pid if proc is not None else None


def restart_process_mode(paths):
    """(Re)start the daemon in the background. User servers and Traefik keep running."""
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
        proc = subprocess.Popen(daemon_command(paths), stdin=subprocess.DEVNULL, stdout=fd,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    finally:
        os.close(fd)
    return proc, log_path


def hub_url(paths):
    """Where the hub answers through Traefik: origin and base_url (no trailing slash)."""
    config = config_mod.load(paths.config_file)
    host = config["http"]["address"] or "127.0.0.1"
    return f"http://{host}:{config['http']['port']}{config['base_url'][:-1]}"


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_for_hub(paths, timeout=120, proc=None, log_path=None):
    """Until the hub answers through Traefik; fail fast if the daemon exits."""
    url = hub_url(paths) + "/hub/api"
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the hub daemon exited with status {proc.returncode}:\n{log_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"the hub did not answer at {url} within {timeout}s ({last})")
