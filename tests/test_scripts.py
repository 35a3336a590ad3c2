"""scripts/test-fast: the fast tier's entry point never installs Debian packages
(scripts/test, for the whole suite, installs the missing ones as root)."""

import os
import stat
import subprocess

import pytest

from hubprocess import needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@needs_root
@pytest.mark.parametrize("script, installs", [("scripts/test-fast", False), ("scripts/test", True)])
def test_only_the_whole_suite_installs_debian_packages(tmp_path, script, installs):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "apt-calls"
    apt = fake_bin / "apt-get"
    apt.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR)
    # Without /usr/sbin on the PATH, slapd looks missing: scripts/test would install it.
    env = {"PATH": f"{fake_bin}:{REPO}/.venv/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root",
           "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    args = ["--collect-only", "-q", "-p", "no:cacheprovider"]
    if script == "scripts/test":
        args.append("tests/fast/test_fast_layers.py")
    r = subprocess.run([os.path.join(REPO, script), *args], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "test_fast_layers" in r.stdout
    assert calls.exists() == installs, calls.read_text() if calls.exists() else "no apt-get call"
