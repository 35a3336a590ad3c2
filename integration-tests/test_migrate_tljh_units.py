"""Taking over TLJH on a booted systemd: TLJH's units `jupyterhub` and `traefik` (running,
enabled) and a user server unit it started are stopped, the two units disabled, and the
hub answers with TLJH's users. (tests/test_migrate_tljh.py covers the rest with real
JupyterHub in process mode; here TLJH's programs are stand-ins, its units and files real.)
"""

import os
import textwrap

import requests

import harness

PREFIX = "/opt/tljh"

TLJH_UNIT = """\
[Unit]
Description=TLJH's {what} (a stand-in)
[Service]
Environment=TLJH_INSTALL_PREFIX={prefix}
WorkingDirectory={prefix}/state
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""

# JupyterHub's tables, with the columns the takeover reads.
TLJH_DATABASE = textwrap.dedent("""\
    import sqlite3
    db = sqlite3.connect('{prefix}/state/jupyterhub.sqlite')
    db.executescript('''
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, admin BOOLEAN);
        CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT, properties TEXT);
        CREATE TABLE user_group_map (user_id INTEGER, group_id INTEGER);
        INSERT INTO users VALUES (1, 'teacher', 1), (2, 'ann', 0);
        INSERT INTO groups VALUES (1, 'class-a', '{{}}');
        INSERT INTO user_group_map VALUES (1, 1), (2, 1);
    ''')
    db.commit()
""")


def test_tljh_units_are_stopped_and_disabled(container_factory):
    container = container_factory()
    ports = set()
    while len(ports) < 3:
        ports.add(harness.free_port())
    http_port, hub_port, api_port = sorted(ports)
    root = container.root
    for sub in ("config", "state", "hub/bin"):
        os.makedirs(os.path.join(root, PREFIX.lstrip("/"), sub), exist_ok=True)
    with open(os.path.join(root, PREFIX.lstrip("/"), "config", "config.yaml"), "w") as f:
        f.write(f"# TLJH's config\nhttp:\n  port: {http_port}\nhub:\n  port: {hub_port}\n"
                f"traefik_api:\n  port: {api_port}\n")
    jupyterhub = os.path.join(root, PREFIX.lstrip("/"), "hub", "bin", "jupyterhub")  # TLJH's hub environment
    with open(jupyterhub, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(jupyterhub, 0o755)
    for unit, what in (("jupyterhub.service", "hub"), ("traefik.service", "proxy")):
        with open(os.path.join(root, "etc/systemd/system", unit), "w") as f:
            f.write(TLJH_UNIT.format(what=what, prefix=PREFIX))
    container.run(["python3", "-c", TLJH_DATABASE.format(prefix=PREFIX)])
    container.run(["systemctl", "daemon-reload"])
    container.run(["systemctl", "enable", "--now", "jupyterhub.service", "traefik.service"])
    container.run(["systemd-run", "--unit", "jupyter-ann", "/bin/sleep", "infinity"])  # a server TLJH started

    result = container.run(["python3", "/src/bootstrap.py"], check=False, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("Taken over from The Littlest JupyterHub:", 1)[1]
    assert "TLJH's units stopped and disabled: jupyterhub.service, traefik.service" in summary
    assert "running user servers stopped (users start them again): jupyter-ann.service" in summary
    assert "admins: teacher" in summary and "group class-a: ann, teacher" in summary
    for unit in ("jupyterhub.service", "traefik.service", "jupyter-ann.service"):
        state = container.run(["systemctl", "is-active", unit], check=False).stdout.strip()
        assert state in ("inactive", "failed"), (unit, state)
    for unit in ("jupyterhub.service", "traefik.service"):
        assert container.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "disabled"
    assert os.path.exists(os.path.join(root, PREFIX.lstrip("/"), "hub-tljh", "bin", "jupyterhub"))
    assert container.run(["systemctl", "is-active", "tljh-daemon"]).stdout.strip() == "active"
    r = requests.get(f"http://127.0.0.1:{http_port}/hub/api", timeout=10)
    assert r.status_code == 200
