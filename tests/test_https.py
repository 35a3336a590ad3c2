"""HTTPS: an admin's own certificate, and Let's Encrypt mode against a local ACME server (pebble)."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from hubclient import HubClient
from hubprocess import free_port, needs_root
from pki import make_pki

pytestmark = needs_root


@pytest.fixture(scope="module")
def pki():
    directory = tempfile.mkdtemp(dir="/var/tmp")
    yield make_pki(directory)
    shutil.rmtree(directory)


def handshake(port, server_hostname, cafile=None, **context_options):
    """TLS-connect to 127.0.0.1:port; return the negotiated protocol (raises on failure)."""
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    for key, value in context_options.items():
        setattr(context, key, value) if key != "ciphers" else context.set_ciphers(value)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=server_hostname) as tls:
            return tls.version()


def test_own_certificate_serves_hub_and_servers_over_https(make_hub, pki, user_env, run_id, unix_accounts):
    name = f"{run_id}-secure"
    unix_accounts.append(f"jupyter-{name}")
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": user_env},
                    "https": {"enabled": True, "tls": {"cert": pki["cert"], "key": pki["key"]}}}, start=False)
    hub.verify = pki["ca"]
    hub.start()
    https_port = int(hub.url.rsplit(":", 1)[1])

    plain = requests.get(f"http://127.0.0.1:{hub.http_port}/hub/login?next=/hub/home", allow_redirects=False)
    assert plain.status_code in (301, 308)
    assert plain.headers["Location"] == f"https://127.0.0.1:{https_port}/hub/login?next=/hub/home"

    client = HubClient(hub.url)
    client.verify = pki["ca"]
    login = client.login(name, "pw")
    assert login.status_code == 302
    cookie = login.headers["Set-Cookie"]
    assert "jupyterhub-hub-login=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert client.spawn(name)[-1]["ready"] is True
    lab = client.get(client.url(f"/user/{name}/lab"))
    assert lab.status_code == 200 and lab.url.startswith("https://")
    kernel = client.start_kernel(name)
    assert client.execute(name, kernel, "6*7") == "42"  # over wss:// through Traefik

    assert handshake(https_port, "localhost", pki["ca"]) in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLError):  # a TLS 1.2 suite without forward secrecy is refused
        handshake(https_port, "localhost", pki["ca"], maximum_version=ssl.TLSVersion.TLSv1_2,
                  ciphers="AES128-SHA:AES256-SHA")


def tljh_config(prefix, *args):
    return subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", str(prefix), *args],
                          capture_output=True, text=True, timeout=60)


def hub_pid(hub):
    with open(os.path.join(hub.prefix, "state", "daemon.pid")) as f:
        return json.load(f)["pid"]


def test_tljh_documented_https_sequence_own_certificate(make_hub, pki):
    """TLJH's how-to, one command at a time: each `set` is accepted; `reload proxy` refuses
    until the pair is complete, names what is missing and leaves the running hub alone."""
    hub = make_hub({"auth": {"type": "dummy"}})
    pid, https_port = hub_pid(hub), free_port()
    assert tljh_config(hub.prefix, "set", "https.port", str(https_port)).returncode == 0
    steps = [
        (("set", "https.enabled", "true"), "https.enabled", "HTTPS needs a certificate"),
        (("set", "https.tls.key", pki["key"]), "https.tls.cert", "set https.tls.cert too"),
    ]
    for args, key, message in steps:
        done = tljh_config(hub.prefix, *args)
        assert done.returncode == 0, done.stderr
        refused = tljh_config(hub.prefix, "reload", "proxy")
        assert refused.returncode != 0
        assert key in refused.stderr and message in refused.stderr and "unchanged" in refused.stderr, refused.stderr
        assert requests.get(hub.url + "/hub/api", timeout=5).status_code == 200
        assert hub_pid(hub) == pid
    with pytest.raises(requests.RequestException):
        requests.get(f"https://127.0.0.1:{https_port}/hub/api", verify=pki["ca"], timeout=2)

    done = tljh_config(hub.prefix, "set", "https.tls.cert", pki["cert"])
    assert done.returncode == 0, done.stderr
    reload = tljh_config(hub.prefix, "reload", "proxy")
    assert reload.returncode == 0, reload.stderr
    deadline, last = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        try:
            if requests.get(f"https://127.0.0.1:{https_port}/hub/api", verify=pki["ca"], timeout=2).ok:
                break
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    else:
        pytest.fail(f"HTTPS did not come up after reload proxy: {last}")
    assert hub_pid(hub) == pid  # the proxy was reloaded, not the hub


def test_tljh_documented_lets_encrypt_sequence(make_hub, pki):
    hub = make_hub({"auth": {"type": "dummy"}})
    # A loopback ACME directory nobody answers: nothing leaves this machine.
    acme = f"https://127.0.0.1:{free_port()}/dir"
    for args in (("set", "https.port", str(free_port())), ("set", "https.letsencrypt.acme_server", acme),
                 ("set", "https.enabled", "true"), ("set", "https.letsencrypt.email", "admin@tljh.test")):
        assert tljh_config(hub.prefix, *args).returncode == 0
    refused = tljh_config(hub.prefix, "reload", "proxy")
    assert refused.returncode != 0
    assert "https.letsencrypt.domains" in refused.stderr and "add-item" in refused.stderr, refused.stderr
    assert requests.get(hub.url + "/hub/api", timeout=5).status_code == 200
    assert tljh_config(hub.prefix, "add-item", "https.letsencrypt.domains", "tljh.test").returncode == 0
    reload = tljh_config(hub.prefix, "reload", "proxy")
    assert reload.returncode == 0, reload.stderr
    static = os.path.join(hub.prefix, "state", "traefik", "traefik.yaml")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(static) as f:
            text = f.read()
        if "admin@tljh.test" in text:
            break
        time.sleep(0.2)
    assert "admin@tljh.test" in text and acme in text


def test_set_checks_the_one_value_and_start_checks_the_pairs(tmp_path, pki):
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "config.yaml"
    config.write_text("http:\n  port: 80\n")
    before = config.read_text()
    missing = tljh_config(tmp_path, "set", "https.tls.cert", "/nonexistent.pem")
    assert missing.returncode != 0 and "https.tls.cert" in missing.stderr and "does not exist" in missing.stderr
    assert config.read_text() == before
    for args in (("set", "https.tls.cert", pki["cert"]), ("set", "https.tls.key", pki["other_key"])):
        assert tljh_config(tmp_path, *args).returncode == 0
    # The pair does not fit: the daemon refuses to start, naming the problem.
    start = subprocess.run([sys.executable, "-m", "tljh_daemon", "run", "--prefix", str(tmp_path)],
                           capture_output=True, text=True, timeout=60)
    assert start.returncode != 0 and "do not load together" in start.stderr, start.stderr


@pytest.mark.skipif(not shutil.which("pebble"), reason="Debian's pebble package is not installed")
def test_lets_encrypt_mode_gets_a_certificate_from_pebble(make_hub, pki, tmp_path):
    dns_port, challtest_port, acme_port, pebble_mgmt = (free_port() for _ in range(4))
    hub = make_hub({"auth": {"type": "dummy"}, "users": {"admin": ["root-admin"]},
                    "https": {"enabled": True, "letsencrypt": {
                        "email": "admin@tljh.test", "domains": ["tljh.test"],
                        "acme_server": f"https://127.0.0.1:{acme_port}/dir", "acme_ca_file": pki["ca"]}}},
                   start=False)
    hub.verify = False  # until the ACME certificate arrives, Traefik serves its default one
    pebble_config = tmp_path / "pebble.json"
    pebble_config.write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme_port}", "managementListenAddress": f"127.0.0.1:{pebble_mgmt}",
        "certificate": pki["cert"], "privateKey": pki["key"],
        "httpPort": hub.http_port, "tlsPort": free_port(), "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    dns = subprocess.Popen(["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                            "-tlsalpn01", "", "-management", f"127.0.0.1:{challtest_port}",
                            "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pebble = subprocess.Popen(["pebble", "-config", str(pebble_config), "-dnsserver", f"127.0.0.1:{dns_port}"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        hub.start()
        https_port = int(hub.url.rsplit(":", 1)[1])
        root = requests.get(f"https://127.0.0.1:{pebble_mgmt}/roots/0", verify=pki["ca"], timeout=5).text
        root_file = tmp_path / "pebble-root.pem"
        root_file.write_text(root)
        deadline, last = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                assert handshake(https_port, "tljh.test", str(root_file))
                break
            except (ssl.SSLError, OSError) as e:
                last = e
                time.sleep(0.5)
        else:
            with open(os.path.join(hub.prefix, "state", "logs", "traefik.log")) as f:
                traefik_log = f.read()[-3000:]
            pytest.fail(f"no certificate from pebble within 60s ({last}); Traefik's log:\n{traefik_log}")
        acme_store = os.path.join(hub.prefix, "state", "traefik", "acme.json")
        assert oct(os.stat(acme_store).st_mode & 0o777) == "0o600"
        admin = HubClient(hub.url)
        admin.verify = False
        admin.login("root-admin", "x")
        panel = admin.get(admin.url("/hub/admin")).text
        assert "Let&#39;s Encrypt (ACME)" in panel and "Pebble Intermediate" in panel, panel[-2000:]
    finally:
        for proc in (pebble, dns):
            proc.terminate()
            proc.wait(10)


def test_stop_works_even_when_the_config_became_invalid(make_hub, pki, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki["cert"], cert)
    shutil.copy(pki["key"], key)
    hub = make_hub({"auth": {"type": "dummy"},
                    "https": {"enabled": True, "tls": {"cert": str(cert), "key": str(key)}}}, start=False)
    hub.verify = pki["ca"]
    hub.start()
    with open(os.path.join(hub.prefix, "state", "traefik", "traefik.pid")) as f:
        traefik = json.load(f)["pid"]
    cert.unlink()  # config.yaml now names a missing file
    result = subprocess.run(hub.command("stop"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    hub.proc.wait(10)
    assert not psutil_alive(traefik)


def psutil_alive(pid):
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
