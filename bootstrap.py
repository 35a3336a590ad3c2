#!/usr/bin/env python3
"""Stage 0 of the install: standard library only.

    curl -L <url>/bootstrap.py | sudo python3 - --admin alice:secret
    sudo python3 bootstrap.py --admin alice:secret        # from a checkout

Checks the machine, makes the hub virtual environment, installs the product
into it (this checkout, or --pip-spec / $TLJH_BOOTSTRAP_PIP_SPEC), then hands
over to the installer (`python -m tljh_installer`) with the remaining arguments.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

MIN_PYTHON = (3, 9)
SUPPORTED = {"debian": 11, "ubuntu": 22.04}
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None


def fail(message):
    print(f"bootstrap: error: {message}", file=sys.stderr)
    sys.exit(1)


def rerun_as_root(argv):
    """The install needs root: from another account, run this same file again under sudo
    (which asks for the password); a root shell without sudo, as on a bare VM, needs nothing."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-", "-c") else None
    sudo = shutil.which("sudo")
    if not (script and os.path.isfile(script) and sudo):
        fail("must run as root (try: sudo python3 bootstrap.py ...)")
    print("bootstrap: the install needs root: running it again with sudo", file=sys.stderr, flush=True)
    keep = sorted(name for name in os.environ if name.startswith("TLJH_"))  # sudo drops the rest
    preserve = [f"--preserve-env={','.join(keep)}"] if keep else []
    os.execv(sudo, [sudo, *preserve, sys.executable, script, *argv])


# Never an install prefix (uninstall deletes the prefix): the same list as
# tljh_daemon/install_marker.py, copied because this file must work alone.
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr",
    "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin",
    "/usr/share", "/var", "/var/lib", "/var/log", "/var/tmp", "/var/cache",
})


def refuse_system_or_home(prefix):
    """Refuse a system directory, a home, or a directory holding homes, before anything is made."""
    import pwd

    real = os.path.realpath(prefix)
    if real in SYSTEM_DIRS:
        fail(f"--prefix {prefix} is a system directory; choose a directory of its own, e.g. /opt/tljh")
    for entry in pwd.getpwall():
        home = os.path.realpath(entry.pw_dir) if entry.pw_dir else ""
        if home in ("", "/") or home in SYSTEM_DIRS:
            continue
        if real == home or home.startswith(real + os.sep):
            fail(f"--prefix {prefix} is or holds the home directory of {entry.pw_name}; "
                 f"choose a directory of its own, e.g. /opt/tljh")


def read_os_release(path="/etc/os-release"):
    info = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key:
                    info[key] = value.strip().strip('"')
    except OSError:
        pass
    return info


def check_os(info):
    """Refuse unsupported distributions with a message that says what is supported."""
    distro = info.get("ID", "unknown")
    version = info.get("VERSION_ID", "")
    wanted = ", ".join(f"{name.capitalize()} >= {v}" for name, v in SUPPORTED.items())
    if distro not in SUPPORTED:
        fail(f"unsupported operating system {info.get('PRETTY_NAME', distro)!r}; supported: {wanted}")
    try:
        number = float(version)
    except ValueError:
        fail(f"cannot tell the version of {distro} ({version!r}); supported: {wanted}")
    if number < SUPPORTED[distro]:
        fail(f"{info.get('PRETTY_NAME', distro)} is too old; supported: {wanted}")


def check_prefix(prefix, systemd=None):
    """Refuse a prefix user servers could not see. Every server gets a private /tmp (the
    pre-warm launcher mounts one, as PrivateTmp= does for units), and under systemd its unit's
    PrivateTmp= hides /var/tmp too: the user environment there would be missing for every
    spawn (`No module named 'jupyterhub'`) after an install that looked fine."""
    systemd = systemd_booted() if systemd is None else systemd
    hidden = ["/tmp"] + (["/var/tmp"] if systemd else [])
    real = os.path.realpath(prefix)
    for top in hidden:
        if real == top or real.startswith(top + "/"):
            where = "every user server gets a private /tmp" if top == "/tmp" else \
                "under systemd every user server's unit gets a private /var/tmp (PrivateTmp=)"
            fail(f"--prefix {prefix} is under {top}, and {where}, so the servers would not find the user "
                 f"environment there; choose another prefix (the default is /opt/tljh)")


def log(message):
    print(f"[bootstrap] {message}", flush=True)


