"""Admission control: with more starts than slots, the rest wait in line, see their place,
and all become ready — none fails because the machine is busy."""

import pathlib
import shutil
import tempfile
import threading

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = needs_root

FAKE_SERVER = """#!/usr/bin/python3
# A stand-in for jupyterhub-singleuser: takes a second to start, then answers.
import http.server, os, time, urllib.parse
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
time.sleep(1)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
http.server.HTTPServer((url.hostname, url.port), Handler).serve_forever()
"""


def test_starts_beyond_the_slots_queue_in_order_and_all_succeed(make_hub, run_id, unix_accounts):
    env = pathlib.Path(tempfile.mkdtemp(dir="/var/tmp"))
    (env / "bin").mkdir()
    (env / "bin" / "jupyterhub-singleuser").write_text(FAKE_SERVER)
    for p in (env, env / "bin", env / "bin" / "jupyterhub-singleuser"):
        p.chmod(0o755)
    names = [f"{run_id}-line{i}" for i in range(3)]
    unix_accounts.extend(f"jupyter-{n}" for n in names)
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": str(env)}, "spawner": {"concurrent_starts": 1}})
    clients = {n: HubClient(hub.url) for n in names}
    for name, client in clients.items():
        assert client.login(name, "pw").status_code == 302
    results = {}

    def spawn(name):
        results[name] = clients[name].spawn(name)

    threads = [threading.Thread(target=spawn, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    shutil.rmtree(env)

    assert all(results[n][-1].get("ready") for n in names), results
    positions = [e["queue_position"] for n in names for e in results[n] if "queue_position" in e]
    assert max(positions) == 2 and min(positions) == 1, results
    waiting = [n for n in names if any("queue_position" in e for e in results[n])]
    assert len(waiting) == 2, "one starts at once, two wait in line"
