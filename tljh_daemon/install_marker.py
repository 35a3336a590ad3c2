"""Is this directory an install of this product? The guard before `stop` and `uninstall`.

The installer (and `tljh-daemon run`) writes `<prefix>/.tljh-install`: root's, not writable
by anyone else, naming the prefix it was written for. `uninstall` deletes the whole prefix,
so it acts only where that marker is found intact, and never on `/`, a system directory, a
home directory or anything holding one, whatever the marker says.
"""

import json
import os
import pwd
import stat

FILENAME = ".tljh-install"
PRODUCT = "tljh-daemon"

#: never an install prefix, whatever is in them (their subdirectories may be: /opt/tljh)
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr",
    "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin",
    "/usr/share", "/var", "/var/lib", "/var/log", "/var/tmp", "/var/cache",
})


class NotAnInstall(Exception):
    pass


def path(prefix):
    return os.path.join(prefix, FILENAME)


def write(prefix):
    """Mark `prefix` as an install (0644, owned by whoever runs the installer: root)."""
    data = json.dumps({"product": PRODUCT, "prefix": os.path.realpath(prefix)}) + "\n"
    target = path(prefix)
    tmp = target + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def refusal(prefix):
    """Why `prefix` can never be an install prefix (a system or home directory), or None."""
    real = os.path.realpath(prefix)
    if real in SYSTEM_DIRS:
        return "a system directory"
    for entry in pwd.getpwall():
        home = os.path.realpath(entry.pw_dir) if entry.pw_dir else ""
        if home in ("", "/") or home in SYSTEM_DIRS:
            continue  # /nonexistent, / and the like: no one's own directory
        if real == home:
            return f"the home directory of {entry.pw_name}"
        if home.startswith(real + os.sep):
            return f"a directory holding the home of {entry.pw_name} ({home})"
    return None


def check(prefix):
    """Raise NotAnInstall unless `prefix` holds an intact marker and is not a protected
    directory. Returns the resolved prefix."""
    real = os.path.realpath(prefix)
    why = refusal(real)
    if why:
        raise NotAnInstall(f"refusing to act on {prefix}: it is {why}, never an install prefix")
    if not os.path.isdir(real):
        raise NotAnInstall(f"nothing is installed at {prefix} (no such directory)")
    marker = path(real)
    try:
        info = os.lstat(marker)
    except FileNotFoundError:
        raise NotAnInstall(f"{prefix} does not hold an install of this hub (no {FILENAME} "
                           f"written by the installer); nothing done") from None
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_uid not in (0, os.geteuid()):
        problem = f"is owned by uid {info.st_uid}, not root"
    elif info.st_mode & 0o022:
        problem = f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    else:
        try:
            with open(marker) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or data.get("product") != PRODUCT:
            problem = "is not this hub's"
        elif data.get("prefix") != real:
            problem = f"was written for {data.get('prefix')!r}, not this directory"
    if problem:
        raise NotAnInstall(f"{marker} {problem}: not treating {prefix} as an install; nothing done")
    return real
