"""What TLJH admins bring with them, on one install made with bootstrap.py as an admin does:
plugins (a test plugin doing what TLJH's own test plugin does: apt, pip, its own config keys,
tljh_custom_jupyterhub_config, new-user hook; one importing each tljh.* module as published
plugins do; one that cannot be imported; and one that fails until told not to),
jupyterhub_config.d, `sudo -E pip install` in an admin's login shell (into the default user
environment, not environments.*), the default user environment's nbgitpuller,
jupyter-resource-usage and ipywidgets."""

import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import psutil
import pytest
import requests

from hubclient import HubClient
from hubprocess import free_port, needs_root
from tljh_daemon.paths import Paths
from tljh_installer import steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP = os.path.join(ROOT, "bootstrap.py")
ENVIRONMENT = "course"
SIMPLEST = os.path.join(ROOT, "tests", "plugins", "tljh-plugin-simplest")
FLAKY = os.path.join(ROOT, "tests", "plugins", "tljh-plugin-flaky")
COMPAT = os.path.join(ROOT, "tests", "plugins", "tljh-plugin-compat")
BROKEN = os.path.join(ROOT, "tests", "plugins", "tljh-plugin-broken")
COMPAT_GROUP = "tljh-compat-test"  # the group the compat plugin makes with tljh.user
SYSTEM_PYTHON = "/usr/bin/python3"
APT_PACKAGE = "hello"  # what the simplest plugin asks apt for

pytestmark = needs_root


@dataclass
class Install:
    prefix: str
    port: int
    admin: str
    password: str
    first: subprocess.CompletedProcess  # while the flaky plugin fails
    done: subprocess.CompletedProcess

    @property
    def tljh_config(self):
        return [os.path.join(self.prefix, "hub", "bin", "tljh-config"), "--prefix", self.prefix]


@pytest.fixture(scope="module")
def install(unix_accounts, run_id):
    had_apt_package = subprocess.run(["dpkg", "-s", APT_PACKAGE], capture_output=True).returncode == 0
    prefix = tempfile.mkdtemp(prefix="tljh-test-parity-", dir="/var/tmp")
    admin, password = f"{run_id}-padmin", "admin-secret-1"
    unix_accounts.append(f"jupyter-{admin}")
    port = free_port()
    config_d = os.path.join(prefix, "config", "jupyterhub_config.d")
    os.makedirs(config_d)
    with open(os.path.join(config_d, "50-site.py"), "w") as f:
        f.write('c.Spawner.environment.update({"FROM_CONFIG_D": "yes"})\n'
                'c.JupyterHub.cookie_secret_file = "/elsewhere"\n')
    with open(os.path.join(prefix, "config", "config.yaml"), "w") as f:
        f.write(f"environments:\n  {ENVIRONMENT}:\n    display_name: Course\n")  # a second environment
    # Several plugins after one --plugin, as TLJH documents.
    cmd = [SYSTEM_PYTHON, BOOTSTRAP, "--prefix", prefix, "--http-port", str(port),
           "--admin", f"{admin}:{password}", "--plugin", SIMPLEST, FLAKY, COMPAT, BROKEN,
           "--machine-wide-links"]  # login shells' PATH: machine-wide, not a test prefix's by default
    env = {"PATH": os.environ["PATH"], "HOME": "/root"}
    try:
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                               env={**env, "TLJH_TEST_PLUGIN_FAIL": "1"})
        with open(os.path.join(prefix, "config", "config.yaml")) as f:
            first_config = f.read()
        assert "simplest_plugin" in first_config, first.stdout + first.stderr
        assert "flaky_plugin" not in first_config, "nothing the failing plugin changed is saved"
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        yield Install(prefix, port, admin, password, first, done)
    finally:
        daemon = os.path.join(prefix, "hub", "bin", "tljh-daemon")
        if os.path.exists(daemon):
            subprocess.run([daemon, "stop", "--prefix", prefix], capture_output=True, timeout=120)
        script = steps.profile_script(Paths(prefix))
        if os.path.exists(script):
            os.unlink(script)
        shutil.rmtree(prefix, ignore_errors=True)
        subprocess.run(["groupdel", COMPAT_GROUP], capture_output=True)
        if not had_apt_package:
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "remove", "-y", "-qq", APT_PACKAGE],
                           capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                     "DEBIAN_FRONTEND": "noninteractive"})


