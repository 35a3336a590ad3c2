"""environments.<name> end to end: the installer's build step makes a second environment with uv
(once per session, uv's cache reused) and its kernelspec; a real hub (real Traefik, a real
`jupyterhub-singleuser` from the shared user environment) lists it in the server's
/api/kernelspecs, and a kernel started from it runs that environment's Python, importing a
package only that environment has, while the default kernel still runs the user environment. An
existing environment adopted by `path` (here the user environment itself, only read) is listed
too, its kernel running that environment's Python."""

import ast
import os
import shutil
import tempfile
import time

import pytest

from hubclient import HubClient
from hubprocess import HubProcess, needs_root
from tljh_daemon.paths import Paths
from tljh_installer import environments as build

pytestmark = needs_root
PASSWORD = "environments-password"
NAME = "extra"
# Small, pure Python, and in no user environment the tests build.
ONLY_THERE = "pyjokes"
ADOPTED = "adopted"


def environments(user_env):
    return {NAME: {"packages": [ONLY_THERE], "display_name": "Extra course"},
            ADOPTED: {"path": user_env, "display_name": "Adopted"}}


@pytest.fixture(scope="session")
def built(user_env):
    """An install prefix whose environments.* the installer's step has built (timed)."""
    prefix = tempfile.mkdtemp(prefix="tljh-test-envs-", dir="/var/tmp")
    os.chmod(prefix, 0o755)
    started = time.monotonic()
    lines = build.build_all(Paths(prefix), environments(user_env))
    took = time.monotonic() - started
    yield prefix, lines, took
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(built, user_env, run_id, unix_accounts):
    prefix, _, _ = built
    hub = HubProcess(prefix, {
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
        "user_environment": {"path": user_env},
        "environments": environments(user_env),
    })
    name = f"{run_id}-env"
    unix_accounts.append(f"jupyter-{name}")
    hub.start()
    client = HubClient(hub.url)
    assert client.login(name, PASSWORD).status_code == 302
    assert client.spawn(name)[-1]["ready"] is True
    yield hub, client, name
    hub.stop_all()


def server_api(client, name, method, path, **kwargs):
    if not any(c.name == "_xsrf" and c.path.startswith(f"/user/{name}/") for c in client.cookies):
        assert client.get(client.url(f"/user/{name}/lab")).status_code == 200
    return client.request(method, client.url(f"/user/{name}/api/{path}"),
                          headers={"X-XSRFToken": client.server_xsrf()}, **kwargs)


def run_in(client, name, kernel, code):
    r = server_api(client, name, "POST", "kernels", json={"name": kernel})
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]
    try:
        return client.execute(name, kernel_id, code, timeout=120)
    finally:
        server_api(client, name, "DELETE", f"kernels/{kernel_id}")


def test_the_installer_step_builds_the_environment(built, user_env):
    prefix, lines, took = built
    env = os.path.join(prefix, "envs", NAME)
    assert os.stat(env).st_uid == 0 and os.stat(env).st_mode & 0o005 == 0o005  # root's, usable by all
    assert any(f"environment {NAME}: {env} (built with uv)" in line for line in lines), lines
    assert any(f"environment {ADOPTED}: {user_env} (adopted as it is)" in line for line in lines), lines
    assert not os.path.exists(os.path.join(prefix, "envs", ADOPTED))
    print(f"\nbuilt environment {NAME} in {took:.1f}s")


def test_the_servers_kernelspecs_list_the_environment(hub):
    _, client, name = hub
    r = server_api(client, name, "GET", "kernelspecs")
    assert r.status_code == 200, r.text
    specs = r.json()["kernelspecs"]
    assert specs[NAME]["spec"]["display_name"] == "Python (Extra course)"
    assert specs[ADOPTED]["spec"]["display_name"] == "Python (Adopted)"
    assert "python3" in specs  # the user environment's own kernel stays


def test_the_environments_kernel_runs_its_python_and_packages(hub, built, user_env):
    _, client, name = hub
    prefix, _, _ = built
    code = f"import sys, {ONLY_THERE}; (sys.prefix, {ONLY_THERE}.__name__)"
    assert ast.literal_eval(run_in(client, name, NAME, code)) == (os.path.join(prefix, "envs", NAME), ONLY_THERE)
    # The default kernel is still the user environment's, which lacks that package.
    default = "import sys, importlib.util; (sys.prefix, importlib.util.find_spec(%r) is None)" % ONLY_THERE
    assert ast.literal_eval(run_in(client, name, "python3", default)) == (user_env, True)
    assert ast.literal_eval(run_in(client, name, ADOPTED, default)) == (user_env, True)


def test_a_second_installer_run_upgrades_in_place(built, user_env):
    """What a re-run of the installer does: the same environment, ready again in seconds (uv's cache)."""
    prefix, _, _ = built
    python = os.path.join(prefix, "envs", NAME, "bin", "python")
    before = os.stat(python).st_ino
    started = time.monotonic()
    build.build_all(Paths(prefix), environments(user_env))
    took = time.monotonic() - started
    assert os.stat(python).st_ino == before  # not made again
    assert took < 60, took
    print(f"\nre-run (upgrade) took {took:.1f}s")
