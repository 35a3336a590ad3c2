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
from waiting import wait_for

pytestmark = needs_root
PASSWORD = "environments-password"
NAME = "extra"
# Small, pure Python, and in no user environment the tests build.
ONLY_THERE = "pyjokes"
ADOPTED = "adopted"


def environments(user_env):
    # jupyterhub and jupyterlab: a profile can run its server from it (the last test)
    return {NAME: {"packages": [ONLY_THERE, "jupyterhub", "jupyterlab"], "display_name": "Extra course"},
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


PARENT = "import os, sys; (sys.prefix, open(f'/proc/{os.getppid()}/cmdline').read().split(chr(0))[:3])"


def test_the_environments_kernels_are_forked_from_a_zygote_of_its_own(hub, built, user_env):
    """kernels.prewarm (on by default): the environment's first kernel started its zygote (that
    kernel started fresh); once the zygote is ready, its kernels are forked from it. The adopted
    environment has no tljh-kernel-prewarm: its kernels start fresh."""
    daemon, client, name = hub
    prefix, _, _ = built
    env = os.path.join(prefix, "envs", NAME)
    python = os.path.join(env, "bin", "python")
    log = os.path.join(prefix, "state", "logs", f"jupyter-{name}.log")

    def zygote_ready():
        with open(log, errors="replace") as f:
            return any("kernel zygote" in line and "is ready after" in line and line.rstrip().endswith(f"({python})")
                       for line in f)

    wait_for(zygote_ready, "the environment's kernel zygote to be ready", timeout=120)
    sys_prefix, parent = ast.literal_eval(run_in(client, name, NAME, PARENT))
    assert sys_prefix == env
    with open(log, errors="replace") as f:
        prewarm_lines = [line for line in f if "Kernel pre-warm" in line]
    assert parent == [python, "-m", "tljh_kernel_prewarm.zygote"], "\n".join(prewarm_lines)
    assert ast.literal_eval(run_in(client, name, NAME, f"import {ONLY_THERE}; {ONLY_THERE}.__name__")) == ONLY_THERE
    sys_prefix, parent = ast.literal_eval(run_in(client, name, ADOPTED, PARENT))
    assert sys_prefix == user_env and "tljh_kernel_prewarm.zygote" not in parent


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


def test_a_profile_runs_its_server_from_an_environment(built, user_env, run_id, unix_accounts):
    """A profile's `environment`: the server (started fresh, not pre-warmed) is that
    environment's jupyterhub-singleuser, so its default kernel is that environment's Python."""
    built_prefix, _, _ = built
    prefix = tempfile.mkdtemp(prefix="tljh-test-profile-env-", dir="/var/tmp")
    os.chmod(prefix, 0o755)
    hub = HubProcess(prefix, {
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
        "user_environment": {"path": user_env},
        "environments": {NAME: {"path": os.path.join(built_prefix, "envs", NAME)}},
        "profiles": [{"slug": "plain", "display_name": "Plain", "default": True},
                     {"slug": "course", "display_name": "Extra course", "environment": NAME}],
    })
    name = f"{run_id}-prof"
    unix_accounts.append(f"jupyter-{name}")
    hub.start()
    try:
        client = HubClient(hub.url)
        assert client.login(name, PASSWORD).status_code == 302
        form = client.get(client.url(f"/hub/spawn/{name}"))
        assert form.status_code == 200 and 'value="course"' in form.text
        chosen = client.post(client.url(f"/hub/spawn/{name}"), allow_redirects=False,
                             data={"_xsrf": client.xsrf_from(form.text), "profile": "course"})
        assert chosen.status_code == 302, chosen.text
        assert client.progress_events(name)[-1]["ready"] is True
        assert client.get(client.url(f"/user/{name}/lab")).status_code == 200
        kernel = client.start_kernel(name)
        prefix_seen = ast.literal_eval(client.execute(name, kernel, "__import__('sys').prefix", timeout=120))
        assert os.path.realpath(prefix_seen) == os.path.realpath(os.path.join(built_prefix, "envs", NAME))
        assert client.execute(name, kernel, f"__import__({ONLY_THERE!r}).__name__") == repr(ONLY_THERE)
    finally:
        hub.stop_all()
        shutil.rmtree(prefix, ignore_errors=True)
