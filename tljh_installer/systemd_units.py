"""Installing the hub's systemd units (from the templates in units/) and (re)starting them.

What the daemon and the CLIs also need (unit names, the pid file, restart and wait) is in
tljh_daemon.service; only writing the units is the installer's own.
"""

import os
import string

from tljh_daemon import config as config_mod
from tljh_daemon.service import DAEMON_UNIT, TRAEFIK_UNIT, UNIT_DIR, UNITS
from tljh_daemon.systemd import run_systemctl

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "units")


def render_units(paths):
    """{unit name: content} from the templates in tljh_installer/units/."""
    rendered = {}
    for unit in UNITS:
        with open(os.path.join(TEMPLATES, unit)) as f:
            rendered[unit] = string.Template(f.read()).substitute(prefix=paths.prefix, hub_env=paths.hub_env)
    return rendered


def write_traefik_static_config(paths):
    """So Traefik's unit can start before the daemon ever ran. True when the file changed."""
    from tljh_daemon.proxy.traefik import TraefikProxy
    from tljh_daemon.settings import proxy_settings

    paths.ensure()
    return TraefikProxy(paths, proxy_settings(config_mod.load(paths.config_file)), "traefik").write_static_config()


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
        run_systemctl("daemon-reload")
    traefik_config_changed = write_traefik_static_config(paths)
    run_systemctl("enable", *UNITS)
    restart_traefik = traefik_config_changed or TRAEFIK_UNIT in changed
    run_systemctl("restart" if restart_traefik else "start", TRAEFIK_UNIT)
    run_systemctl("restart", DAEMON_UNIT)
