"""A throw-away Apache httpd (Debian's apache2) on a loopback port, running the proxy block
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
APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"


def documented_config():
    """The ```apache block of the how-to."""
    with open(DOC) as f:
        return re.search(r"```apache\n(.*?)```", f.read(), re.S).group(1)


class ApacheProxy:
    """Apache on 127.0.0.1:<port> in front of a hub whose Traefik listens on `upstream_port`."""

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

    def start(self, timeout=30):
        log = open(os.path.join(self.dir, "stderr.log"), "ab")
        # -DFOREGROUND: this process is httpd's parent, the one to stop.
        self.proc = subprocess.Popen([APACHE, "-f", self.conf, "-DFOREGROUND"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"apache2 exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"apache2 did not listen: {self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # httpd stops its children with it
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
