"""bootstrap.py as a user runs it, on this machine (no systemd as PID 1: process mode)."""

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

import requests

import pytest

from hubprocess import needs_root
from hubclient import HubClient
from hubprocess import free_port
from tljh_daemon.paths import Paths
from tljh_installer import steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP = os.path.join(ROOT, "bootstrap.py")
EXAMPLE_PLUGIN = os.path.join(ROOT, "plugins", "tljh-plugin-example")
PLUGIN_MARKER = "/var/lib/tljh-plugin-example/post_install"
MACHINE_TLJH_CONFIG = "/usr/local/bin/tljh-config"
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def machine_link():
    """What /usr/local/bin/tljh-config is: its target, "file", or None."""
    if os.path.islink(MACHINE_TLJH_CONFIG):
        return os.readlink(MACHINE_TLJH_CONFIG)
    return "file" if os.path.exists(MACHINE_TLJH_CONFIG) else None


def load_bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("os_release, expected", [
    ({"ID": "centos", "VERSION_ID": "9", "PRETTY_NAME": "CentOS Stream 9"}, "unsupported operating system 'CentOS Stream 9'"),
    ({"ID": "ubuntu", "VERSION_ID": "20.04", "PRETTY_NAME": "Ubuntu 20.04"}, "Ubuntu 20.04 is too old"),
    ({"ID": "debian", "VERSION_ID": "10", "PRETTY_NAME": "Debian 10"}, "Debian 10 is too old"),
])
def test_unsupported_os_is_refused_with_a_clear_message(capsys, os_release, expected):
    with pytest.raises(SystemExit):
        load_bootstrap().check_os(os_release)
    err = capsys.readouterr().err
    assert expected in err and "Debian >= 11, Ubuntu >= 22.04" in err


def test_supported_os_passes():
    load_bootstrap().check_os({"ID": "debian", "VERSION_ID": "12"})
    load_bootstrap().check_os({"ID": "ubuntu", "VERSION_ID": "24.04"})


@needs_root
def test_without_root_it_reruns_itself_under_sudo_or_says_it_needs_root():
    # bootstrap.py stands alone (it is piped from curl): a copy nobody can read, wherever the checkout is.
    readable = tempfile.mkdtemp(prefix="tljh-bootstrap-")
    os.chmod(readable, 0o755)
    script = shutil.copy(BOOTSTRAP, os.path.join(readable, "bootstrap.py"))
    os.chmod(script, 0o644)
    as_nobody = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 SYSTEM_PYTHON, script, "--prefix", "/nonexistent"]
    # No sudo on the PATH (a bare VM's other accounts): a clear error, nothing done.
    result = subprocess.run(as_nobody, capture_output=True, text=True, timeout=60, env={"PATH": "/nonexistent"})
    assert result.returncode == 1
    assert "must run as root" in result.stderr
    # With sudo: it hands over to sudo, which here refuses `nobody` (no terminal, no sudoers entry).
    result = subprocess.run(as_nobody, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "TLJH_INSTALL_PREFIX": "/nonexistent"},
                            stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "running it again with sudo" in result.stderr
    assert "sudo:" in result.stderr  # sudo's own refusal
    assert not os.path.exists("/nonexistent")
    shutil.rmtree(readable)


