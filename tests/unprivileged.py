"""Running things as an unprivileged user (`nobody`) from a checkout it may not be able to read
(e.g. one under root's 0700 home): `readable_checkout()` gives a checkout and a Python that user
can read, this one when it can, else a copy with its own virtualenv."""

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNPRIVILEGED = "nobody"


def run_as(user, cmd, **kwargs):
    entry = pwd.getpwnam(user)
    return subprocess.run(
        ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *cmd],
        capture_output=True, text=True, **kwargs,
    )


@contextlib.contextmanager
def readable_checkout():
    """(checkout, python) that UNPRIVILEGED can read and run."""
    python = os.path.join(REPO, ".venv", "bin", "python")
    python = python if os.path.exists(python) else sys.executable
    probe = [python, "-c", "import aiohttp, pytest_aiohttp, tljh_daemon"]
    if run_as(UNPRIVILEGED, probe, cwd="/", env={"PYTHONPATH": REPO}).returncode == 0:
        yield REPO, python
        return
    top = tempfile.mkdtemp(prefix="tljh-readable-checkout-")
    os.chmod(top, 0o755)
    try:
        copy = os.path.join(top, "repo")
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__"))
        venv = os.path.join(top, "venv")
        subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, venv], check=True)
        subprocess.run(["uv", "pip", "install", "--quiet", "--python", os.path.join(venv, "bin", "python"),
                        f"{copy}[test]"], check=True)
        subprocess.run(["chmod", "-R", "a+rX", top], check=True)
        yield copy, os.path.join(venv, "bin", "python")
    finally:
        shutil.rmtree(top, ignore_errors=True)
