"""npm packages the tests need (oidc-provider, axe-core), installed once into a shared cache
directory. Several test runs may share the machine, so installs take a file lock."""

import fcntl
import json
import os
import shutil
import subprocess

NPM_CACHE_DIR = os.environ.get("TLJH_TEST_NPM_DIR", "/var/cache/tljh-test-npm")


def have_node():
    return bool(shutil.which("node") and shutil.which("npm"))


def npm_package(name, version):
    """The directory of npm package `name` at exactly `version`, installed when missing."""
    module = os.path.join(NPM_CACHE_DIR, "node_modules", name)

    def installed():
        try:
            with open(os.path.join(module, "package.json")) as f:
                return json.load(f)["version"] == version
        except (OSError, ValueError, KeyError):
            return False

    if installed():
        return module
    os.makedirs(NPM_CACHE_DIR, exist_ok=True)
    with open(os.path.join(NPM_CACHE_DIR, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():  # another run installed it while we waited
            return module
        if not os.path.exists(os.path.join(NPM_CACHE_DIR, "package.json")):
            with open(os.path.join(NPM_CACHE_DIR, "package.json"), "w") as f:
                f.write('{"private": true}\n')
        env = {**os.environ,
               "NODE_EXTRA_CA_CERTS": os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")}
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", f"{name}@{version}"],
                       cwd=NPM_CACHE_DIR, env=env, check=True, timeout=600)
    return module
