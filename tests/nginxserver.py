"""A throw-away nginx (Debian's package) on a loopback port, running the reverse-proxy block
from docs/howto-base-url.md, so the documented configuration is the one tested."""

import os
import re
import tempfile

from hubprocess import free_port
from webserver import ForegroundWebServer

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "howto-base-url.md")
NGINX = "/usr/sbin/nginx"


def documented_config():
    """The ```nginx block of the how-to."""
    with open(DOC) as f:
        match = re.search(r"```nginx\n(.*?)```", f.read(), re.S)
    return match.group(1)


class NginxProxy(ForegroundWebServer):
    """nginx on 127.0.0.1:<port> in front of a hub whose Traefik listens on `upstream_port`."""

    name = "nginx"

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

    def command(self):
        # `daemon off`: this process is nginx's master, the one to stop.
        return [NGINX, "-p", self.dir, "-c", self.conf, "-e", f"{self.dir}/error.log"]

    def access_log(self):
        with open(os.path.join(self.dir, "access.log"), errors="replace") as f:
            return f.read()
