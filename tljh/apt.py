"""TLJH's `tljh.apt` for plugins: Debian packages, package sources and their signing keys."""

import hashlib
import os
import shutil

from . import utils

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
TRUSTED_DIR = "/etc/apt/trusted.gpg.d"
SOURCES_DIR = "/etc/apt/sources.list.d"


def trust_gpg_key(key):
    """Trust the GPG public key `key` (bytes, ASCII-armored or binary) for apt. `apt-key` is gone
    from current Debian and Ubuntu, so the key is written into /etc/apt/trusted.gpg.d, which
    apt reads as apt-key's keyring was read."""
    if isinstance(key, str):
        key = key.encode()
    if shutil.which("apt-key"):
        utils.run_subprocess(["apt-key", "add", "-"], input=key)
        return
    suffix = ".asc" if key.lstrip().startswith(b"-----BEGIN PGP") else ".gpg"
    path = os.path.join(TRUSTED_DIR, f"tljh-plugin-{hashlib.sha256(key).hexdigest()[:16]}{suffix}")
    os.makedirs(TRUSTED_DIR, exist_ok=True)
    with open(path, "wb") as f:
        f.write(key)
    os.chmod(path, 0o644)


def _codename():
    with open("/etc/os-release") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key == "VERSION_CODENAME":
                return value.strip('"')
    raise RuntimeError("/etc/os-release has no VERSION_CODENAME")


def add_source(name, source_url, section):
    """Add the line `deb <source_url> <this release's codename> <section>` to
    /etc/apt/sources.list.d/<name>.list (once) and refresh the package lists."""
    line = f"deb {source_url} {_codename()} {section}\n"
    path = os.path.join(SOURCES_DIR, name + ".list")
    existing = ""
    if os.path.exists(path):
        with open(path) as f:
            existing = f.read()
    if line in existing:
        return
    with open(path, "a") as f:
        f.write(line)
    utils.run_subprocess(["apt-get", "update", "--yes"], env=APT_ENV)


def install_packages(packages):
    """Install the Debian packages (refreshing the package lists first if there are none)."""
    lists = "/var/lib/apt/lists"
    if not os.path.isdir(lists) or not [n for n in os.listdir(lists) if n not in ("lock", "partial", "auxfiles")]:
        utils.run_subprocess(["apt-get", "update", "--yes"], env=APT_ENV)
    utils.run_subprocess(["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "--yes", *packages],
                         env=APT_ENV)
