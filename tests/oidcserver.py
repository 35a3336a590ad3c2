"""The npm package oidc-provider, installed once into a cache directory and started on
127.0.0.1 by tests/oidc/provider.mjs (see there for what it serves)."""

import json
import os
import subprocess
import time

import requests

from hubprocess import free_port
from npmcache import have_node, npm_package  # noqa: F401 (have_node: for the tests)

OIDC_PROVIDER_VERSION = "8.8.1"  # still runs on Debian 12's Node.js 18
SCRIPT = os.path.join(os.path.dirname(__file__), "oidc", "provider.mjs")
CLIENT_ID = "tljh-test-hub"


def install_oidc_provider():
    """lib/index.js of oidc-provider, installed with npm when missing."""
    return os.path.join(npm_package("oidc-provider", OIDC_PROVIDER_VERSION), "lib", "index.js")


class OIDCProvider:
    """A running oidc-provider with one client and the given accounts."""

    def __init__(self, accounts):
        self.accounts = accounts
        self.port = free_port()
        self.client_secret = "test-secret-" + os.urandom(16).hex()  # >= 256 bits: the HS256 client's key
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
