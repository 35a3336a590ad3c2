"""A client whose address changes between requests (IPv6 loopback, then IPv4) keeps using
JupyterLab's kernel API: the real jupyterhub-singleuser derives its XSRF token id from the
hub's jupyterhub-session-id cookie, not from the client's address."""

import urllib3.util.connection

import pytest

from hubclient import HubClient
from hubprocess import free_port, needs_root

pytestmark = needs_root


@pytest.fixture(scope="module")
def hub(make_hub, user_env):
    # Traefik on every address, so it answers on both ::1 and 127.0.0.1.
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
        "user_environment": {"path": user_env},
        "http": {"address": "", "port": free_port()},
    })


@pytest.fixture
def connect_to(monkeypatch):
    """connect_to(address): the client's next connections go to `address` (same URL, same
    cookies), so the hub and the server see requests coming from there."""
    real = urllib3.util.connection.create_connection

    def switch(address, client):
        client.close()  # no kept-alive connection from the other address
        monkeypatch.setattr(urllib3.util.connection, "create_connection",
                            lambda target, *args, **kwargs: real((address, target[1]), *args, **kwargs))

    return switch


def test_kernel_api_works_after_the_client_address_changes(hub, run_id, unix_accounts, connect_to):
    name = f"{run_id}-dual"
    unix_accounts.append(f"jupyter-{name}")
    client = HubClient(hub.url)
    connect_to("::1", client)
    assert client.login(name, "pw").status_code == 302
    assert client.cookies.get("jupyterhub-session-id", path="/"), "the hub sets JupyterHub's session id"
    assert client.spawn(name)[-1]["ready"] is True
    lab = client.get(client.url(f"/user/{name}/lab"))  # the OAuth round trip; the server's _xsrf cookie
    assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.status_code
    kernels = client.url(f"/user/{name}/api/kernels")
    created = client.post(kernels, json={"name": "python3"}, headers={"X-XSRFToken": client.server_xsrf()})
    assert created.status_code == 201, created.text
    kernel = created.json()["id"]

    connect_to("127.0.0.1", client)
    deleted = client.delete(f"{kernels}/{kernel}", headers={"X-XSRFToken": client.server_xsrf()})
    assert deleted.status_code == 204, deleted.text
    assert kernel not in [k["id"] for k in client.get(kernels).json()]

    # Logging out clears it, as in JupyterHub.
    client.get(client.url("/hub/logout"))
    assert not client.cookies.get("jupyterhub-session-id", path="/")
