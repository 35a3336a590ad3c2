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
from . import install_marker, service, shared_folders, systemd
from . import users as users_mod
from .accounts import ADMINS_GROUP, USERS_GROUP, delete_account, made_by
from .paths import DEFAULT_PREFIX, SUDOERS_FILE, profile_script

PARENT_SLICE = "tljh.slice"  # systemd makes it for tljh-users.slice


class Report:
    def __init__(self, echo):
        self.echo = echo
        self.removed, self.kept = [], []

    def remove(self, what):
        self.removed.append(what)
        self.echo(f"removed: {what}")

    def stopped(self, what):
        self.removed.append(what)
        self.echo(f"stopped: {what}")

    def keep(self, what):
        self.kept.append(what)
        self.echo(f"kept:    {what}")


def _hub_accounts(paths):
    """[(hub user or None, passwd entry)] of the Unix accounts this install made: `jupyter-...`
    accounts of the users in its database, and every account carrying its comment
    (`accounts.made_by`), also those made before a reinstall emptied the database.
    PAM/LDAP users' own accounts are never the hub's to remove."""
    names = []
    if os.path.exists(paths.database):
        from .db import SyncDatabase

        db = SyncDatabase(paths.database)  # no event loop here
        try:
            names = [row["name"] for row in db.all("SELECT name FROM users ORDER BY name")]
        finally:
            db.close()
    found = {}
    for name in names:
        account = users_mod.system_username(name)
        if not account.startswith("jupyter-"):
            continue
        try:
            found[account] = (name, pwd.getpwnam(account))
        except KeyError:
            continue
    tag = made_by(paths.prefix)
    for entry in pwd.getpwall():
        if entry.pw_name.startswith("jupyter-") and entry.pw_gecos == tag and entry.pw_name not in found:
            found[entry.pw_name] = (None, entry)
    return [found[account] for account in sorted(found)]


def _stop(paths, report):
    if systemd.booted() and service.units_prefix() == paths.prefix:
        from .spawner.systemd import SLICE

        slices = [s for s in (SLICE, PARENT_SLICE) if service.unit_loaded(s)]
        systemd.run_systemctl("stop", *slices, *service.UNITS, check=False)
        systemd.run_systemctl("disable", *service.UNITS, check=False)
        for unit in service.UNITS:
            path = os.path.join(service.UNIT_DIR, unit)
            if os.path.exists(path):
                os.unlink(path)
        systemd.run_systemctl("daemon-reload", check=False)
        report.remove(f"systemd units {', '.join(service.UNITS)} (stopped, disabled, deleted)")
        if slices:
            report.stopped(f"the user servers' slices {' and '.join(slices)} (transient: "
                           f"systemd forgets them once stopped)")
        return
    daemon = [sys.executable, "-m", "tljh_daemon", "stop", "--prefix", paths.prefix]
    result = subprocess.run(daemon, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"could not stop the hub: {result.stderr.strip() or result.stdout.strip()}")
    for line in result.stdout.splitlines():  # only what `stop` really stopped or removed
        if line.startswith("Stopped "):
            report.stopped(line[len("Stopped "):])
        elif line.startswith("Removed "):
            report.remove(line[len("Removed "):])
        elif line.strip():
            report.echo(f"note:    {line}")


def _shared_folder_groups(config):
    """Groups that shared folders name, other than the hub's own two: made by the hub if they
    were missing, kept with the folders they give access to."""
    groups = set()
    for _, _, readers, writers in shared_folders.folders(config):
        groups.update((readers, writers))
    return sorted(g for g in groups - {ADMINS_GROUP, USERS_GROUP} if _group_exists(g))


def _group_exists(group):
    try:
        grp.getgrnam(group)
        return True
    except KeyError:
        return False


def uninstall(paths, remove_users=False, echo=print):
    report = Report(echo)
    try:
        real_prefix = install_marker.check(paths.prefix)
    except install_marker.NotAnInstall as e:
        raise RuntimeError(str(e)) from None
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

    shutil.rmtree(real_prefix)
    if os.path.islink(paths.prefix):
        os.unlink(paths.prefix)
    report.remove(f"{paths.prefix} (hub and user environments, config.yaml, database, logs, plugins)")

    if remove_users:
        for name, entry in accounts:
            delete_account(entry.pw_name)
            whose = f"user {name}" if name else "made by this install, not in its database"
            report.remove(f"Unix account {entry.pw_name} and its home {entry.pw_dir} ({whose})")
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
    for group in _shared_folder_groups(config):
        report.keep(f"group {group} (named by a shared folder; groupdel {group} once its folder is gone)")
    report.keep("Debian packages installed for the hub or its plugins (apt-get remove them if unused)")
    return report
