"""The install steps. Each one checks before it acts, so re-running upgrades in place."""

import grp
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from tljh_daemon import accounts, configfile
from tljh_daemon.paths import DEFAULT_PREFIX, PROFILE_DIR, SUDOERS_FILE, profile_script
from tljh_daemon.ports import free_ports
from tljh_daemon.auth.firstuse import hash_password
from tljh_daemon.files import write_atomically
from tljh_daemon.db import SyncDatabase

log = logging.getLogger("tljh_installer")

# What TLJH ships in its user environment too: teachers' nbgitpuller links, the memory meter,
# interactive widgets.
USER_ENV_PACKAGES = ["jupyterhub>=5,<7", "jupyterlab>=4,<5", "notebook>=7,<8", "ipykernel>=6",
                     "nbgitpuller>=1.2,<2", "jupyter-resource-usage>=1,<2", "ipywidgets>=8,<9"]
# The kernel provisioner package (pre-warmed kernels, kernels.prewarm), installed into every user
# environment from this package's own copy of its source.
KERNEL_PREWARM_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_prewarm")


def run(cmd, **kwargs):
    log.info("running: %s", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.stdout:
        log.info(result.stdout)
    if result.returncode != 0:
        log.error(result.stderr)
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()[-2000:]}")
    return result


def uv():
    return os.path.join(os.path.dirname(sys.executable), "uv")


def configure(paths, admins, http_port, hub_port=None, traefik_api_port=None):
    """Create config.yaml if missing; add (never replace) admins; set the ports given."""
    os.makedirs(paths.config_dir, mode=0o700, exist_ok=True)
    os.chmod(paths.config_dir, 0o700)
    with configfile.editing(paths.config_file) as config:
        users = config.setdefault("users", {})
        admin_list = users.setdefault("admin", [])
        for name in admins:
            if name not in admin_list:
                admin_list.append(name)
        if http_port is not None:
            config.setdefault("http", {})["port"] = http_port
        if hub_port is not None:
            config.setdefault("hub", {})["port"] = hub_port
        if traefik_api_port is not None:
            config.setdefault("traefik_api", {})["port"] = traefik_api_port
        if paths.prefix != DEFAULT_PREFIX:
            # A second install beside the first needs its own internal ports.
            hub_free, api_free = free_ports(2)
            config.setdefault("hub", {}).setdefault("port", hub_free)
            config.setdefault("traefik_api", {}).setdefault("port", api_free)


def preset_admin_passwords(paths, passwords):
    """A password given with --admin becomes that admin's first-use password (if none is set yet);
    as an admin's password reset does, it hands an account another login method made over to
    `firstuse` (login_switch.py)."""
    if not passwords:
        return
    paths.ensure()
    db = SyncDatabase(paths.database)
    try:
        for name, password in passwords.items():
            row = db.one("SELECT password_hash FROM users WHERE name=?", (name,))
            if row is not None and row["password_hash"]:
                log.info("admin %s already has a password; keeping it", name)
                continue
            if row is None:
                db.execute("INSERT INTO users (name, admin, created) VALUES (?, 1, ?)",
                           (name, time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())))
            db.execute("UPDATE users SET admin=1, password_hash=?, login_type='firstuse' WHERE name=?",
                       (hash_password(password), name))
    finally:
        db.close()


def ensure_groups():
    for group in (accounts.USERS_GROUP, accounts.ADMINS_GROUP):
        try:
            grp.getgrnam(group)
        except KeyError:
            run(["groupadd", "--system", group])


SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's


