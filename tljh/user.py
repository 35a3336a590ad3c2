"""TLJH's `tljh.user` for plugins: Unix users and groups.

The hub names a user's Unix account `jupyter-<name>` (as TLJH does); `tljh_new_user_create`
hooks receive that account name, which is what these functions take.
"""

import grp
import os
import pwd
import subprocess


def _run(*cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise subprocess.CalledProcessError(result.returncode, cmd, result.stdout, result.stderr)


def ensure_user(username):
    """Make the Unix account `username` (with a home nobody else can read) if it is missing; a
    new account is announced to plugins' `tljh_new_user_create`."""
    try:
        pwd.getpwnam(username)
        return
    except KeyError:
        pass
    _run("useradd", "--create-home", username)
    home = pwd.getpwnam(username).pw_dir
    os.chmod(home, os.stat(home).st_mode & ~0o007)
    from .utils import get_plugin_manager

    get_plugin_manager().call_each("tljh_new_user_create", username=username)


def remove_user(username):
    """Remove the Unix account `username` if it exists (its home stays, as with `deluser`)."""
    try:
        pwd.getpwnam(username)
    except KeyError:
        return
    _run("userdel", username)


def ensure_group(groupname):
    """Make the Unix group `groupname` if it is missing."""
    _run("groupadd", "--force", groupname)


def remove_group(groupname):
    """Remove the Unix group `groupname` if it exists."""
    try:
        grp.getgrnam(groupname)
    except KeyError:
        return
    _run("groupdel", groupname)


def ensure_user_group(username, groupname):
    """Add `username` to `groupname`; both must exist."""
    if username in grp.getgrnam(groupname).gr_mem:
        return
    _run("gpasswd", "--add", username, groupname)


def remove_user_group(username, groupname):
    """Take `username` out of `groupname` if it is a member."""
    if username not in grp.getgrnam(groupname).gr_mem:
        return
    _run("gpasswd", "--delete", username, groupname)
