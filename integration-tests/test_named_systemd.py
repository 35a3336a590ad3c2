"""Named servers on a booted systemd: each one is its own scope `jupyter-<name>-<server>` with the
limits, reached at /user/<name>/<server>/, and gone when it is removed."""

import json
import time

import pytest

from test_install import installed  # first: it puts tests/ (hubclient) on sys.path

from hubclient import HubClient  # noqa: E402

MEMORY_MIB = 700
CONFIG = f"""limits:
  memory: {MEMORY_MIB}M
named_servers:
  enabled: true
"""


@pytest.fixture(scope="module")
def install(rootfs, pytestconfig):
    with installed(rootfs, pytestconfig, CONFIG) as hub:
        yield hub


def test_a_named_server_is_its_own_scope(install):
    name, server = "nia", "ml"
    client = HubClient(install.url)
    assert client.login(name, "nia-first-password").status_code == 302
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf" and c.path == "/hub/")
    api = client.url(f"/hub/api/users/{name}/servers/{server}")
    r = client.post(api, json={}, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 202, r.text
    events = []
    with client.get(api + "/progress", stream=True, timeout=180) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert events[-1].get("ready"), events
    lab = client.get(client.url(f"/user/{name}/{server}/lab"))
    assert lab.status_code == 200 and lab.url.endswith(f"/user/{name}/{server}/lab")
    scope = install.unit(f"jupyter-{name}-{server}.scope", "ActiveState", "MemoryMax")
    assert scope == {"ActiveState": "active", "MemoryMax": str(MEMORY_MIB * 2**20)}
    assert install.unit(f"jupyter-{name}.scope", "ActiveState")["ActiveState"] == "inactive"  # not started

    r = client.delete(api, json={"remove": True}, headers={"X-XSRFToken": xsrf})
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 60
    while install.unit(f"jupyter-{name}-{server}.scope", "ActiveState")["ActiveState"] == "active":
        assert time.monotonic() < deadline, "the named server's scope is still active"
        time.sleep(0.5)
    model = client.get(client.url(f"/hub/api/users/{name}"), params={"include_stopped_servers": "1"}).json()
    assert server not in model["servers"]
