"""The npm package oidc-provider, installed once into a cache directory and started on
127.0.0.1 by tests/oidc/provider.mjs (see there for what it serves)."""

import json
import os
import shutil
import subprocess
import time

import requests

from hubprocess import free_port

NPM_CACHE_DIR = os.environ.get("TLJH_TEST_NPM_DIR", "/var/cache/tljh-test-npm")
OIDC_PROVIDER_VERSION = "8.8.1"  # still runs on Debian 12's Node.js 18
SCRIPT = os.path.join(os.path.dirname(__file__), "oidc", "provider.mjs")
CLIENT_ID = "tljh-test-hub"


def have_node():
    return bool(shutil.which("node") and shutil.which("npm"))


def install_oidc_provider():
    """lib/index.js of oidc-provider, installed with npm into NPM_CACHE_DIR when missing."""
    module = os.path.join(NPM_CACHE_DIR, "node_modules", "oidc-provider")
    entry = os.path.join(module, "lib", "index.js")
    try:
        with open(os.path.join(module, "package.json")) as f:
            if json.load(f)["version"] == OIDC_PROVIDER_VERSION:
                return entry
    except (OSError, ValueError, KeyError):
        pass
    os.makedirs(NPM_CACHE_DIR, exist_ok=True)
    if not os.path.exists(os.path.join(NPM_CACHE_DIR, "package.json")):
        with open(os.path.join(NPM_CACHE_DIR, "package.json"), "w") as f:
            f.write('{"private": true}\n')
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")}
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", f"oidc-provider@{OIDC_PROVIDER_VERSION}"],
                   cwd=NPM_CACHE_DIR, env=env, check=True, timeout=600)
    return entry


class OIDCProvider:
    """A running oidc-provider with one client and the given accounts."""

    def __init__(self, accounts):
        self.accounts = accounts
        self.port = free_port()
        self.client_secret = "test-secret-" + os.urandom(8).hex()
        self.proc = None

    @property
    def issuer(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        env = {**os.environ, "OIDC_PROVIDER_MODULE": install_oidc_provider(), "PORT": str(self.port),
               "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": self.client_secret,
               "ACCOUNTS_JSON": json.dumps(self.accounts), "NODE_ENV": "test"}
        self.proc = subprocess.Popen(["node", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {self.proc.stdout.read().decode(errors='replace')}")
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("oidc-provider did not answer in time")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
