"""--show-progress-page: a status page on the HTTP port while the install runs.

It shows step names and their state only: never the log, arguments or secrets.
It stops before Traefik takes the port over.
"""

import html
import http.server
import threading


class ProgressPage:
    def __init__(self, steps, address, port):
        self.steps = steps
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = page.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # nothing about requests goes anywhere
                pass

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def render(self):
        rows = "".join(f"<li>{html.escape(name)}: done</li>" for name, _ in self.steps.done)
        if self.steps.current:
            rows += f"<li><strong>{html.escape(self.steps.current)}: running…</strong></li>"
        return (
            "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='2'>"
            "<title>Installing JupyterHub</title></head><body><h1>JupyterHub is being installed</h1>"
            f"<ol>{rows}</ol><p>This page refreshes itself; the hub appears here when it is ready.</p>"
            "</body></html>"
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
