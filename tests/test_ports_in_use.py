"""Issue 10, item 9: a port held by another program stops the daemon and the installer before
anything starts, with a message naming the port, its key and the program holding it."""

import os
import shutil
import subprocess
import sys
import tempfile

import psutil
import pytest

from hubprocess import HubProcess, free_port, needs_root

pytestmark = needs_root

LISTENER = "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',int(sys.argv[1]))); s.listen(); " \
           "print('listening', flush=True); time.sleep(600)"


class Stranger:
    """Another program (a separate process) listening on `port`."""

    def __init__(self, port):
        self.proc = subprocess.Popen([sys.executable, "-c", LISTENER, str(port), "stranger-marker"],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "listening"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def our_traefiks(prefix):
    return [p for p in psutil.process_iter(["cmdline"]) if any(prefix in part for part in p.info["cmdline"] or [])
            and "traefik" in " ".join(p.info["cmdline"])]


@pytest.fixture
def hub():
    prefix = tempfile.mkdtemp(prefix="tljh-test-ports-", dir="/var/tmp")
    hub = HubProcess(prefix, {"auth": {"type": "dummy"}})
    yield hub
    hub.stop_all()
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.parametrize("key, attr", [("http.port", "http_port"), ("hub.port", "hub_port"),
                                       ("traefik_api.port", "api_port")])
def test_daemon_refuses_to_start_on_a_held_port(hub, key, attr):
    port = getattr(hub, attr)
    stranger = Stranger(port)
    try:
        result = subprocess.run(hub.command("run"), capture_output=True, text=True, timeout=120)
        assert result.returncode != 0
        assert f"port {port} ({key}) is in use by pid {stranger.proc.pid}" in result.stderr, result.stderr
        assert f"{sys.executable} -c" in result.stderr  # the holder's command line
        assert "Traceback" not in result.stderr
        assert our_traefiks(hub.prefix) == []  # nothing half-started
    finally:
        stranger.stop()
    hub.start(timeout=60)  # the same config works once the port is free


def test_installer_refuses_a_held_http_port_before_installing(tmp_path):
    prefix = tmp_path / "prefix"
    port = free_port()
    stranger = Stranger(port)
    try:
        result = subprocess.run([sys.executable, "-m", "tljh_installer", "--prefix", str(prefix),
                                 "--http-port", str(port)], capture_output=True, text=True, timeout=120)
    finally:
        stranger.stop()
    assert result.returncode != 0
    assert f"port {port} (http.port) is in use by pid {stranger.proc.pid}" in result.stderr, result.stdout + result.stderr
    assert "Building the user environment" not in result.stdout
    assert not os.path.exists(prefix / "user") and not os.path.exists(prefix / "state" / "tljh.sqlite")
    assert our_traefiks(str(prefix)) == []
