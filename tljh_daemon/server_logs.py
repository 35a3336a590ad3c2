"""`tljh-daemon logs <name>`: one command for a user's server output, whatever ran it.

Under systemd a server is the scope `jupyter-<name>.scope` (forked by the pre-warm launcher)
or the service `jupyter-<name>.service` (started fresh), and `journalctl -u jupyter-<name>`
only looks for the service. This asks the journal for both units by their exact names (a glob
such as `jupyter-bob*` would also show `jupyter-bobby`'s). In process mode the output is the
file `<prefix>/state/logs/<account>.log`. A named server (`--server`) is
`jupyter-<name>-<server>` and `<account>-<server>.log`.
"""

import os

from . import service, systemd
from .spawner.systemd import unit_name
from .server_store import spawner_key, valid_server_name
from .users import InvalidName, normalize_name, system_username


def journal_units(name, server=""):
    """The units one hub user's server can run as, for `journalctl -u`."""
    key = spawner_key(name, server)
    return [unit_name(key, "service"), unit_name(key, "scope")]


def uses_journal(paths):
    """This install's servers log to the journal: systemd is PID 1 and its units serve this prefix."""
    return systemd.booted() and service.units_prefix() == paths.prefix


def command(paths, name, lines=None, follow=False, server=""):
    """The command that shows the output of `name`'s server (`server`: a named one; InvalidName
    for a name no user can have)."""
    name = normalize_name(name)
    if server and not valid_server_name(server):
        raise InvalidName(f"{server!r} is not a server name (lowercase letters, digits and single hyphens)")
    if uses_journal(paths):
        cmd = ["journalctl", "--no-pager", "-o", "short-iso"]
        for unit in journal_units(name, server):
            cmd += ["-u", unit]
        if lines is not None:
            cmd += ["-n", str(lines)]
        return cmd + (["-f"] if follow else [])
    log = os.path.join(paths.logs_dir, f"{system_username(name)}{'-' + server if server else ''}.log")
    if not os.path.exists(log):
        raise FileNotFoundError(f"no server output for {name!r} yet: {log} does not exist "
                                "(the user's server has never started on this install)")
    count = str(lines) if lines is not None else "10" if follow else "+1"  # +1: the whole file
    return ["tail", "-n", count, *(["-f"] if follow else []), log]
