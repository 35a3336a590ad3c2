"""Smoke tests for the container harness itself."""

import os
import time
import urllib.request

import harness


def fetch(url, timeout=30):
    """GET url from the host, retrying until the server inside is listening."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_container_basics(container):
    state = container.run(["systemctl", "is-system-running"], check=False).stdout.strip()
    assert state in ("running", "degraded"), container.run("systemctl --failed", check=False).stdout
    container.run(["python3", "-c", "import systemd.daemon"])
    assert container.run(["test", "-f", "/src/bootstrap.py"]).returncode == 0
    # The host's environment must not leak in; extra env is passed through.
    out = container.run(["env"], env={"FOO": "bar"}).stdout.split()
    assert sorted(out) == sorted([f"PATH={harness.PATH}", "FOO=bar"])
    assert container.run("read x; echo got $x", input="hi\n").stdout == "got hi\n"
    # HTTPS through the host's CA.
    container.run(["python3", "-c", "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pip/')"])
    # Shared network: a server started inside is reachable from the host on 127.0.0.1.
    port = harness.free_port()
    container.run(["mkdir", "/srv/www"])
    with open(os.path.join(container.root, "srv/www/hello.txt"), "w") as f:
        f.write("hello from inside\n")
    container.run(["systemd-run", "--unit=smoke-http", "--working-directory=/srv/www",
                   "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"])
    assert fetch(f"http://127.0.0.1:{port}/hello.txt") == "hello from inside\n"


def test_memory_limit_enforced(container_factory):
    c = container_factory(delegate_cgroups=True)
    limited = ["systemd-run", "--wait", "-p", "MemoryMax=50M", "python3", "-c"]
    assert c.run([*limited, "x = bytearray(20*1024*1024)"], timeout=60).returncode == 0
    r = c.run([*limited, "x = bytearray(200*1024*1024)"], check=False, timeout=60)
    # cgroup v1: systemd reports the OOM kill as result 'signal', not 'oom-kill'.
    assert r.returncode != 0 and "code=killed/status=KILL" in r.stderr, r.stderr