@needs_root
def test_a_prefix_under_tmp_is_refused_before_anything_is_installed():
    prefix = os.path.join("/tmp", f"tljh-refused-{os.getpid()}")
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "TLJH_BOOTSTRAP_SKIP_OS_CHECK": "1"}
    r = subprocess.run([SYSTEM_PYTHON, BOOTSTRAP, "--prefix", prefix, "--admin", "a"], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"--prefix {prefix} is under /tmp, and every user server gets a private /tmp" in r.stderr
    assert not os.path.exists(prefix) and "Creating the hub environment" not in r.stdout


def test_under_systemd_var_tmp_is_refused_too(capsys):
    bootstrap = load_bootstrap()
    bootstrap.check_prefix("/var/tmp/tljh", systemd=False)  # process mode: the launcher hides /tmp only
    with pytest.raises(SystemExit):
        bootstrap.check_prefix("/var/tmp/tljh", systemd=True)
    assert "private /var/tmp (PrivateTmp=)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bootstrap.check_prefix("/tmp", systemd=False)
    bootstrap.check_prefix("/opt/tljh", systemd=True)
    bootstrap.check_prefix("/tmpfoo/tljh", systemd=True)


@pytest.fixture
def prefix(unix_accounts, run_id):
    path = tempfile.mkdtemp(prefix="tljh-test-install-", dir="/var/tmp")
    yield path
    daemon = os.path.join(path, "hub", "bin", "tljh-daemon")
    if os.path.exists(daemon):
        subprocess.run([daemon, "stop", "--prefix", path], capture_output=True, timeout=120)
    script = steps.profile_script(Paths(path))
    if os.path.exists(script):
        os.unlink(script)
    shutil.rmtree(path, ignore_errors=True)


@needs_root
def test_install_in_process_mode_then_upgrade_keeps_servers(prefix, run_id, unix_accounts):
    admin, password = f"{run_id}-admin", "admin-secret-1"
    unix_accounts.append(f"jupyter-{admin}")
    port = free_port()
    if os.path.exists(PLUGIN_MARKER):
        os.unlink(PLUGIN_MARKER)
    cmd = [SYSTEM_PYTHON, BOOTSTRAP, "--prefix", prefix, "--http-port", str(port),
           "--plugin", EXAMPLE_PLUGIN, "--admin", f"{admin}:{password}"]
    env = {"PATH": os.environ["PATH"], "HOME": "/root"}
    pages, installing = [], threading.Event()

    def watch_progress_page():
        while not installing.is_set():
            try:
                r = requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                if "being installed" in r.text:
                    pages.append(r.text)
            except requests.RequestException:
                pass
            time.sleep(0.2)

    link_before = machine_link()
    watcher = threading.Thread(target=watch_progress_page)
    watcher.start()
    first = subprocess.run([*cmd, "--show-progress-page"], capture_output=True, text=True, timeout=900, env=env)
    installing.set()
    watcher.join()
    assert any("Building the user environment" in page for page in pages), pages[-1:]
    assert not any(password in page or "installer.log" in page for page in pages)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"The hub is at http://127.0.0.1:{port}/" in first.stdout
    assert "Building the user environment" in first.stdout and "tljh-daemon stop" in first.stdout
    # Not the default prefix: the machine's tljh-config is not this install's to take.
    assert machine_link() == link_before
    assert f"this install's tljh-config is {prefix}/hub/bin/tljh-config" in first.stdout
    assert not os.path.exists(steps.profile_script(Paths(prefix))), "nor every login shell's PATH"

    client = HubClient(f"http://127.0.0.1:{port}")
    assert client.login(admin, "wrong-password").status_code == 403
    assert client.login(admin, password).status_code == 302
    assert client.spawn(admin)[-1]["ready"] is True
    assert client.get(client.url(f"/user/{admin}/lab")).status_code == 200
    kernel = client.start_kernel(admin)
    assert client.execute(admin, kernel, "import os; os.getuid()") != "0"
    sudo = "__import__('subprocess').run(['sudo','-n','id','-u'],capture_output=True,text=True).stdout.strip()"
    assert client.execute(admin, kernel, sudo) == "'0'", "admins get sudo"

    # Every hook of the example plugin took effect.
    assert "plugin: example" in first.stdout
    assert shutil.which("tree"), "tljh_extra_apt_packages"
    subprocess.run([os.path.join(prefix, "hub", "bin", "python"), "-c", "import six"], check=True)
    assert client.execute(admin, kernel, "__import__('cowsay').__name__") == "'cowsay'"
    assert client.execute(admin, kernel, "open('WELCOME.txt').read()") == repr(f"Welcome, jupyter-{admin}!\n")
    assert client.execute(admin, kernel, "__import__('os').environ['TLJH_EXAMPLE_PLUGIN']") == repr(f"hello {admin}")
    with open(os.path.join(prefix, "config", "config.yaml")) as f:
        assert "default_app: jupyterlab" in f.read()
    assert os.path.exists(PLUGIN_MARKER)

    log = os.path.join(prefix, "installer.log")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    with open(log) as f:
        assert password not in f.read()
    for private in ("state", "config"):
        assert stat.S_IMODE(os.stat(os.path.join(prefix, private)).st_mode) == 0o700

    # A routed service no role lets users reach: the upgrade says so (users no longer hold
    # access:services by default), with the commands that grant it.
    assert "only admins can reach" not in first.stdout
    tljh_config = [os.path.join(prefix, "hub", "bin", "tljh-config"), "--prefix", prefix]
    for key, value in (("services.board.api_token", "board-token-abcdefgh"),
                       ("services.board.url", f"http://127.0.0.1:{free_port()}")):
        subprocess.run([*tljh_config, "set", key, value], check=True)
    with open(os.path.join(prefix, "config", "config.yaml")) as f:
        config_before = f.read()
    # Asked explicitly, a non-default install links tljh-config (unless the machine has its own).
    claim = link_before is None
    second = subprocess.run([*cmd[:-4], *(["--machine-wide-links"] if claim else [])],
                            capture_output=True, text=True, timeout=900, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert ("note: only admins can reach the service(s) board" in second.stdout
            and "tljh-config add-item roles.board-users.scopes access:services!service=board" in second.stdout), \
        second.stdout
    if claim:
        assert machine_link() == os.path.join(prefix, "hub", "bin", "tljh-config")
    with open(os.path.join(prefix, "config", "config.yaml")) as f:
        assert f.read() == config_before
    # The same kernel (so the same server process) still answers, with the same cookies.
    assert client.execute(admin, kernel, "6*7") == "42"

    # tljh-config reload works in process mode: the hub restarts, servers keep running.
    reload = subprocess.run([*tljh_config, "reload", "hub"], capture_output=True, text=True, timeout=120)
    assert reload.returncode == 0, reload.stderr
    assert client.get(client.url("/hub/home")).status_code == 200
    assert client.execute(admin, kernel, "6*7") == "42"
    new_port = free_port()
    subprocess.run([*tljh_config, "set", "http.port", str(new_port)], check=True)
    subprocess.run([*tljh_config, "reload", "proxy"], check=True, timeout=120)
    moved = HubClient(f"http://127.0.0.1:{new_port}")
    moved.cookies = client.cookies
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if moved.get(moved.url(f"/user/{admin}/api/status"), timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    assert moved.execute(admin, kernel, "6*7") == "42"

    # Stopping it leaves nothing machine-wide pointing into it.
    stopped = subprocess.run([os.path.join(prefix, "hub", "bin", "tljh-daemon"), "stop", "--prefix", prefix],
                             capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    if claim:
        assert f"Removed {MACHINE_TLJH_CONFIG}" in stopped.stdout, stopped.stdout
    assert machine_link() == link_before

def test_help_lists_every_flag():
    """bootstrap.py works alone (piped from curl), so it lists the installer's options itself."""
    shown = subprocess.run([sys.executable, BOOTSTRAP, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    from tljh_installer.cli import parser

    flags = {flag for action in parser()._actions for flag in action.option_strings if flag.startswith("--")}
    assert flags - {"--help"} and all(flag in shown.stdout for flag in flags), shown.stdout
    for own in ("--prefix", "--pip-spec"):
        assert own in shown.stdout
