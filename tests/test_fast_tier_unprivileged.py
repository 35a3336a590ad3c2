"""The fast tier (tests/fast) needs no root: prove it by running it as `nobody`.

When the suite runs as root (as in CI), this runs the fast tier once more in a
subprocess under an unprivileged uid. When the suite runs unprivileged, the fast
tier itself already runs that way and this test is skipped.
"""

import os
import pwd
import re
import shutil
import tempfile

import pytest

from unprivileged import UNPRIVILEGED, readable_checkout
from unprivileged import run_as as _run_as


@pytest.fixture(scope="session")
def unprivileged_checkout():
    with readable_checkout() as found:
        yield found


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
