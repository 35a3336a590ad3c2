"""Unix accounts for hub users: created on first spawn with a private home."""

from __future__ import annotations

import asyncio
import concurrent.futures
import grp
import logging
import os
import pwd
import subprocess
import threading
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)

USERS_GROUP = "jupyterhub-users"
ADMINS_GROUP = "jupyterhub-admins"


class AccountError(Exception):
    pass


# useradd, usermod and groupadd lock /etc/passwd and /etc/group, and one that finds the lock taken
# sleeps a whole second before it tries again: in a class start, 30 concurrent useradds made even
# the first user wait ~5 s for an account. So one command at a time; and accounts are created by a
# thread of their own, in arrival order, so the first user's is made first and the creations queued
# behind it do not fill the default executor that the spawn's other steps (hooks) run in.
_account_db = threading.RLock()
_creator = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounts")


def _run(*cmd):
    with _account_db:
        result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AccountError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")


def _ensure_group(group):
    with _account_db:
        try:
            grp.getgrnam(group)
        except KeyError:
            _run("groupadd", "--system", group)


def _existing_account(username, groups):
    """The passwd entry of `username` when it exists and is in all `groups` (nothing to do), else None."""
    try:
        entry = pwd.getpwnam(username)
        if all(username in grp.getgrnam(group).gr_mem for group in groups):
            return entry
    except KeyError:
        pass
    return None


def made_by(prefix):
    """The comment (GECOS) of the accounts the install at `prefix` makes: how `uninstall
    --remove-users` finds them all, also those made before a reinstall emptied the database."""
    return f"JupyterHub user (tljh {prefix})"


def _ensure_account(username, groups, comment=None):
    try:
        pwd.getpwnam(username)
        created = False
    except KeyError:
        tag = ["--comment", comment] if comment and not set(comment) & set(":\n") else []
        with _account_db:
            for group in groups:
                _ensure_group(group)
            _run("useradd", "--create-home", "--shell", "/bin/bash", "--groups", ",".join(groups), *tag, username)
        created = True
    entry = pwd.getpwnam(username)
    if created:
        os.chmod(entry.pw_dir, 0o700)
    for group in groups:
        _ensure_group(group)
        if username not in grp.getgrnam(group).gr_mem:
            _run("usermod", "--append", "--groups", group, username)
    return created


class EnsureAccount(Protocol):
    """The Unix-account step of a spawn: `ensure_account` below (the fast tier passes a fake)."""

    async def __call__(self, username: str, *, admin: bool = False, extra_groups: Iterable[str] = (),
                       create: bool = True) -> tuple[pwd.struct_passwd, bool]: ...


async def ensure_account(username: str, *, admin: bool = False, extra_groups: Iterable[str] = (),
                         create: bool = True, comment: str | None = None) -> tuple[pwd.struct_passwd, bool]:
    """Make sure `username` exists (creating it when `create`), in the hub's groups.

    Returns (passwd entry, whether it was created now). Blocking commands run in a thread.
    """
    if not create:
        try:
            return pwd.getpwnam(username), False
        except KeyError:
            raise AccountError(f"there is no Unix account named {username!r}") from None
    groups = [USERS_GROUP, *([ADMINS_GROUP] if admin else []), *extra_groups]
    entry = await asyncio.to_thread(_existing_account, username, groups)
    if entry is not None:  # a returning user does not queue behind a class's new accounts
        return entry, False
    created = await asyncio.get_running_loop().run_in_executor(_creator, _ensure_account, username, groups, comment)
    if created:
        log.info("Created Unix account %s", username)
    return pwd.getpwnam(username), created


def account_step(prefix) -> EnsureAccount:
    """`ensure_account` for the install at `prefix`: the accounts it makes carry `made_by(prefix)`."""
    comment = made_by(prefix)

    async def ensure(username: str, *, admin: bool = False, extra_groups: Iterable[str] = (),
                     create: bool = True) -> tuple[pwd.struct_passwd, bool]:
        return await ensure_account(username, admin=admin, extra_groups=extra_groups, create=create,
                                    comment=comment)
    return ensure


def delete_account(username):
    """Remove an account and its home (used by tests and user deletion)."""
    subprocess.run(["userdel", "--remove", username], capture_output=True)


def _remove_account(username):
    try:
        pwd.getpwnam(username)
    except KeyError:
        return False
    # --force: a kernel that outlived its server must not keep the account (and its files) alive.
    _run("userdel", "--remove", "--force", username)
    return True


async def remove_account(username):
    """Remove a Unix account and its home (temporary users). False when there was none."""
    removed = await asyncio.to_thread(_remove_account, username)
    if removed:
        log.info("Removed Unix account %s and its home", username)
    return removed


def _set_admin_group(username, admin):
    try:
        pwd.getpwnam(username)
    except KeyError:
        return False  # no account yet: the group is set when it is made
    try:
        members = grp.getgrnam(ADMINS_GROUP).gr_mem
    except KeyError:
        if not admin:
            return False
        _ensure_group(ADMINS_GROUP)
        members = []
    if admin and username not in members:
        _run("usermod", "--append", "--groups", ADMINS_GROUP, username)
    elif not admin and username in members:
        _run("gpasswd", "--delete", username, ADMINS_GROUP)
    else:
        return False
    return True


async def set_admin_group(username, admin):
    """Put an existing account in the admins group (which grants sudo) or take it out.

    True when the membership changed. Running processes keep the groups they started with."""
    changed = await asyncio.to_thread(_set_admin_group, username, admin)
    if changed:
        log.info("%s %s %s the group %s", "Added" if admin else "Removed", username,
                 "to" if admin else "from", ADMINS_GROUP)
    return changed


def admin_group_drift(wanted):
    """[(account, admin)] changes that would make the admins group match `wanted`
    ({account: admin?}), for accounts that exist. One group lookup, plus one passwd lookup per
    admin not yet in the group (admins are few), so it is cheap enough for the event loop."""
    try:
        members = set(grp.getgrnam(ADMINS_GROUP).gr_mem)
    except KeyError:
        members = set()
    drift = []
    for username, admin in wanted.items():
        if admin == (username in members):
            continue
        if admin:
            try:
                pwd.getpwnam(username)
            except KeyError:
                continue  # no account yet: it joins the group when it is made
        drift.append((username, admin))
    return drift


async def reconcile_admin_group(wanted):
    """Make the admins group match `wanted` ({account: admin?}) for accounts that exist.

    Returns the [(account, admin)] changes made."""
    changed = []
    for username, admin in admin_group_drift(wanted):
        if await set_admin_group(username, admin):
            changed.append((username, admin))
    return changed
