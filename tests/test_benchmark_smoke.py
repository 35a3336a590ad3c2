"""benchmarks/run.py --quick --ours-only runs end to end, prints all five B rows and cleans up."""

import os
import pathlib
import pwd
import re
import subprocess
import sys

from hubprocess import needs_root

pytestmark = needs_root
REPO = pathlib.Path(__file__).resolve().parent.parent


def test_quick_benchmark_prints_the_table_and_cleans_up(user_env):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--ours-only", "--user-env", user_env],
        check=False, capture_output=True, text=True, timeout=420,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| B")]
    for bench in ("B1", "B2", "B3", "B4", "B5"):
        assert any(row.startswith(f"| {bench} ") for row in rows), output
    assert "| target |" in result.stdout, output

    workdir, prefix = re.search(r"work directory (\S+); Unix accounts (\S+)-\*", result.stderr).groups()
    assert not os.path.exists(workdir)
    left = [e.pw_name for e in pwd.getpwall() if e.pw_name.startswith((f"{prefix}-", f"jupyter-{prefix}-"))]
    assert not left
