import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile

import pytest

from hubprocess import HubProcess
from labpage import chromium
from userenvs import python_for_users
from tljh_daemon.accounts import delete_account
from tljh_daemon.users import system_username
from tljh_installer.steps import KERNEL_PREWARM_SOURCE, install_kernel_prewarm

# jupyterhub-idle-culler rides along so the culling test can run the real one as a managed service.
USER_ENV_PACKAGES = ["jupyterhub", "jupyterlab", "ipykernel", "jupyterhub-idle-culler"]

def kernel_prewarm_current(env):
    """Does `env` hold this checkout's tljh-kernel-prewarm (as the installer would put it there)?
    A prebuilt environment (TLJH_TEST_USER_ENV) is changed only when it does not."""
    package = os.path.join(KERNEL_PREWARM_SOURCE, "tljh_kernel_prewarm")
    for installed in glob.glob(os.path.join(env, "lib", "python3*", "site-packages", "tljh_kernel_prewarm")):
        names = [n for n in os.listdir(package) if n.endswith(".py")]
        if all(os.path.exists(os.path.join(installed, n))
               and open(os.path.join(installed, n)).read() == open(os.path.join(package, n)).read() for n in names):
            return True
    return False


@pytest.fixture(scope="session")
def user_env():
    """A real user environment (jupyterhub, jupyterlab, ipykernel), built once per session with uv."""
    existing = os.environ.get("TLJH_TEST_USER_ENV")
    if existing:
        if not kernel_prewarm_current(existing):
            install_kernel_prewarm(["uv"], os.path.join(existing, "bin", "python"))
        yield existing
        return
    top = tempfile.mkdtemp(prefix="tljh-test-userenv-", dir="/var/tmp")
    os.chmod(top, 0o755)
    path = os.path.join(top, "user")
    subprocess.run(["uv", "venv", "--quiet", "--python", python_for_users(), path], check=True)
    subprocess.run(["uv", "pip", "install", "--quiet", "--compile-bytecode",
                    "--python", os.path.join(path, "bin", "python"), *USER_ENV_PACKAGES], check=True)
    install_kernel_prewarm(["uv"], os.path.join(path, "bin", "python"))
    yield path
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def run_id():
    """A short random tag so test user names never collide with real or leftover accounts."""
    return "t" + secrets.token_hex(2)


@pytest.fixture(scope="session")
def unix_accounts():
    """Collects Unix accounts a test caused to exist; deletes them at the end."""
    names = []
    yield names
    for name in names:
        # `jupyter-<hub name>`, as most tests write it, is the account only for short names: a
        # long one gets the hub's hashed account name (users.system_username).
        candidates = [name]
        if name.startswith("jupyter-"):
            candidates.append(system_username(name[len("jupyter-"):]))
        for account in candidates:
            try:
                pwd.getpwnam(account)
            except KeyError:
                continue
            delete_account(account)


@pytest.fixture(scope="module")
def make_hub(unix_accounts):
    """Factory: start a daemon with the given config; everything it started is stopped afterwards."""
    hubs = []

    def make(config, start=True):
        prefix = tempfile.mkdtemp(prefix="tljh-test-prefix-", dir="/var/tmp")
        hub = HubProcess(prefix, config)
        hubs.append(hub)
        return hub.start() if start else hub

    yield make
    for hub in hubs:
        hub.stop_all()
        shutil.rmtree(hub.prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (playwright's sync API)."""
    with chromium() as browser:
        yield browser
