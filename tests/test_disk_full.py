"""The disk holding the hub's state fills up, then is freed, without a restart.

The state directory is a small tmpfs (the database, logs and Traefik files live there):
/hub/health turns 503 with the reason, logins, token creation and spawns get a clear
503 page or JSON (never a bare 500), reads keep working, and once space is freed
everything works again in the same daemon.
"""

import errno
import os
import subprocess
import time

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = needs_root
FULL = "the disk holding its state is full"


@pytest.fixture(scope="module")
def names(run_id, unix_accounts):
    names = {role: f"{run_id}-{role}" for role in ("disk", "late")}
    unix_accounts.extend(f"jupyter-{n}" for n in names.values())
    return names


@pytest.fixture(scope="module")
def hub(make_hub, user_env):
    hub = make_hub({"auth": {"type": "dummy"}, "user_environment": {"path": user_env}}, start=False)
    state = os.path.join(hub.prefix, "state")
    os.makedirs(state, mode=0o700)
    # Larger than the free space below which /hub/health already says full (storage.LOW_SPACE_BYTES).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", state], check=True)
    try:
        yield hub.start()
    finally:
        hub.stop_all()  # before unmounting: the daemon keeps its database open
        subprocess.run(["umount", state], check=True)


def fill(directory):
    """Write a file until the file system refuses any more bytes; returns its path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


def health(hub):
    return requests.get(hub.url + "/hub/health", timeout=10)


def wait_for_health(hub, status, timeout=30):
    deadline = time.monotonic() + timeout
    while (r := health(hub)).status_code != status:
        assert time.monotonic() < deadline, f"/hub/health stayed {r.status_code}: {r.text}"
        time.sleep(0.2)
    return r


def api(client, method, path, **kwargs):
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    return client.request(method, client.url(path), headers={"X-XSRFToken": xsrf}, **kwargs)


def assert_clear_503(response, api_call):
    assert response.status_code == 503, (response.status_code, response.text[:300])
    if api_call:
        body = response.json()
        assert body["status"] == 503 and FULL in body["message"], body
    else:
        assert "text/html" in response.headers["Content-Type"]
        assert "cannot save changes" in response.text and FULL in response.text
        assert "Traceback" not in response.text


def test_disk_full_then_freed(hub, names):
    name, late = names["disk"], names["late"]
    client = HubClient(hub.url)
    assert client.login(name, "any").status_code == 302
    made = api(client, "POST", f"/hub/api/users/{name}/tokens", json={"note": "before"})
    assert made.status_code == 201, made.text
    token = {"Authorization": f"token {made.json()['token']}"}
    assert health(hub).json() == {"status": "ok"}

    filler = fill(os.path.join(hub.prefix, "state"))
    try:
        r = wait_for_health(hub, 503)
        assert r.json()["message"] == f"The hub cannot save changes: {FULL}"
        assert hub.prefix not in r.text, "no paths on an unauthenticated page"

        assert_clear_503(HubClient(hub.url).login(late, "any"), api_call=False)
        assert_clear_503(api(client, "POST", f"/hub/api/users/{name}/tokens", json={}), api_call=True)
        assert_clear_503(api(client, "POST", f"/hub/api/users/{name}/server"), api_call=True)
        assert_clear_503(client.get(client.url(f"/hub/spawn/{name}"), allow_redirects=False), api_call=False)

        # What needs no writing keeps working.
        me = requests.get(hub.url + "/hub/api/user", headers=token, timeout=10)
        assert me.status_code == 200 and me.json()["name"] == name
        assert client.get(client.url("/hub/home")).status_code == 200
    finally:
        os.unlink(filler)

    # Same daemon, no restart.
    assert wait_for_health(hub, 200).json() == {"status": "ok"}
    assert HubClient(hub.url).login(late, "any").status_code == 302
    assert api(client, "POST", f"/hub/api/users/{name}/tokens", json={}).status_code == 201
    assert client.spawn(name)[-1]["ready"] is True
    assert client.get(client.url(f"/user/{name}/lab")).status_code == 200
