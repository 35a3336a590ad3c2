"""Run the real daemon (with its real Traefik) as a separate process in a temporary prefix."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from ruamel.yaml import YAML

from tljh_daemon.ports import free_port, free_ports  # noqa: F401 (free_port: the tests import it from here)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: servers run as their own Unix users (run the tests as root)"
)


class HubProcess:
    def __init__(self, prefix, config):
        self.prefix = str(prefix)
        os.makedirs(os.path.join(self.prefix, "config"), exist_ok=True)
        os.chmod(self.prefix, 0o755)
        self.http_port, self.hub_port, self.api_port, https_port = free_ports(4)
        base = {
            "http": {"address": "127.0.0.1", "port": self.http_port},
            "hub": {"port": self.hub_port},
            "traefik_api": {"port": self.api_port},
        }
        https = config.get("https", {})
        if https.get("enabled"):
            base["https"] = {"port": https_port}
            https = {**https, "port": base["https"]["port"]}
            config = {**config, "https": https}
        self.write_config({**base, **config})
        self.proc = None
        self.http_port = config.get("http", {}).get("port", self.http_port)  # a test may choose it
        self.url = f"http://127.0.0.1:{self.http_port}"
        if https.get("enabled"):
            self.url = f"https://127.0.0.1:{https['port']}"
        self.verify = True  # a CA bundle path for HTTPS hubs with a private CA
        self.base_url = config.get("base_url", "/")

    @property
    def config_file(self):
        return os.path.join(self.prefix, "config", "config.yaml")

    def write_config(self, config):
        with open(self.config_file, "w") as f:
            YAML().dump(config, f)

    def update_config(self, **sections):
        yaml = YAML()
        with open(self.config_file) as f:
            config = yaml.load(f)
        config.update(sections)
        self.write_config(config)

    def command(self, *args):
        return [sys.executable, "-m", "tljh_daemon", *args, "--prefix", self.prefix]

    def start(self, timeout=30):
        log = open(os.path.join(self.prefix, "daemon.log"), "ab")
        self.proc = subprocess.Popen(self.command("run"), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + self.base_url + "hub/api", timeout=1, verify=self.verify).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"hub did not come up:\n{self.log()}")

    def log(self):
        with open(os.path.join(self.prefix, "daemon.log"), errors="replace") as f:
            return f.read()

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(30)

    def stop_all(self):
        subprocess.run(self.command("stop"), capture_output=True, timeout=120)
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def traefik_route_names(self):
        r = requests.get(f"http://127.0.0.1:{self.api_port}/api/http/routers",
                         auth=("api_admin", self.api_password()), timeout=5)
        r.raise_for_status()
        return [router["rule"] for router in r.json()]

    def api_password(self):
        with open(os.path.join(self.prefix, "state", "traefik", "api_password")) as f:
            return f.read().strip()
