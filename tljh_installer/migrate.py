"""Taking over a machine that runs The Littlest JupyterHub (TLJH).

TLJH uses the same layout (<prefix>/{hub,user,config,state}), config.yaml keys, Unix
accounts (`jupyter-<name>`, groups jupyterhub-users/-admins) and server unit names
(`jupyter-<name>`). What differs is its hub: JupyterHub, with users and groups in
state/jupyterhub.sqlite, first-use passwords in state/passwords.dbm, and the systemd units
`jupyterhub` and `traefik`. bootstrap.py has already moved TLJH's hub environment aside
(to hub-tljh); this module keeps config.yaml, imports users, admin flags, groups and
passwords, keeps the user environment and the homes, stops and disables TLJH's units,
and writes down what it took over (state/migrated-from-tljh.txt, also printed).
Nothing of TLJH's is deleted: its database, hub environment and unit files stay.
"""

import dbm
import glob
import json
import logging
import os
import sqlite3
import subprocess
from dataclasses import dataclass, field

from tljh_daemon import config as config_mod
from tljh_daemon import compat, configfile, groups, systemd, users
from tljh_daemon.db import SyncDatabase

log = logging.getLogger("tljh_installer")

TLJH_DATABASE = "jupyterhub.sqlite"
TLJH_PASSWORDS = "passwords.dbm"
TLJH_UNITS = ("jupyterhub.service", "traefik.service")
UNIT_DIR = "/etc/systemd/system"
MARKER = "migrated-from-tljh.txt"


@dataclass
class TljhUsers:
    """What TLJH's JupyterHub database holds that we keep."""

    users: dict = field(default_factory=dict)  # name -> admin
    groups: dict = field(default_factory=dict)  # name -> (members, properties)


def pending(paths):
    """True when <prefix> holds a TLJH install not yet taken over."""
    state = paths.state_dir
    return os.path.exists(os.path.join(state, TLJH_DATABASE)) and not os.path.exists(os.path.join(state, MARKER))


def read_database(path):
    """Users, admin flags and groups from TLJH's jupyterhub.sqlite (opened read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        found = TljhUsers()
        for row in db.execute("SELECT id, name, admin FROM users ORDER BY name"):
            found.users[row["name"]] = bool(row["admin"])
        columns = {r["name"] for r in db.execute("PRAGMA table_info(groups)")}
        select = "SELECT id, name" + (", properties" if "properties" in columns else "") + " FROM groups"
        for row in db.execute(select + " ORDER BY name"):
            members = [r["name"] for r in db.execute(
                "SELECT u.name FROM users u JOIN user_group_map m ON m.user_id = u.id WHERE m.group_id = ?"
                " ORDER BY u.name", (row["id"],))]
            properties = row["properties"] if "properties" in columns else None
            found.groups[row["name"]] = (members, json.loads(properties) if properties else {})
        return found
    finally:
        db.close()


def read_passwords(state_dir):
    """FirstUseAuthenticator's bcrypt hashes (name -> hash), or None when they cannot be read."""
    path = os.path.join(state_dir, TLJH_PASSWORDS)
    if not glob.glob(path + "*"):
        return {}
    try:
        with dbm.open(path, "r") as store:
            return {key.decode(): store[key].decode() for key in store.keys()}
    except dbm.error + (OSError, UnicodeDecodeError) as e:
        log.warning("cannot read TLJH's passwords %s: %s", path, e)
        return None


def normalize_config(paths):
    """TLJH passes base_url to JupyterHub, which adds the trailing '/'; we require it."""
    changes = []
    with configfile.editing(paths.config_file) as config:
        base = config.get("base_url")
        if isinstance(base, str) and base and not base.endswith("/"):
            config["base_url"] = base + "/"
            changes.append(f"base_url {base!r} is now {base + '/'!r} (a trailing '/' is required here)")
    return changes


def stop_units(prefix):
    """Stop and disable TLJH's hub and proxy units (only those of this prefix), and the user
    servers TLJH's hub started (their routes go with TLJH's proxy; users start them again)."""
    if not systemd.booted():
        return [], []
    stopped = []
    for unit in TLJH_UNITS:
        path = os.path.join(UNIT_DIR, unit)
        try:
            with open(path) as f:
                if prefix not in f.read():
                    continue
        except OSError:
            continue
        result = subprocess.run(["systemctl", "disable", "--now", unit], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"could not stop and disable TLJH's {unit}: {result.stderr.strip()}")
        stopped.append(unit)
    listed = subprocess.run(["systemctl", "list-units", "--plain", "--no-legend", "--state=active", "jupyter-*"],
                            capture_output=True, text=True).stdout
    servers = [line.split()[0] for line in listed.splitlines() if line.strip()]
    for unit in servers:
        subprocess.run(["systemctl", "stop", unit], capture_output=True, text=True)
    return stopped, servers


