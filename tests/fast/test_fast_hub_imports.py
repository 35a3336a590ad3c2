"""What a hub keeps in memory: login backends' heavy libraries load only where they are used.

Config validation loads every login backend's module (for its schema), so a library imported at
the top of one is held by every hub: ldap3 (~3 MiB), authlib, joserfc and cryptography (~9 MiB).
A fresh interpreter loads and checks a config with the dummy login and builds the app, as the
daemon does at start, and must not have imported them."""

import json
import subprocess
import sys

HEAVY = ("ldap3", "authlib", "joserfc", "cryptography")

SCRIPT = r"""
import json, os, sys, tempfile
from tljh_daemon import config as config_mod
from tljh_daemon.app import make_app
from tljh_daemon.paths import Paths

with tempfile.TemporaryDirectory() as prefix:
    paths = Paths(prefix)
    paths.ensure()
    os.makedirs(paths.config_dir, exist_ok=True)
    with open(paths.config_file, "w") as f:
        f.write("auth:\n  type: dummy\n")
    make_app(config_mod.load(paths.config_file), paths)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_a_dummy_login_hub_does_not_load_other_logins_libraries():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "tljh_daemon" in loaded and "aiohttp" in loaded  # it did load the hub
    assert sorted(loaded & set(HEAVY)) == []
