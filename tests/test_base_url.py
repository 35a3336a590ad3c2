"""base_url behind a real nginx: the documented proxy block in front of a hub at /jupyter/,
and a headless Chromium that logs in, spawns, runs code in a JupyterLab kernel and logs out.

nginx forwards only /jupyter/, so any page, script, API call or websocket that escapes the
prefix fails here as it would on a real site."""

import os
from urllib.parse import urlsplit

import pytest
import requests

from apacheserver import APACHE, ApacheProxy
from hubclient import HubClient
from hubprocess import needs_root
from labpage import run_code_in_a_new_notebook
from nginxserver import NGINX, NginxProxy

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not os.path.exists(NGINX), reason="Debian's nginx is not installed"),
]


@pytest.fixture(scope="session")
def nginx():
    proxy = NginxProxy().start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def apache(nginx):
    """Apache in front of the same hub (the one nginx proxies to)."""
    proxy = ApacheProxy(nginx.upstream_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def hub(make_hub, nginx, user_env, run_id, unix_accounts):
    user = f"{run_id}-nx"
    unix_accounts.extend([f"jupyter-{user}", f"jupyter-{run_id}-ap"])
    hub = make_hub({"base_url": "/jupyter/", "http": {"address": "127.0.0.1", "port": nginx.upstream_port},
                    "auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": user_env}})
    hub.user = user
    return hub


def test_redirects_through_nginx_keep_the_prefix(hub, nginx):
    r = requests.get(nginx.url + "/jupyter/", allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["Location"]) == (302, "/jupyter/hub/")
    r = requests.get(nginx.url + "/jupyter/hub/home", timeout=10)
    assert urlsplit(r.url).path == "/jupyter/hub/login" and 'action="/jupyter/hub/login"' in r.text
    assert requests.get(nginx.url + "/jupyter/hub/api", timeout=10).json()["version"]
    assert requests.get(nginx.url + "/hub/login", timeout=10).status_code == 404  # nginx's, not the hub's


def test_login_spawn_run_code_logout_in_a_browser(hub, nginx, browser):
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(nginx.url + "/jupyter/")
    page.wait_for_url("**/jupyter/hub/login")
    page.fill("input[name=username]", hub.user)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    # Spawn page, progress, then the server's OAuth round trip, all through nginx.
    page.wait_for_url(f"**/jupyter/user/{hub.user}/lab**", timeout=180_000)
    run_code_in_a_new_notebook(page, "print(6 * 7, 'from the kernel')")
    # The kernel's websocket goes through nginx's upgrade headers.
    page.locator(".jp-OutputArea-output", has_text="42 from the kernel").wait_for(timeout=120_000)

    # JupyterLab's own File > Log Out goes to the hub's logout under the prefix.
    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.locator(".lm-Menu-item[data-command='hub:logout']").click()
    page.wait_for_url("**/jupyter/hub/login**", timeout=30_000)
    page.goto(nginx.url + "/jupyter/hub/home")
    page.wait_for_url("**/jupyter/hub/login?next=**")

    origin = nginx.url + "/"
    escaped = [url for url in requested
               if url.startswith(origin) and not urlsplit(url).path.startswith("/jupyter/")]
    assert not escaped, escaped
    assert any(url.startswith(f"{nginx.url}/jupyter/hub/api/oauth2/authorize") for url in requested)
    assert f"/jupyter/user/{hub.user}/api/kernels/" in nginx.access_log()  # the websocket, via nginx
    page.close()


@pytest.mark.skipif(not os.path.exists(APACHE), reason="Debian's apache2 is not installed")
def test_apache_block_proxies_pages_oauth_and_kernels(hub, apache, run_id):
    """The how-to's Apache block: redirects, login, spawn, the server's OAuth, and a kernel's
    websocket (upgrade=websocket, Host kept for the Origin check)."""
    r = requests.get(apache.url + "/jupyter/", allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["Location"]) == (302, "/jupyter/hub/")
    name = f"{run_id}-ap"
    client = HubClient(apache.url + "/jupyter")
    assert client.login(name, "pw").status_code == 302
    assert client.spawn(name)[-1]["ready"] is True
    assert client.get(client.url(f"/user/{name}/lab")).status_code == 200
    kernel = client.start_kernel(name)
    assert client.execute(name, kernel, "6 * 7") == "42"