@pytest.fixture(scope="module")
def admin_client(install):
    """The admin, logged in, with a running server (so with a Unix account)."""
    assert install.done.returncode == 0, install.done.stdout + install.done.stderr
    client = HubClient(f"http://127.0.0.1:{install.port}")
    assert client.login(install.admin, install.password).status_code == 302
    assert client.spawn(install.admin)[-1]["ready"] is True
    assert client.get(client.url(f"/user/{install.admin}/lab")).status_code == 200  # OAuth; the server's cookies
    return client


BROKEN_MESSAGE = ("plugin 'broken' (package tljh-plugin-broken) could not be loaded and is skipped: "
                  "ModuleNotFoundError: No module named 'tljh.no_such_module'")


def test_failing_plugins_are_named_and_skipped_and_the_install_completes(install):
    first = install.first
    assert first.returncode == 0, first.stdout + first.stderr
    assert ("plugin 'flaky' (package tljh-plugin-flaky) failed in tljh_config_post_install and is "
            "skipped: ValueError: asked to fail; its changes to config.yaml were not saved") in first.stdout
    assert BROKEN_MESSAGE in first.stdout
    # Named again at the end, with what to do.
    summary = first.stdout[first.stdout.index("Skipped because a plugin failed"):]
    assert "flaky" in summary and "tljh-plugin-broken" in summary and "pip uninstall <package>" in summary
    # A later install (the plugin fixed) works and applies it; the broken one is still skipped.
    assert install.done.returncode == 0, install.done.stdout + install.done.stderr
    assert BROKEN_MESSAGE in install.done.stdout and "flaky" not in install.done.stdout.split("Skipped because")[-1]
    # The last line counts the whole install, bootstrap.py's stage 0 included.
    stage0 = float(re.search(r"Stage 0 done in ([0-9.]+)s", install.done.stdout).group(1))
    total = float(re.fullmatch(r"Done in ([0-9.]+)s\.", install.done.stdout.strip().splitlines()[-1]).group(1))
    assert total > stage0


