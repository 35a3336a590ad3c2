"""`tljh-daemon logs <name>`: one command for a user's server output, whatever ran it.

Under systemd a server is the scope `jupyter-<name>.scope` (forked by the pre-warm launcher)
or the service `jupyter-<name>.service` (started fresh), and `journalctl -u jupyter-<name>`
only looks for the service. This asks the journal for both units by their exact names (a glob
such as `jupyter-bob*` would also show `jupyter-bobby`'s). In process mode the output is the
file `<prefix>/state/logs/<account>.log`.
"""

import os

from . import service, systemd
from .spawner.systemd import unit_name
from .users import normalize_name, system_username


def journal_units(name):
    """The units one hub user's server can run as, for `journalctl -u`."""
    return [unit_name(name, "service"), unit_name(name, "scope")]


def uses_journal(paths):
    """This install's servers log to the journal: systemd is PID 1 and its units serve this prefix."""
    return systemd.booted() and service.units_prefix() == paths.prefix


def command(paths, name, lines=None, follow=False):
    """The command that shows `name`'s server output (InvalidName for a name no user can have)."""
    name = normalize_name(name)
    if uses_journal(paths):
        cmd = ["journalctl", "--no-pager", "-o", "short-iso"]
        for unit in journal_units(name):
            cmd += ["-u", unit]
        if lines is not None:
            cmd += ["-n", str(lines)]
        return cmd + (["-f"] if follow else [])
    log = os.path.join(paths.logs_dir, f"{system_username(name)}.log")
    if not os.path.exists(log):
        raise FileNotFoundError(f"no server output for {name!r} yet: {log} does not exist "
                                "(the user's server has never started on this install)")
    count = str(lines) if lines is not None else "10" if follow else "+1"  # +1: the whole file
    return ["tail", "-n", count, *(["-f"] if follow else []), log]
