"""ruff, with the project's rules ([tool.ruff] in pyproject.toml), finds nothing in the checkout."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ruff(*args, stdin=None):
    # --no-cache: the checkout may be read-only (the fast tier also runs as `nobody`).
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_ruff_finds_nothing():
    result = ruff("--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_checks_every_part_of_the_code():
    """A directory ruff skipped would pass for the wrong reason."""
    listed = ruff("--show-files", ".").stdout
    for path in ("bootstrap.py", "tljh_daemon/app.py", "tljh/__init__.py", "tljh_installer/__init__.py",
                 "tests/fast/conftest.py", "integration-tests/conftest.py", "benchmarks/run.py",
                 "plugins/tljh-plugin-example/tljh_plugin_example.py"):
        assert os.path.join(REPO, path) in listed, path


def test_the_project_rules_find_real_defects():
    """The configuration is read and selects what it says: an undefined name, a mutable default,
    a dangling task and a blocking call in a coroutine are each reported."""
    bad = ("import asyncio, time\n"
           "def f(x=[]):\n    return undefined_name\n"
           "async def g():\n    asyncio.create_task(g())\n    time.sleep(1)\n")
    result = ruff("--output-format", "concise", "--stdin-filename", "tljh_daemon/bad.py", "-", stdin=bad)
    assert result.returncode == 1, result.stdout + result.stderr
    for code in ("F821", "B006", "RUF006", "ASYNC251"):
        assert code in result.stdout, result.stdout