def run(cmd, **kwargs):
    result = subprocess.run(cmd, **kwargs)
    if result.returncode != 0:
        fail(f"{' '.join(cmd)} failed with exit code {result.returncode}")
    return result


def system_python():
    """The machine's own Python 3, which the hub environment is made from.

    On an installed machine `python3` is usually the user environment's: login shells'
    PATH (/etc/profile.d) and sudo's secure_path put it first, as TLJH does, so that admins'
    `sudo -E pip install` reaches the user environment. That keeps working; instead this
    script, wherever it was started from (a file or piped from curl), does everything that
    depends on the interpreter (the venv, python3-systemd) with the system's Python. A
    virtual environment's Python is never used for that: it lacks Debian's packages."""
    if sys.prefix == sys.base_prefix:
        return sys.executable
    for candidate in ("/usr/bin/python3", os.path.join(sys.base_prefix, "bin", "python3")):
        if os.access(candidate, os.X_OK):
            return candidate
    fail(f"{sys.executable} is a virtual environment's Python and no system Python 3 was found "
         "(looked for /usr/bin/python3): install python3 with apt")


def missing_apt_prerequisites():
    """Debian packages the install needs that are not there yet."""
    missing = []
    python = system_python()
    if subprocess.run([python, "-c", "import venv, ensurepip"], capture_output=True).returncode:
        missing.append("python3-venv")
    if not shutil.which("visudo"):
        missing.append("sudo")
    if not shutil.which("setfacl"):
        missing.append("acl")  # shared folders: readers and writers are two groups (POSIX ACLs)
    if not os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        missing.append("ca-certificates")
    if systemd_booted() and subprocess.run([python, "-c", "import systemd.daemon"],
                                           capture_output=True).returncode:
        missing.append("python3-systemd")  # sd_notify for the daemon's Type=notify unit
    return missing


def systemd_booted():
    return os.path.isdir("/run/systemd/system")


def ensure_apt_prerequisites():
    missing = missing_apt_prerequisites()
    if missing:
        log(f"Installing {', '.join(missing)} with apt")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", *missing], env=env)


def link_system_systemd_module(python):
    """Give the hub venv Debian's python3-systemd (systemd-python, for sd_notify) and
    nothing else from the system site-packages: building it from PyPI needs a compiler."""
    found = subprocess.run([system_python(), "-c", "import os, systemd; print(os.path.dirname(systemd.__file__))"],
                           capture_output=True, text=True)  # installed by ensure_apt_prerequisites
    if found.returncode:
        fail(f"{system_python()} cannot import systemd (python3-systemd): {found.stderr.strip()}")
    source = found.stdout.strip()
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    target = os.path.join(site, "systemd")
    if not os.path.exists(target):
        os.symlink(source, target)


def product_spec(args):
    spec = args.pip_spec or os.environ.get("TLJH_BOOTSTRAP_PIP_SPEC")
    if spec:
        return spec
    if HERE and os.path.exists(os.path.join(HERE, "setup.cfg")):
        return HERE
    fail("no product to install: pass --pip-spec (or set TLJH_BOOTSTRAP_PIP_SPEC), or run bootstrap.py from a checkout")


def build_copy(path):
    """A scratch copy of a local source tree to build from.

    Building a setuptools project writes `*.egg-info` and `build/` into the tree: that
    fails on a read-only checkout (a bind mount, a CD, another user's files) and leaves
    root-owned files in a writable one. The caller deletes the copy.
    """
    tmp = tempfile.mkdtemp(prefix="tljh-src-")
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
    copy = os.path.join(tmp, os.path.basename(os.path.normpath(path)) or "src")
    shutil.copytree(path, copy, ignore=ignore, symlinks=True)
    return tmp, copy


TLJH_HUB_ENV = "hub-tljh"  # where TLJH's own hub environment is kept after a takeover


def set_aside_tljh_hub_env(prefix):
    """On a machine with The Littlest JupyterHub, <prefix>/hub is TLJH's hub environment
    (JupyterHub without our daemon). Move it aside, untouched, so ours can take its place;
    the installer then takes over TLJH's users, config and user environment."""
    hub = os.path.join(prefix, "hub")
    if not os.path.exists(os.path.join(hub, "bin", "jupyterhub")) or \
            os.path.exists(os.path.join(hub, "bin", "tljh-daemon")):
        return
    target = os.path.join(prefix, TLJH_HUB_ENV)
    if os.path.exists(target):
        target += time.strftime("-%Y%m%d%H%M%S")
    log(f"Found The Littlest JupyterHub's hub environment in {hub}: keeping it as {target}")
    os.rename(hub, target)


