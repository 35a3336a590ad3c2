"""Shared folders (`shared_folders.<name>`): a directory per group of users, readable by the
group's members, writable by admins or a named group, linked into each reader's home.

Two groups with different rights on one directory need POSIX ACLs (`setfacl`, Debian's `acl`
package, which bootstrap.py installs). The directory is root-owned with the writers as its
group (setgid, so new files keep that group); an ACL entry lets the readers in, and default
ACL entries give everything created inside the same rights. Nobody else gets in.
"""

import grp
import logging
import os
import pwd
import shutil
import subprocess

from . import accounts

log = logging.getLogger(__name__)

DEFAULT_BASE = "/srv/shared"
DEFAULT_WRITERS = accounts.ADMINS_GROUP
EVERYONE = accounts.USERS_GROUP


class SharedFolderError(Exception):
    pass


def folders(config):
    """[(name, path, readers group, writers group)] with the defaults filled in."""
    result = []
    for name, spec in (config.get("shared_folders") or {}).items():
        result.append((name, spec.get("path") or os.path.join(DEFAULT_BASE, name),
                       spec.get("group") or EVERYONE, spec.get("writers") or DEFAULT_WRITERS))
    return result


def _ensure_group(group):
    try:
        grp.getgrnam(group)
    except KeyError:
        subprocess.run(["groupadd", "--system", group], check=True, capture_output=True)


def create(name, path, readers, writers):
    """Create (or fix) one shared folder. Idempotent: run at every start."""
    setfacl = shutil.which("setfacl")
    if setfacl is None:
        raise SharedFolderError(f"shared folder {name}: setfacl was not found (install the acl package)")
    for group in (readers, writers):
        _ensure_group(group)
    os.makedirs(path, mode=0o755, exist_ok=True)
    writers_gid = grp.getgrnam(writers).gr_gid
    os.chown(path, 0, writers_gid)
    os.chmod(path, 0o2770)
    rights = f"g:{readers}:rx,g:{writers}:rwx,m::rwx"
    defaults = f"d:u::rwx,d:g::rwx,d:o::-,d:g:{readers}:rx,d:g:{writers}:rwx,d:m::rwx"
    result = subprocess.run([setfacl, "-m", f"{rights},{defaults}", path], capture_output=True, text=True)
    if result.returncode != 0:
        raise SharedFolderError(f"shared folder {name}: setfacl on {path} failed: {result.stderr.strip()}")


def create_all(configured):
    """Every configured folder (`folders()`' tuples); a problem with one is logged and the others still made."""
    for name, path, readers, writers in configured:
        try:
            create(name, path, readers, writers)
            log.info("Shared folder %s at %s: read by %s, written by %s", name, path, readers, writers)
        except (SharedFolderError, OSError, subprocess.CalledProcessError) as e:
            log.error("Shared folder %s not set up: %s", name, e)


def in_group(username, group):
    try:
        entry = grp.getgrnam(group)
        return username in entry.gr_mem or pwd.getpwnam(username).pw_gid == entry.gr_gid
    except KeyError:
        return False


def link_into_home(shared, account):
    """A link `~/<name>` to each shared folder (`shared`: what `folders` returns) this account
    may read (or write); an existing file of that name that is not our link is left alone."""
    for name, path, readers, writers in shared:
        if not (in_group(account.pw_name, readers) or in_group(account.pw_name, writers)):
            continue
        link = os.path.join(account.pw_dir, name)
        if os.path.islink(link) and os.readlink(link) == path:
            continue
        if os.path.lexists(link):
            log.warning("Not linking shared folder %s into %s: %s exists", name, account.pw_dir, link)
            continue
        try:
            os.symlink(path, link)
            os.lchown(link, account.pw_uid, account.pw_gid)
        except OSError as e:
            log.warning("Could not link shared folder %s into %s: %s", name, account.pw_dir, e)