def test_a_plugin_using_each_tljh_module_works_and_the_hub_runs_in_the_state_dir(install, admin_client):
    """tljh.config's paths, tljh.user's groups, tljh.utils.run_subprocess, tljh.conda, tljh.apt
    (imported); the hub (which ran the new-user hook) works in <prefix>/state, as TLJH's."""
    state = os.path.join(install.prefix, "state")
    tljh_config = install.tljh_config

    def get(key):
        result = subprocess.run([*tljh_config, "get", key], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert get("compat_plugin.paths.install_prefix") == install.prefix
    assert get("compat_plugin.paths.state_dir") == state
    assert get("compat_plugin.paths.config_file") == os.path.join(install.prefix, "config", "config.yaml")
    assert get("compat_plugin.paths.user_env") == os.path.join(install.prefix, "user")
    assert get("compat_plugin.conda_versions") == "0"
    assert os.path.exists(os.path.join(state, "compat-post-install")), "tljh.utils.run_subprocess ran"
    account = f"jupyter-{install.admin}"
    assert account in grp.getgrnam(COMPAT_GROUP).gr_mem, "tljh.user.ensure_group / ensure_user_group"
    with open(os.path.join(state, f"compat-new-user-{account}")) as f:
        assert json.load(f)["cwd"] == state, "the hub's working directory"
    with open(os.path.join(state, "logs", "daemon.log")) as f:
        assert BROKEN_MESSAGE in f.read(), "the daemon names the plugin it skipped"


def test_plugins_take_effect(install, admin_client):
    out, admin, client = install.done.stdout, install.admin, admin_client
    assert "plugin: simplest (package tljh-plugin-simplest)" in out and "plugin: flaky" in out
    assert "config key simplest_plugin belongs to plugin simplest" in out
    assert "channels not used: conda-forge" in out
    assert "Test.jupyterhub_config_set_by_simplest_plugin" in out

    # apt: the package is there.
    assert subprocess.run(["hello"], capture_output=True, text=True).stdout.startswith("Hello, world!")
    # Plugin-owned config keys: in config.yaml, readable and settable with tljh-config; the hub
    # restarts with them (reload refuses an invalid config).
    tljh_config = install.tljh_config
    get = subprocess.run([*tljh_config, "get", "simplest_plugin.present"], capture_output=True, text=True)
    assert get.stdout.strip() == "true", get.stderr
    assert subprocess.run([*tljh_config, "get", "flaky_plugin.ran"], capture_output=True, text=True).stdout.strip() == "true"
    assert subprocess.run([*tljh_config, "set", "simplest_plugin.present", "false"]).returncode == 0
    reload = subprocess.run([*tljh_config, "reload", "hub"], capture_output=True, text=True, timeout=180)
    assert reload.returncode == 0, reload.stdout + reload.stderr

    # The daemon warned once about the settings it cannot apply, naming each.
    with open(os.path.join(install.prefix, "state", "logs", "daemon.log")) as f:
        warnings = [line for line in f if "were not applied" in line]
    assert warnings and all("Test.jupyterhub_config_set_by_simplest_plugin" in w
                            and "JupyterHub.cookie_secret_file" in w for w in warnings)
    assert len(warnings) == 3, "once per daemon start (two installs, reload)"

    # Spawner.default_url from tljh_custom_jupyterhub_config
    landing = client.get(client.url(f"/user/{admin}/"), allow_redirects=False)
    assert landing.headers["Location"].split("?")[0].endswith(f"/user/{admin}/tree"), landing.headers
    kernel = client.start_kernel(admin)
    environ = "__import__('os').environ.get"
    assert client.execute(admin, kernel, f"{environ}('SIMPLEST_PLUGIN')") == "'yes'"
    assert client.execute(admin, kernel, f"{environ}('FROM_CONFIG_D')") == "'yes'"
    assert client.execute(admin, kernel, "__import__('tabulate').__name__") == "'tabulate'"  # user pip package
    assert client.execute(admin, kernel, "open('simplest-new-user').read()") == repr(f"jupyter-{admin}")
    # JupyterHub.load_groups
    token = client.post(client.url(f"/hub/api/users/{admin}/tokens"), json={"note": "t"},
                        headers={"X-XSRFToken": next(c.value for c in client.cookies
                                                     if c.name == "_xsrf" and c.path == "/hub/")})
    assert token.status_code in (200, 201), token.text
    group = client.get(client.url("/hub/api/groups/simplest-group"),
                       headers={"Authorization": f"token {token.json()['token']}"})
    assert group.json()["users"] == ["simplest-member"]


def test_admin_sudo_pip_install_in_a_login_shell(install, admin_client):
    """As in an admin's JupyterLab terminal: a login shell (Debian's /etc/profile resets PATH)."""
    account = f"jupyter-{install.admin}"
    user_bin = os.path.join(install.prefix, "user", "bin")
    login_path = subprocess.run(["su", "-", account, "-c", "echo $PATH"], capture_output=True, text=True,
                                timeout=60).stdout.strip().split(":")
    assert user_bin in login_path, login_path
    ahead = [d for d in login_path[:login_path.index(user_bin)] if os.path.exists(os.path.join(d, "pip"))]
    if ahead:  # only where several installs run at once (tests on a shared machine)
        pytest.skip(f"another install's user environment comes first on login shells' PATH: {ahead}")
    shell = subprocess.run(["su", "-", account, "-c", "command -v pip; sudo -E pip install --quiet pyjokes"],
                           capture_output=True, text=True, timeout=300)
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert shell.stdout.splitlines()[0] == os.path.join(user_bin, "pip")
    check = subprocess.run([os.path.join(user_bin, "python"), "-c", "import pyjokes"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    other = os.path.join(install.prefix, "envs", ENVIRONMENT, "bin", "python")  # environments.* untouched
    assert os.path.exists(other) and subprocess.run([other, "-c", "import pyjokes"], capture_output=True).returncode == 1
    owner = os.stat(os.path.join(install.prefix, "user", "lib")).st_uid
    assert owner == 0, "the user environment stays root-owned"


@pytest.fixture
def course_repo(install):
    """A git repository on this machine, owned by the admin's account (git refuses to read
    repositories of other owners)."""
    top = tempfile.mkdtemp(prefix="tljh-test-course-", dir="/var/tmp")
    os.chmod(top, 0o755)
    repo, work = os.path.join(top, "course.git"), os.path.join(top, "work")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main", work], check=True)
    with open(os.path.join(work, "lesson1.ipynb"), "w") as f:
        f.write('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    subprocess.run([*git, "-C", work, "add", "."], check=True)
    subprocess.run([*git, "-C", work, "commit", "-q", "-m", "lesson"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", work, repo], check=True)
    subprocess.run(["chown", "-R", f"jupyter-{install.admin}", repo], check=True)
    yield repo
    shutil.rmtree(top)


def test_default_user_environment_has_tljh_extras(install, admin_client, course_repo):
    """nbgitpuller (teachers' links), jupyter-resource-usage and ipywidgets, served by the real server."""
    admin, client = install.admin, admin_client
    link = client.get(client.url(f"/user/{admin}/git-pull"),
                      params={"repo": f"file://{course_repo}", "branch": "main", "urlpath": "lab/tree/course/lesson1.ipynb"})
    assert link.status_code == 200 and "git-pull" in link.text, link.text[:500]
    # The page's script then streams the pull from git-pull/api; do what it does.
    with client.get(client.url(f"/user/{admin}/git-pull/api"), stream=True, timeout=120,
                    params={"repo": f"file://{course_repo}", "branch": "main", "targetpath": "course"}) as pull:
        events = [line for line in pull.iter_lines(decode_unicode=True) if line]
    assert any('"phase": "finished"' in e for e in events), events
    kernel = client.start_kernel(admin)
    assert client.execute(admin, kernel, "__import__('os').path.exists('course/lesson1.ipynb')") == "True"
    assert client.execute(admin, kernel, "__import__('ipywidgets').IntSlider().value") == "0"
    metrics = client.get(client.url(f"/user/{admin}/api/metrics/v1"))
    assert metrics.status_code == 200 and "rss" in metrics.json(), metrics.text


def test_uninstall_then_install_again(install, admin_client):
    """Last in this module: it removes the install the other tests use."""
    prefix, admin = install.prefix, install.admin
    daemon = os.path.join(prefix, "hub", "bin", "tljh-daemon")
    home = os.path.expanduser(f"~jupyter-{admin}")
    result = subprocess.run([daemon, "uninstall", "--prefix", prefix, "--yes"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "stopped: tljh-daemon (pid " in out and "stopped: Traefik" in out, out
    assert f"removed: {steps.profile_script(Paths(prefix))}" in out
    assert f"removed: {prefix} (" in out
    assert f"kept:    1 Unix account(s) and their homes: jupyter-{admin}" in out
    assert not os.path.exists(prefix) and not os.path.exists(steps.profile_script(Paths(prefix)))
    assert os.path.isdir(home) and os.path.exists(os.path.join(home, "simplest-new-user"))
    leftovers = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
                 if any(prefix in part for part in p.info["cmdline"] or [])]
    assert leftovers == [], "the daemon, Traefik and the servers are gone"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{install.port}/hub/api", timeout=5)

    again = subprocess.run([SYSTEM_PYTHON, BOOTSTRAP, "--prefix", prefix, "--http-port", str(install.port),
                            "--admin", f"{admin}:a-new-password"], capture_output=True, text=True, timeout=900,
                           env={"PATH": os.environ["PATH"], "HOME": "/root"})
    assert again.returncode == 0, again.stdout + again.stderr
    client = HubClient(f"http://127.0.0.1:{install.port}")
    assert client.login(admin, "a-new-password").status_code == 302
    assert client.spawn(admin)[-1]["ready"] is True
    kernel = (client.get(client.url(f"/user/{admin}/lab")), client.start_kernel(admin))[1]
    assert client.execute(admin, kernel, "open('simplest-new-user').read()") == repr(f"jupyter-{admin}"), \
        "the kept home is the admin's home again"

    # And now everything, accounts included.
    gone = subprocess.run([daemon, "uninstall", "--prefix", prefix, "--remove-users", "--yes"],
                          capture_output=True, text=True, timeout=300)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"removed: Unix account jupyter-{admin} and its home {home} (user {admin})" in gone.stdout
    assert not os.path.exists(home) and not os.path.exists(prefix)
    with pytest.raises(KeyError):
        pwd.getpwnam(f"jupyter-{admin}")