def ensure_sudoers(paths):
    """Admins get sudo. `sudo -E pip install` keeps their PATH (exempt_group: no secure_path for
    them), which a login shell starts with the user environment (profile_script). For everyone
    else sudo's secure_path starts with the user environment too, as in TLJH; that line is
    machine-wide, so only the default install writes it."""
    content = (
        "# Written by the TLJH installer: admins may run anything as root.\n"
        f"%{accounts.ADMINS_GROUP} ALL = (ALL) NOPASSWD: ALL\n"
        f"Defaults exempt_group = {accounts.ADMINS_GROUP}\n"
    )
    if paths.prefix == DEFAULT_PREFIX:
        content += f'Defaults secure_path = "{os.path.join(paths.user_env, "bin")}:{SECURE_PATH}"\n'
    if os.path.exists(SUDOERS_FILE):
        with open(SUDOERS_FILE) as f:
            if f.read() == content:
                return
    if not shutil.which("visudo"):
        raise RuntimeError("visudo was not found: install the sudo package")
    fd, tmp = tempfile.mkstemp(prefix=".jupyterhub-admins-", dir="/etc/sudoers.d")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.chmod(tmp, 0o440)
        run(["visudo", "-c", "-f", tmp])
        os.replace(tmp, SUDOERS_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_user_env_on_path(paths, profile_dir=PROFILE_DIR, machine_wide=False):
    """Login shells (a JupyterLab terminal, ssh, `su -`) get the user environment first on PATH:
    Debian's /etc/profile resets PATH and then sources /etc/profile.d/*.sh. That is every login
    shell on the machine, so only the default install (or --machine-wide-links) does it."""
    script = profile_script(paths, profile_dir)
    if paths.prefix != DEFAULT_PREFIX and not machine_wide:
        return f"{script} not written (not the default prefix; --machine-wide-links writes it)"
    bin_dir = os.path.join(paths.user_env, "bin")
    content = (
        f"# Written by the TLJH installer for {paths.prefix}: the user environment on PATH\n"
        f"# (a no-op once that environment is gone).\n"
        f'if [ -d "{bin_dir}" ]; then\n'
        f'  case ":$PATH:" in\n    *":{bin_dir}:"*) ;;\n    *) export PATH="{bin_dir}:$PATH" ;;\n  esac\nfi\n'
    )
    os.makedirs(profile_dir, exist_ok=True)
    write_atomically(script, content, mode=0o644)
    return f"{script}: the user environment on login shells' PATH"


def python_for_users():
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no python3 interpreter found for the user environment")


def build_user_env(paths, extra_packages=(), requirements_url=None, keep=False):
    """The shared user environment: root-owned, readable by all, with pip for `sudo -E pip`.
    `keep`: an environment taken over (e.g. TLJH's) is used as it is; only what plugins and
    --user-requirements-txt-url ask for is added to it."""
    env = paths.user_env
    python = os.path.join(env, "bin", "python")
    if not os.path.exists(python):
        run([uv(), "venv", "--seed", "--python", python_for_users(), env])
    packages = [*([] if keep else USER_ENV_PACKAGES), *extra_packages]
    if not packages and not requirements_url:
        return
    # Bytecode compiled now, as root: users cannot write __pycache__ in the root-owned environment,
    # so a module no root process imported was compiled again by every server and kernel (debugpy,
    # which each ipykernel imports: 0.3 s of every kernel start).
    cmd = [uv(), "pip", "install", "--compile-bytecode", "--python", python, *packages]
    tmp = None
    if requirements_url:
        fd, tmp = tempfile.mkstemp(suffix=".txt")
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(requirements_url, timeout=60) as r:
            f.write(r.read())
        cmd += ["-r", tmp]
    try:
        run(cmd)
    finally:
        if tmp:
            os.unlink(tmp)
    install_kernel_prewarm([uv()], python)
    run(["chmod", "-R", "go-w,a+rX", env])


def tighten_lock_files(paths):
    """uv leaves a world-writable `.lock` in each environment it installs into (0666, so other
    users may share its lock); in these root-owned environments anyone holding it would stall
    root's next install. Root keeps it; others may only read it."""
    for env in (paths.hub_env, paths.user_env):
        lock = os.path.join(env, ".lock")
        if os.path.isfile(lock) and not os.path.islink(lock):
            os.chmod(lock, 0o644)


def install_kernel_prewarm(uv_cmd, python):
    """tljh-kernel-prewarm into the environment of `python`. Built from a copy of its source:
    a build writes into the tree, and the installed product's tree stays as it was shipped."""
    with tempfile.TemporaryDirectory() as tmp:
        source = shutil.copytree(KERNEL_PREWARM_SOURCE, os.path.join(tmp, "tljh-kernel-prewarm"))
        run([*uv_cmd, "pip", "install", "--compile-bytecode", "--python", python,
             "--reinstall-package", "tljh-kernel-prewarm", source])


def secure_private_dirs(paths):
    """config/ and state/ hold secrets: root only."""
    for path in (paths.config_dir, paths.state_dir):
        if os.path.exists(path):
            os.chmod(path, 0o700)
