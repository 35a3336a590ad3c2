"""A throw-away Apache httpd (Debian's apache2) on a loopback port, running the proxy block
from docs/howto-base-url.md, so the documented configuration is the one tested."""

import os
import re
import tempfile

from hubprocess import free_port
from webserver import ForegroundWebServer

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "howto-base-url.md")
APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"


def documented_config():
    """The ```apache block of the how-to."""
    with open(DOC) as f:
        return re.search(r"```apache\n(.*?)```", f.read(), re.S).group(1)


class ApacheProxy(ForegroundWebServer):
    """Apache on 127.0.0.1:<port> in front of a hub whose Traefik listens on `upstream_port`."""

    name = "apache2"

    def __init__(self, upstream_port):
        self.dir = tempfile.mkdtemp(prefix="tljh-test-apache-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        site = documented_config().replace("http://127.0.0.1:8080", f"http://127.0.0.1:{upstream_port}")
        assert f"127.0.0.1:{upstream_port}" in site
        modules = "".join(f"LoadModule {name}_module {MODULES}/mod_{name}.so\n" for name in
                          ("mpm_event", "authz_core", "proxy", "proxy_http", "proxy_wstunnel", "headers"))
        with open(self.conf, "w") as f:
            f.write(
                f"{modules}ServerRoot {self.dir}\nPidFile {self.dir}/httpd.pid\nErrorLog {self.dir}/error.log\n"
                f"Mutex file:{self.dir}\nListen 127.0.0.1:{self.port}\nServerName 127.0.0.1\n"
                + ("User nobody\nGroup nogroup\n" if os.geteuid() == 0 else "")
                + f"<VirtualHost 127.0.0.1:{self.port}>\n{site}</VirtualHost>\n"
            )

    @property
    def conf(self):
        return os.path.join(self.dir, "httpd.conf")

    def command(self):
        # -DFOREGROUND: this process is httpd's parent, the one to stop.
        return [APACHE, "-f", self.conf, "-DFOREGROUND"]
