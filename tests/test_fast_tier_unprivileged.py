"""The fast tier (tests/fast) needs no root: prove it by running it as `nobody`.

When the suite runs as root (as in CI), this runs the fast tier once more in a
subprocess under an unprivileged uid. When the suite runs unprivileged, the fast
tier itself already runs that way and this test is skipped.
"""

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNPRIVILEGED = "nobody"


def _run_as(user, cmd, **kwargs):
    entry = pwd.getpwnam(user)
    return subprocess.run(
        ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *cmd],
        capture_output=True, text=True, **kwargs,
    )


@pytest.fixture
def unprivileged_checkout():
    """A checkout and Python the unprivileged user can read: this one when it can, else a copy
    with its own virtualenv (e.g. when the checkout sits under root's 0700 home)."""
    python = os.path.join(REPO, ".venv", "bin", "python")
    python = python if os.path.exists(python) else sys.executable
    probe = [python, "-c", "import aiohttp, pytest_aiohttp, tljh_daemon"]
    if _run_as(UNPRIVILEGED, probe, cwd="/", env={"PYTHONPATH": REPO}).returncode == 0:
        yield REPO, python
        return
    top = tempfile.mkdtemp(prefix="tljh-fast-tier-")
    os.chmod(top, 0o755)
    copy = os.path.join(top, "repo")
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__"))
    venv = os.path.join(top, "venv")
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, venv], check=True)
    subprocess.run(["uv", "pip", "install", "--quiet", "--python", os.path.join(venv, "bin", "python"),
                    f"{copy}[test]"], check=True)
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    yield copy, os.path.join(venv, "bin", "python")
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: the fast tier runs as this user")
def test_fast_tier_passes_as_an_unprivileged_user(unprivileged_checkout):
    repo, python = unprivileged_checkout
    home = tempfile.mkdtemp(prefix="tljh-fast-home-")
    os.chown(home, pwd.getpwnam(UNPRIVILEGED).pw_uid, -1)
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONPATH": repo, "PYTHONDONTWRITEBYTECODE": "1",
               "LANG": "C.UTF-8"}
        script = f'id -u; exec "{python}" -m pytest -q -p no:cacheprovider --basetemp="{home}/tmp" tests/fast'
        result = _run_as(UNPRIVILEGED, ["sh", "-c", script], cwd=repo, env=env, timeout=300)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert result.stdout.split()[0] == str(pwd.getpwnam(UNPRIVILEGED).pw_uid)
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 50, output[-2000:]
    assert not re.search(r"\d+ (failed|error|skipped)", output), output[-2000:]