def install_hub_env(prefix, spec):
    hub = os.path.join(prefix, "hub")
    python = os.path.join(hub, "bin", "python")
    if not os.path.exists(python):
        log(f"Creating the hub environment {hub}")
        run([system_python(), "-m", "venv", hub])
    if systemd_booted():
        link_system_systemd_module(python)
    if not os.path.exists(os.path.join(hub, "bin", "uv")):
        log("Installing uv into the hub environment")
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv"])
    log(f"Installing the hub from {spec}")
    scratch = None
    if os.path.isdir(spec):
        scratch, spec = build_copy(spec)
    try:
        run([os.path.join(hub, "bin", "uv"), "pip", "install", "--quiet", "--python", python,
             "--upgrade", "--reinstall-package", "tljh-daemon", spec])
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return python


# The installer's options (tljh_installer/cli.py), for --help: this file must work alone (piped
# from curl), so they are listed here too; tests/test_bootstrap.py checks that none is missing.
INSTALLER_OPTIONS = [
    ("--admin", "NAME[:PASSWORD]", "an admin (added to users.admin; the password is set if the admin has none); "
                                   "repeatable"),
    ("--http-port", "N", "port Traefik serves HTTP on (http.port, default 80)"),
    ("--hub-port", "N", "loopback port of the hub daemon, internal (hub.port, default 15001)"),
    ("--traefik-api-port", "N", "loopback port of Traefik's API, internal (traefik_api.port, default 8099)"),
    ("--user-requirements-txt-url", "URL", "requirements.txt to install into the user environment"),
    ("--plugin", "SPEC", "pip spec(s) of plugins: --plugin a b, or --plugin a --plugin b"),
    ("--show-progress-page", None, "serve a page with the install's step names on the HTTP port until the hub starts"),
    ("--machine-wide-links", None, "link tljh-config into /usr/local/bin and put the user environment on login "
                                   "shells' PATH although --prefix is not /opt/tljh"),
]


def print_help():
    parser = argparse.ArgumentParser(prog="bootstrap.py", description="Install (or upgrade) the hub on this "
                                     "machine: sudo python3 bootstrap.py --admin alice:change-me",
                                     epilog="Re-running the same command upgrades in place.")
    parser.add_argument("--prefix", default="/opt/tljh", help="install prefix (or $TLJH_INSTALL_PREFIX; "
                        "default %(default)s)")
    parser.add_argument("--pip-spec", help="pip spec of the product (or $TLJH_BOOTSTRAP_PIP_SPEC; "
                        "default: this checkout)")
    group = parser.add_argument_group("installer options (passed on to python -m tljh_installer)")
    for flag, metavar, text in INSTALLER_OPTIONS:
        if metavar:
            group.add_argument(flag, metavar=metavar, help=text)
        else:
            group.add_argument(flag, action="store_true", help=text)
    parser.print_help()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--pip-spec", help="pip spec of the product (default: this checkout)")
    parser.add_argument("--prefix", default=os.environ.get("TLJH_INSTALL_PREFIX", "/opt/tljh"))
    parser.add_argument("-h", "--help", action="store_true")
    args, rest = parser.parse_known_args(argv)
    if args.help:
        print_help()
        return
    started = time.monotonic()
    # The installer's last line counts the whole install, this stage included.
    os.environ["TLJH_BOOTSTRAP_STARTED"] = repr(time.time())
    if sys.version_info < MIN_PYTHON:
        fail(f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed (this is {sys.version.split()[0]})")
    if os.geteuid() != 0:
        rerun_as_root(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("TLJH_BOOTSTRAP_SKIP_OS_CHECK"):
        check_os(read_os_release())
    if "SSL_CERT_FILE" not in os.environ and os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        os.environ["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"  # the system trust store, for uv
    prefix = os.path.abspath(args.prefix)
    refuse_system_or_home(prefix)  # before anything is installed
    check_prefix(prefix)
    ensure_apt_prerequisites()
    os.makedirs(prefix, exist_ok=True)
    os.chmod(prefix, 0o755)
    spec = product_spec(args)
    set_aside_tljh_hub_env(prefix)
    python = install_hub_env(prefix, spec)
    log(f"Stage 0 done in {time.monotonic() - started:.1f}s; handing over to the installer")
    sys.stdout.flush()
    os.execv(python, [python, "-m", "tljh_installer", "--prefix", prefix, *rest])


if __name__ == "__main__":
    main()
