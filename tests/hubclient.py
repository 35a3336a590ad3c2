"""A browser-like HTTP client for the hub (cookie jar, forms, OAuth redirects, kernels)."""

import json
import re
import time
import uuid
from urllib.parse import urlsplit

import requests
import websocket


class HubClient(requests.Session):
    def __init__(self, base_url):
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.path_prefix = urlsplit(self.base_url).path  # a hub under base_url: e.g. '/jupyter'
        self.trust_env = False  # loopback only; and env CA bundles must not override self.verify

    def url(self, path):
        return self.base_url + path

    def xsrf_from(self, html):
        return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)

    def login(self, username, password, next_url=""):
        """Submit the login form; returns the (unfollowed) response."""
        page = self.get(self.url("/hub/login"))
        page.raise_for_status()
        return self.post(
            self.url("/hub/login"),
            data={"_xsrf": self.xsrf_from(page.text), "username": username, "password": password, "next": next_url},
            allow_redirects=False,
        )

    def progress_events(self, name, timeout=180):
        """Read the spawn progress event stream until it ends."""
        events = []
        with self.get(self.url(f"/hub/api/users/{name}/server/progress"), stream=True, timeout=timeout) as r:
            r.raise_for_status()
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    events.append(json.loads(line[5:]))
        return events

    def spawn(self, name, timeout=180):
        """Start (GET /hub/spawn like a browser) and wait for the final progress event."""
        r = self.get(self.url(f"/hub/spawn/{name}"), allow_redirects=False)
        assert r.status_code == 302, r.text
        return self.progress_events(name, timeout)

    def stop(self, name):
        home = self.get(self.url("/hub/home"))
        return self.post(self.url(f"/hub/stop/{name}"), data={"_xsrf": self.xsrf_from(home.text)},
                         allow_redirects=False)

    def server_xsrf(self):
        return next(c.value for c in self.cookies if c.name == "_xsrf" and c.path.startswith(f"{self.path_prefix}/user/"))

    def start_kernel(self, name):
        r = self.post(self.url(f"/user/{name}/api/kernels"), json={"name": "python3"},
                      headers={"X-XSRFToken": self.server_xsrf()})
        r.raise_for_status()
        return r.json()["id"]

    def run(self, name, code):
        """`code`'s result (text/plain) in a new kernel of `name`'s server (through the proxy)."""
        if not any(c.name == "_xsrf" and c.path.startswith(f"{self.path_prefix}/user/{name}/") for c in self.cookies):
            lab = self.get(self.url(f"/user/{name}/lab"))  # the OAuth round trip gives the server's cookies
            assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.status_code
        return self.execute(name, self.start_kernel(name), code)

    def kernel_socket(self, name, kernel_id, timeout=60):
        """A websocket to a kernel's channels (through the proxy), with the server's cookies."""
        ws_url = self.url(f"/user/{name}/api/kernels/{kernel_id}/channels").replace("http", "ws", 1)
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.cookies if c.path.startswith(f"{self.path_prefix}/user/{name}"))
        sslopt = {"ca_certs": self.verify} if isinstance(self.verify, str) else None
        return websocket.create_connection(ws_url, cookie=cookie, timeout=timeout, sslopt=sslopt)

    @staticmethod
    def send_execute(ws, name, code, store_history=False):
        """Send an execute_request for `code`; returns its msg_id (replies carry it as parent)."""
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": name,
                       "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": store_history,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        return msg_id

    @classmethod
    def execute_on(cls, ws, name, code, timeout=60, where=""):
        """Run `code` on an open kernel websocket; text/plain of its result (None for a statement
        without a value). RuntimeError with the kernel's error, prefixed with `where`."""
        msg_id = cls.send_execute(ws, name, code)
        deadline, result = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                result = msg["content"]["data"]["text/plain"]
            elif msg["msg_type"] == "error":
                raise RuntimeError(f"{where}{msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return result
        raise TimeoutError(f"the kernel {where}did not finish")

    def execute(self, name, kernel_id, code, timeout=60):
        """Run `code` over the kernel websocket (through the proxy); return text/plain of the result."""
        ws = self.kernel_socket(name, kernel_id, timeout)
        try:
            return self.execute_on(ws, name, code, timeout)
        finally:
            ws.close()
