"""The second day on a booted systemd, with the pre-warm launcher on (the default):
upgrading with the README's command from the shells an admin has, reading a pre-warmed
server's log with the documented command, and re-running the installer with HTTPS on.

Tests run in order on one install (module scope): the HTTPS one comes last.
"""

import os
import re
import sys
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from test_install import ADMIN, PLUGIN_MARKER, PREFIX, User, distinct_free_ports, installed, report

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from pki import make_pki  # noqa: E402

USER_PYTHON = f"{PREFIX}/user/bin/python3"


@pytest.fixture(scope="module")
def install(rootfs, pytestconfig):
    with installed(rootfs, pytestconfig) as hub:
        yield hub


def marker_gone(install):
    path = os.path.join(install.container.root, PLUGIN_MARKER.lstrip("/"))
    os.unlink(path)
    return path


def test_upgrade_from_a_root_login_shell_where_python3_is_the_user_environment(install, pytestconfig):
    # What an admin's shell has after the first install: /etc/profile.d puts the user environment first.
    assert install.sh(["bash", "-lc", "command -v python3"]).strip() == USER_PYTHON
    marker = marker_gone(install)
    m = install.bootstrap(shell="{cmd}")
    report(pytestconfig, f"upgrade from a login shell: bootstrap.py exited after {m.total:.1f}s")
    install.plain_upgrade_seconds = m.total
    assert os.path.exists(marker), "the installer ran to its end (plugin post-install hooks)"
    assert "cannot import systemd" not in m.output


def test_one_documented_command_shows_a_prewarmed_servers_output(install):
    assert f"a user's server: sudo {PREFIX}/hub/bin/tljh-daemon logs <name>" in install.first_output
    bob = User(install, "bob", "bob-first-password")
    assert bob.run("print('hello from the kernel'); 6*7") == "42"
    assert install.unit("jupyter-bob.scope", "ActiveState") == {"ActiveState": "active"}, "pre-warmed: a scope"
    # TLJH's command finds only a service, which a pre-warmed server is not.
    assert install.sh(["journalctl", "--no-pager", "-u", "jupyter-bob"]).strip() == "-- No entries --"
    logs = [f"{PREFIX}/hub/bin/tljh-daemon", "logs", "bob"]
    deadline = time.monotonic() + 60
    while "Jupyter Server" not in (out := install.sh(logs)):
        assert time.monotonic() < deadline, f"no server output from {logs}: {out[-2000:]}"
        time.sleep(0.5)
    assert len(install.sh([*logs, "-n", "3"]).splitlines()) <= 3
    r = install.container.run([*logs[:2], "no/such user"], check=False)
    assert r.returncode == 1 and "cannot contain '/'" in r.stderr, r.stderr


def test_reload_names_the_running_servers_that_keep_their_limits(install):
    install.sh(["tljh-config", "set", "limits.memory", "1G"])
    out = install.sh(["tljh-config", "reload", "hub"])
    assert "Running servers keep the limits they started with until their next start: bob." in out, out
    assert install.unit("jupyter-bob.scope", "MemoryMax")["MemoryMax"] == "infinity", "bob keeps his"
    install.sh(["tljh-config", "unset", "limits.memory"])
    assert "keep the limits" not in install.sh(["tljh-config", "reload", "hub"])


def test_rerun_with_https_through_sudo_finishes_and_says_the_real_url(install, pytestconfig):
    # sudo's secure_path also starts with the user environment (as TLJH has it).
    assert install.sh(["bash", "-lc", "sudo python3 -c 'import sys; print(sys.executable)'"]).strip() == USER_PYTHON
    certs = os.path.join(install.container.root, "etc/tljh-test-certs")
    os.makedirs(certs)
    pki = make_pki(certs, hosts=("hub.example.org",))  # a real name: it never matches 127.0.0.1
    inside = {key: "/etc/tljh-test-certs/" + os.path.basename(path) for key, path in pki.items()}
    (https_port,) = distinct_free_ports(1)
    for key, value in (("https.port", str(https_port)), ("https.tls.cert", inside["cert"]),
                       ("https.tls.key", inside["key"]), ("https.enabled", "true")):
        install.sh(["tljh-config", "set", key, value])
    marker = marker_gone(install)
    install.url = f"https://127.0.0.1:{https_port}"
    m = install.bootstrap(shell="sudo {cmd}")
    report(pytestconfig, f"re-run with HTTPS on: bootstrap.py exited after {m.total:.1f}s "
                         f"(without: {install.plain_upgrade_seconds:.1f}s)")
    assert os.path.exists(marker), "the installer ran to its end (plugin post-install hooks)"
    assert m.total < install.plain_upgrade_seconds + 30, "the hub check does not wait out its timeout"
    assert f"The hub is at https://127.0.0.1:{https_port}/" in m.output
    ready = [line for line in install.sh(["journalctl", "-u", "tljh-daemon", "-o", "cat"]).splitlines()
             if "Hub ready" in line]
    assert ready and ready[-1].endswith(f"https://127.0.0.1:{https_port}/"), ready[-1:]
    # Plain HTTP now only redirects to HTTPS, and the hub answers there with the certificate.
    r = requests.get(f"http://127.0.0.1:{install.http_port}/hub/api", allow_redirects=False, timeout=10)
    assert r.status_code in (301, 308) and r.headers["Location"].startswith("https://"), r.headers
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the CA
    session.verify = pki["ca"]
    class Named(HTTPAdapter):  # connect to 127.0.0.1, check the certificate for hub.example.org
        def init_poolmanager(self, *args, **kwargs):
            kwargs["assert_hostname"] = "hub.example.org"
            super().init_poolmanager(*args, **kwargs)

    session.mount("https://", Named())
    assert session.get(f"https://127.0.0.1:{https_port}/hub/api", timeout=10).status_code == 200
    assert re.search(r"Done in [0-9.]+s", m.output)
    assert ADMIN in m.output
