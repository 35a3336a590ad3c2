"""The machine-wide paths an install may claim: the `tljh-config` link in /usr/local/bin and
the /etc/profile.d script that puts its user environment on login shells' PATH.

Only the default prefix claims them, or another prefix installed with
`--machine-wide-links`: a second install beside the first (a staging hub, a test run)
must not take over the machine's `tljh-config` or every login shell's PATH. Stopping a
non-default install removes its tljh-config link, so none is left pointing at an install
that is gone; `tljh-daemon uninstall` removes the rest.

(The `jupyterhub-users`/`jupyterhub-admins` groups and the sudoers rule for admins are
shared by every install on the machine, with the same content: they are not claimed.)
"""

import os

from .paths import DEFAULT_PREFIX

BIN_DIR = "/usr/local/bin"


def _link(bin_dir):
    return os.path.join(bin_dir, "tljh-config")


def _inside(path, prefix):
    return os.path.commonpath([path, os.path.realpath(prefix)]) == os.path.realpath(prefix)


def link_tljh_config(paths, requested=False, bin_dir=BIN_DIR):
    """Link (or re-point) tljh-config when this install may claim it; returns what was done."""
    link, target = _link(bin_dir), os.path.join(paths.hub_env, "bin", "tljh-config")
    if paths.prefix != DEFAULT_PREFIX and not requested:
        return (f"{link} left alone (not the default prefix {DEFAULT_PREFIX}; --machine-wide-links "
                f"claims it); this install's tljh-config is {target}")
    if os.path.lexists(link):
        if os.path.realpath(link) == os.path.realpath(target):
            return f"{link} -> {target}"
        os.unlink(link)
    os.symlink(target, link)
    return f"{link} -> {target}"


def remove_links_into(paths, bin_dir=BIN_DIR):
    """On stopping a non-default install: remove a tljh-config link into it. Returns the paths
    removed. (Its login-shell PATH script does nothing once its user environment is gone, and
    `tljh-daemon uninstall` removes it.)"""
    link = _link(bin_dir)
    if paths.prefix == DEFAULT_PREFIX or not os.path.islink(link):
        return []
    if not _inside(os.path.realpath(link), paths.prefix):
        return []
    os.unlink(link)
    return [link]
