"""Undo an install: stop everything, remove what the installer put on the machine, keep the
users' data unless asked.

`sudo <prefix>/hub/bin/tljh-daemon uninstall` (see cli.py): part of the daemon's package, so
it works without the installer. Homes and Unix
accounts stay (so does everything in them) unless --remove-users; shared folders and the
Debian packages plugins asked for always stay. Every step says what it removed or kept.
"""

import grp
import os
import pwd
import shutil
import subprocess
import sys

from . import config as config_mod
from . import service, shared_folders, systemd
from . import users as users_mod
from .accounts import ADMINS_GROUP, USERS_GROUP, delete_account
from .paths import DEFAULT_PREFIX, SUDOERS_FILE, profile_script


class Report:
    def __init__(self, echo):
        self.echo = echo
        self.removed, self.kept = [], []

    def remove(self, what):
        self.removed.append(what)
        self.echo(f"removed: {what}")

    def keep(self, what):
        self.kept.append(what)
        self.echo(f"kept:    {what}")


def _hub_accounts(paths):
    """[(hub user, Unix account)] of this install's users whose accounts the hub made
    (`jupyter-...`; PAM/LDAP users' own accounts are never the hub's to remove)."""
    if not os.path.exists(paths.database):
        return []
    from .db import Database

    db = Database(paths.database)
    try:
        names = [row["name"] for row in db.all("SELECT name FROM users ORDER BY name")]
    finally:
        db.close()
    found = []
    for name in names:
        account = users_mod.system_username(name)
        if not account.startswith("jupyter-"):
            continue
        try:
            entry = pwd.getpwnam(account)
        except KeyError:
            continue
        found.append((name, entry))
    return found


def _stop(paths, report):
    if systemd.booted() and service.units_prefix() == paths.prefix:
        from .spawner.systemd import SLICE

        systemd.run_systemctl("stop", SLICE, *service.UNITS, check=False)
        systemd.run_systemctl("disable", *service.UNITS, check=False)
        for unit in service.UNITS:
            path = os.path.join(service.UNIT_DIR, unit)
            if os.path.exists(path):
                os.unlink(path)
        systemd.run_systemctl("daemon-reload", check=False)
        report.remove(f"systemd units {', '.join(service.UNITS)} (stopped, disabled, deleted); "
                      f"user servers ({SLICE}) stopped")
        return
    daemon = [sys.executable, "-m", "tljh_daemon", "stop", "--prefix", paths.prefix]
    result = subprocess.run(daemon, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"could not stop the hub: {result.stderr.strip() or result.stdout.strip()}")
    report.remove("the hub daemon, Traefik and the user servers (stopped)")


def uninstall(paths, remove_users=False, echo=print):
    report = Report(echo)
    if not os.path.isdir(paths.prefix):
        raise RuntimeError(f"nothing is installed at {paths.prefix}")
    try:
        config = config_mod.merge(config_mod.DEFAULTS, config_mod.load_yaml(paths.config_file))
    except config_mod.ConfigError:
        config = config_mod.DEFAULTS
    accounts = _hub_accounts(paths)

    _stop(paths, report)

    if paths.prefix == DEFAULT_PREFIX:
        if os.path.exists(SUDOERS_FILE):
            os.unlink(SUDOERS_FILE)
            report.remove(f"{SUDOERS_FILE} (admins' sudo rights)")
    elif os.path.exists(SUDOERS_FILE):
        report.keep(f"{SUDOERS_FILE}: shared by every install on this machine; this one is not "
                    f"at {DEFAULT_PREFIX}")
    script = profile_script(paths)
    if os.path.exists(script):
        os.unlink(script)
        report.remove(f"{script} (the user environment on login shells' PATH)")
    link = "/usr/local/bin/tljh-config"
    if os.path.islink(link) and os.path.realpath(link).startswith(os.path.realpath(paths.prefix) + os.sep):
        os.unlink(link)
        report.remove(link)

    shutil.rmtree(paths.prefix)
    report.remove(f"{paths.prefix} (hub and user environments, config.yaml, database, logs, plugins)")

    if remove_users:
        for name, entry in accounts:
            delete_account(entry.pw_name)
            report.remove(f"Unix account {entry.pw_name} and its home {entry.pw_dir} (user {name})")
        for group in (ADMINS_GROUP, USERS_GROUP):
            try:
                members = grp.getgrnam(group).gr_mem
            except KeyError:
                continue
            if members:  # accounts of another install on this machine, or added by hand
                report.keep(f"group {group} (still has members: {', '.join(members)})")
            elif subprocess.run(["groupdel", group], capture_output=True).returncode == 0:
                report.remove(f"group {group}")
    elif accounts:
        report.keep(f"{len(accounts)} Unix account(s) and their homes: "
                    f"{', '.join(entry.pw_name for _, entry in accounts)} (--remove-users removes them)")
    for name, path, _, _ in shared_folders.folders(config):
        if os.path.exists(path):
            report.keep(f"shared folder {name} at {path}")
    report.keep("Debian packages installed for the hub or its plugins (apt-get remove them if unused)")
    return report
