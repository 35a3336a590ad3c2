"""A third-party authenticator, installed as a package, is chosen by `auth.type` and logs in
through the real daemon; its own config section is validated with the schema it ships."""

import os
import subprocess
import sys

import pytest

from hubclient import HubClient
from hubprocess import needs_root

HELLO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "tljh-authenticator-hello")


@pytest.fixture(scope="module")
def hello_installed(tmp_path_factory):
    """The package installed into a folder of its own, put on the daemon's path (PYTHONPATH)."""
    target = tmp_path_factory.mktemp("hello-authenticator")
    subprocess.run(["uv", "pip", "install", "--quiet", "--no-deps", "--python", sys.executable,
                    "--target", str(target), HELLO], check=True)
    os.chmod(target, 0o755)
    return str(target)


def hello_config(password="sesame", **extra):
    return {"auth": {"type": "hello", "HelloAuthenticator": {"password": password, **extra}}}


@needs_root
def test_a_plugin_authenticator_logs_users_in(make_hub, hello_installed, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", hello_installed)
    hub = make_hub(hello_config())
    client = HubClient(hub.url)
    page = client.get(client.url("/hub/login"))
    assert "Say hello" in page.text  # the plugin's login_hint
    assert client.login("hello-ann", "wrong").status_code in (200, 403)  # refused: the form again
    assert client.login("bob", "sesame").status_code in (200, 403)  # its prefix rule
    response = client.login("hello-ann", "sesame")
    assert response.status_code == 302, response.text
    assert client.get(client.url("/hub/api/user")).json()["name"] == "hello-ann"


def run_config(prefix, *args, pythonpath=None):
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else {**os.environ, "PYTHONPATH": ""}
    tljh_config = os.path.join(os.path.dirname(sys.executable), "tljh-config")
    return subprocess.run([tljh_config, "--prefix", prefix, *args],
                          capture_output=True, text=True, env=env)


def test_its_schema_and_name_are_checked(tmp_path, hello_installed):
    prefix = str(tmp_path)
    os.makedirs(os.path.join(prefix, "config"))
    found = run_config(prefix, "set", "auth.type", "hello", pythonpath=hello_installed)
    assert found.returncode == 0, found.stderr
    bad = run_config(prefix, "set", "auth.HelloAuthenticator.prefix", "7", pythonpath=hello_installed)
    assert bad.returncode != 0 and "'auth.HelloAuthenticator.prefix': 7 is not of type 'string'" in bad.stderr
    unknown = run_config(prefix, "set", "auth.HelloAuthenticator.colour", "red", pythonpath=hello_installed)
    assert unknown.returncode != 0 and "auth.HelloAuthenticator.colour" in unknown.stderr + unknown.stdout
    missing = run_config(prefix, "set", "spawner.type", "kubernetes")
    assert missing.returncode != 0
    assert "spawner.type" in missing.stderr + missing.stdout
    assert "local, slurm" in missing.stderr + missing.stdout
    gone = run_config(prefix, "set", "auth.type", "pam")
    assert gone.returncode == 0, gone.stderr
