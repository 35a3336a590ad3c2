"""A throw-away nginx (Debian's package) on a loopback port, running the reverse-proxy block
from docs/howto-base-url.md, so the documented configuration is the one tested."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from hubprocess import free_port

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "howto-base-url.md")
NGINX = "/usr/sbin/nginx"


def documented_config():
    """The ```nginx block of the how-to."""
    with open(DOC) as f:
        match = re.search(r"```nginx\n(.*?)```", f.read(), re.S)
    return match.group(1)


class NginxProxy:
    """nginx on 127.0.0.1:<port> in front of a hub whose Traefik listens on `upstream_port`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tljh-test-nginx-")
        self.port = free_port()
        self.upstream_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        site = documented_config()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        site = site.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{self.upstream_port}")
        assert f"127.0.0.1:{self.upstream_port}" in site and f"127.0.0.1:{self.port}" in site
        temp_paths = "".join(f"{kind}_temp_path {self.dir}/{kind};\n"
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(self.conf, "w") as f:
            f.write(
                # Workers run as root: the temp directories here are root's.
                ("user root;\n" if os.geteuid() == 0 else "")
                + f"daemon off;\nworker_processes 1;\npid {self.dir}/nginx.pid;\n"
                f"error_log {self.dir}/error.log info;\n"
                "events { worker_connections 256; }\n"
                f"http {{\naccess_log {self.dir}/access.log;\n{temp_paths}{site}}}\n"
            )

    @property
    def conf(self):
        return os.path.join(self.dir, "nginx.conf")

    def start(self, timeout=30):
        log = open(os.path.join(self.dir, "stderr.log"), "ab")
        # `daemon off`: this process is nginx's master, the one to stop.
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", self.conf, "-e", f"{self.dir}/error.log"],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"nginx did not listen: {self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # a fast shutdown; its workers exit with it
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()[-2000:]
            except OSError:
                pass
        return text

    def access_log(self):
        with open(os.path.join(self.dir, "access.log"), errors="replace") as f:
            return f.read()