def import_users(paths, found, passwords):
    """Users (with admin flags), groups and first-use passwords into our database."""
    paths.ensure()
    db = SyncDatabase(paths.database)
    imported_passwords = []
    try:
        with db.transaction():
            for name, admin in found.users.items():
                users.ensure_user(db, name, admin=admin)
                hashed = (passwords or {}).get(name)
                if hashed:
                    db.execute("UPDATE users SET password_hash=? WHERE name=? AND password_hash IS NULL",
                               (hashed, name))
                    imported_passwords.append(name)
            for name, (members, properties) in found.groups.items():
                if groups.get(db, name) is None:
                    groups.create(db, name, properties)
                groups.add_members(db, name, members)
    finally:
        db.close()
    return imported_passwords


def take_over(paths):
    """Everything but the user environment (see keeps_user_env); returns the summary lines."""
    found = read_database(os.path.join(paths.state_dir, TLJH_DATABASE))
    passwords = read_passwords(paths.state_dir)
    summary = [f"config.yaml kept: {paths.config_file}"]
    try:  # before anything of TLJH's is stopped
        summary += normalize_config(paths)
        config_mod.load(paths.config_file)
    except config_mod.ConfigError as e:
        raise config_mod.ConfigError(e.key, f"{e}. TLJH's config.yaml has a setting this hub cannot apply: "
                                            f"change it in {paths.config_file} and run bootstrap.py again "
                                            "(TLJH was left running)") from None
    stopped, servers = stop_units(paths.prefix)
    with_passwords = import_users(paths, found, passwords)
    admins = [n for n, a in found.users.items() if a]
    summary.append(f"{len(found.users)} user(s): {', '.join(found.users) or 'none'}")
    summary.append(f"admins: {', '.join(admins) or 'none'}")
    for name, (members, _) in found.groups.items():
        summary.append(f"group {name}: {', '.join(members) or 'no members'}")
    if passwords is None:
        summary.append("first-use passwords NOT imported (state/passwords.dbm unreadable): users set a new "
                       "one at their next login, so ask them to log in soon")
    elif with_passwords:
        summary.append(f"first-use passwords of: {', '.join(with_passwords)}")
    summary.append("home directories and Unix accounts (jupyter-<name>) kept as they are")
    if systemd.booted():
        summary.append(f"TLJH's units stopped and disabled: {', '.join(stopped) or 'none found'}")
        if servers:
            summary.append(f"running user servers stopped (users start them again): {', '.join(servers)}")
    else:
        summary.append("no systemd here: no TLJH units to stop")
    kept = sorted(glob.glob(os.path.join(paths.prefix, "hub-tljh*")))
    if kept:
        summary.append(f"TLJH's hub environment kept at {', '.join(kept)}; its database at "
                       f"{os.path.join(paths.state_dir, TLJH_DATABASE)} (delete them once satisfied)")
    return summary


def keeps_user_env(paths):
    """A user environment that has jupyterhub-singleuser (TLJH's conda env, or a venv) is used as
    it is: we run its jupyterhub-singleuser instead of rebuilding it."""
    return os.access(os.path.join(paths.user_env, "bin", "jupyterhub-singleuser"), os.X_OK)


def conda_environments(paths):
    """The environments admins made inside TLJH's conda user environment (`conda create -n`),
    each a candidate for environments.<name>.path."""
    envs_dir = os.path.join(paths.user_env, "envs")
    try:
        names = os.listdir(envs_dir)
    except OSError:
        return []
    return sorted(n for n in names if os.access(os.path.join(envs_dir, n, "bin", "python"), os.X_OK))


def user_env_line(paths):
    if keeps_user_env(paths):
        version = compat.installed_jupyterhub_version(paths.user_env)
        line = (f"user environment kept as it is: {paths.user_env} (jupyterhub {version}); "
                "its jupyterhub-singleuser runs the servers")
        if os.path.isdir(os.path.join(paths.user_env, "conda-meta")):
            inside = conda_environments(paths)
            line += ("; it is a conda environment" + (f" holding {', '.join(inside)}" if inside else "")
                     + ": list one as a kernel of its own with environments.<name>.path (docs/howto-environments.md)")
        return line
    return f"{paths.user_env} has no jupyterhub-singleuser: the user environment is built there"


def record(paths, summary):
    """Write the summary down; its presence also marks the takeover done (re-runs skip it)."""
    path = os.path.join(paths.state_dir, MARKER)
    with open(path, "w") as f:
        f.write("Taken over from The Littlest JupyterHub:\n" + "".join(f"- {line}\n" for line in summary))
    return path
