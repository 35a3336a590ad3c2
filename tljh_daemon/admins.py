"""Admin rights kept in step: the hub's admin flag, `users.admin` in config, and membership of
the Unix group that grants sudo.

Demoting an admin (REST API, admin panel, or removing the name from `users.admin`) takes their
account out of the group at once; start-up reconciles every account with the database, so a
change made while the hub was down (or by an older version) is applied too.
"""

import grp
import json
import logging
import os

from . import accounts
from .server_state import ACTIVE, ServerState
from .users import valid_names

log = logging.getLogger(__name__)


async def set_admin(hub, name, admin):
    """Change `name`'s admin flag and their account's admins-group membership; a demoted
    admin's running server is restarted without admin rights. Returns what happened to the
    server (`demoted_server`), or None."""
    row = await hub.db.one("SELECT admin FROM users WHERE name=?", (name,))
    await hub.db.execute("UPDATE users SET admin=? WHERE name=?", (int(admin), name))
    await sync_account(hub, name, admin)
    if row is not None and row["admin"] and not admin:
        return await demoted_server(hub, name)
    return None


REASON = "no longer an admin: it ran with the admins group (sudo) and without NoNewPrivileges"


async def demoted_server(hub, name):
    """A server keeps the groups and privileges it started with, so a demoted admin's running
    or starting server is restarted without them. Returns a sentence for the admin, or None."""
    active = [server for server, row in (await hub.servers.store.of_user(name)).items() if row.state in ACTIVE]
    if not active:
        return None
    outcomes = [await hub.servers.restart(name, REASON, server) for server in active]  # named ones too
    if all(outcome == "restarted" for outcome in outcomes):
        return f"{name}'s running server was restarted without admin rights (sudo)."
    return f"{name}'s server was stopped (it had admin rights); it could not be started again right now."


def _groups_of(pid):
    """The supplementary group ids of process `pid` (/proc), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except (OSError, ValueError):
        return None
    return None


async def restart_servers_with_stale_rights(hub):
    """At start-up (after re-adopting servers): a running server of a non-admin whose process
    still holds the admins group (demoted while the hub was down, or by `tljh-config
    remove-item users.admin` and a reload) is restarted without it."""
    try:
        admins_gid = grp.getgrnam(accounts.ADMINS_GROUP).gr_gid
    except KeyError:
        return []
    rows = await hub.db.all(
        "SELECT s.user, s.spawner_state FROM servers s JOIN users u ON u.name = s.user "
        "WHERE s.state=? AND s.spawner_state IS NOT NULL AND u.admin=0", (ServerState.RUNNING,))
    restarted = []
    for row in rows:
        if row["user"] in restarted:
            continue  # demoted_server restarted all of this user's servers
        process = hub.spawner.process_of(json.loads(row["spawner_state"]))  # None: not on this machine
        groups = _groups_of(process.pid) if process is not None else None
        if groups and admins_gid in groups:
            log.warning("The server of %s still holds the group %s, but %s is not an admin: restarting it",
                        row["user"], accounts.ADMINS_GROUP, row["user"])
            await demoted_server(hub, row["user"])
            restarted.append(row["user"])
    return restarted


async def sync_account(hub, name, admin):
    """Grant the group only to accounts the hub makes (as spawns do); revoke it from any."""
    if admin and not hub.authenticator.creates_accounts:
        return
    try:
        await accounts.set_admin_group(hub.authenticator.system_username(name), admin)
    except accounts.AccountError as e:
        log.error("Could not %s admin rights of %s: %s", "grant" if admin else "revoke", name, e)


def _applied_path(hub):
    return os.path.join(hub.paths.state_dir, "config_admins.json")


def _load_applied(hub):
    try:
        with open(_applied_path(hub)) as f:
            return set(json.load(f))
    except (OSError, ValueError):
        return set()


def _save_applied(hub, names):
    tmp = _applied_path(hub) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(sorted(names), f)
    os.replace(tmp, _applied_path(hub))


async def reconcile(hub):
    """At start-up: apply `users.admin` (names removed since the last start lose admin, listed
    users who exist gain it), then make every account's group membership match the database."""
    listed = valid_names(hub.settings.auth.admin)

    def apply(db):
        for name in _load_applied(hub) - listed:
            if db.one("SELECT admin FROM users WHERE name=?", (name,)):
                log.info("%s is no longer in users.admin: removing admin rights", name)
                db.execute("UPDATE users SET admin=0 WHERE name=?", (name,))
        for name in listed:
            db.execute("UPDATE users SET admin=1 WHERE name=?", (name,))
        return db.all("SELECT name, admin FROM users")

    rows = await hub.db.run(apply)
    _save_applied(hub, listed)
    auth = hub.authenticator
    wanted = {
        auth.system_username(row["name"]): bool(row["admin"])
        for row in rows
        if auth.creates_accounts or not row["admin"]
    }
    try:
        await accounts.reconcile_admin_group(wanted)
    except accounts.AccountError as e:
        log.error("Could not bring the admins group in step with the hub: %s", e)
