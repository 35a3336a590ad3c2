"""End to end: log in through Traefik, spawn a real jupyterhub-singleuser, run code in a kernel.

One hub (dummy auth with a shared password) serves the whole module; the tests
run in order and build on each other, like a user's session would. The journey runs twice:
with the pre-warm launcher (the default) and with `spawner.prewarm: false`.
"""

import html
import os
import pwd
import re
import stat
import time
from urllib.parse import urlparse

import psutil
import pytest
import requests

from hubprocess import needs_root
from hubclient import HubClient

pytestmark = needs_root
PASSWORD = "class-password"


@pytest.fixture(scope="module", params=[True, False], ids=["prewarm", "fresh"])
def prewarm(request):
    """The whole journey runs twice: servers forked by the pre-warm launcher, then started fresh."""
    return request.param


@pytest.fixture(scope="module")
def names(run_id, unix_accounts, prewarm):
    tag = "" if prewarm else "f"
    names = {role: f"{run_id}-{role}{tag}" for role in ("alice", "bob", "banned")}
    unix_accounts.extend(f"jupyter-{n}" for n in names.values())
    return names


@pytest.fixture(scope="module")
def hub(make_hub, user_env, names, prewarm):
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
        "users": {"allowed": [names["alice"], names["bob"]], "banned": [names["banned"]]},
        "user_environment": {"path": user_env},
        "spawner": {"prewarm": prewarm},
    })


@pytest.fixture(scope="module")
def alice(hub, names):
    client = HubClient(hub.url)
    assert client.login(names["alice"], PASSWORD).status_code == 302
    return client


def singleuser_port(unix_user):
    """The port a user's live single-user server listens on (started fresh, or forked by the
    pre-warm launcher, whose children show the launcher's command line)."""
    for proc in psutil.process_iter(["username", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if (proc.info["username"] == unix_user and proc.info["status"] != psutil.STATUS_ZOMBIE
                and any("jupyterhub-singleuser" in a or a.endswith("launcher.py") for a in cmdline)):
            try:
                env = proc.environ()
                listening = [c.laddr.port for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
            except psutil.Error:
                continue
            # Match on the hub user too: another PID namespace (a test container) may reuse the uid.
            # (A forked server's /proc environ is the launcher's, without JUPYTERHUB_USER.)
            if env.get("JUPYTERHUB_USER", unix_user.removeprefix("jupyter-")) == unix_user.removeprefix("jupyter-"):
                if "JUPYTERHUB_SERVICE_URL" in env:
                    return urlparse(env["JUPYTERHUB_SERVICE_URL"]).port
                if listening:
                    return listening[0]
    raise AssertionError(f"no running jupyterhub-singleuser for {unix_user}")


def test_login_spawn_and_run_code_as_the_user(hub, alice, names, prewarm):
    name = names["alice"]
    started = time.monotonic()
    events = alice.spawn(name)
    print(f"start -> ready: {time.monotonic() - started:.2f}s")
    assert events[-1]["ready"] is True, events
    forked = [p for p in psutil.process_iter(["username", "cmdline"]) if p.info["username"] == f"jupyter-{name}"
              and any(a.endswith("launcher.py") for a in p.info["cmdline"] or [])]
    assert bool(forked) == prewarm, forked
    assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)

    lab = alice.get(alice.url(f"/user/{name}/lab"))
    assert lab.status_code == 200
    assert lab.url == alice.url(f"/user/{name}/lab")
    assert "JupyterLab" in lab.text
    assert any("/hub/api/oauth2/authorize" in r.url for r in lab.history)

    kernel = alice.start_kernel(name)
    assert alice.execute(name, kernel, "6*7") == "42"
    account = pwd.getpwnam(f"jupyter-{name}")
    assert alice.execute(name, kernel, "import os; os.getuid()") == str(account.pw_uid)
    assert stat.S_IMODE(os.stat(account.pw_dir).st_mode) & 0o077 == 0, "home must be private"


def test_wrong_password_refused(hub, names):
    client = HubClient(hub.url)
    r = client.login(names["alice"], "not-the-password")
    assert r.status_code == 403
    assert "Invalid username or password" in r.text
    assert "jupyterhub-hub-login" not in client.cookies


def test_banned_user_refused(hub, names):
    client = HubClient(hub.url)
    assert client.login(names["banned"], PASSWORD).status_code == 403
    assert "jupyterhub-hub-login" not in client.cookies


def test_name_not_in_allowed_list_refused(hub, run_id):
    client = HubClient(hub.url)
    assert client.login(f"{run_id}-stranger", PASSWORD).status_code == 403
    assert "jupyterhub-hub-login" not in client.cookies


def test_other_users_cannot_reach_a_server(hub, alice, names):
    bob = HubClient(hub.url)
    assert bob.login(names["bob"], PASSWORD).status_code == 302
    target = names["alice"]

    page = bob.get(bob.url(f"/user/{target}/lab"))
    assert page.status_code == 403, [r.url for r in page.history] + [page.url, page.text[:300]]
    assert "JupyterLab" not in page.text
    api = bob.get(bob.url(f"/user/{target}/api/contents"))
    assert api.status_code in (302, 403) or api.url.startswith(bob.url("/hub/"))
    assert "content" not in api.text

    # Straight to the server's port, bypassing the proxy, without a token.
    port = singleuser_port(f"jupyter-{target}")
    direct = requests.get(f"http://127.0.0.1:{port}/user/{target}/api/contents", allow_redirects=False)
    assert direct.status_code == 403
    direct_page = requests.get(f"http://127.0.0.1:{port}/user/{target}/lab", allow_redirects=False)
    assert direct_page.status_code == 302 and "/hub/api/oauth2/authorize" in direct_page.headers["Location"]


def test_cookie_api_calls_need_xsrf(hub, alice, names):
    r = alice.delete(alice.url(f"/hub/api/users/{names['alice']}/server"))
    assert r.status_code == 403
    assert r.json()["status"] == 403
    assert alice.get(alice.url(f"/user/{names['alice']}/api/status")).status_code == 200


def test_api_token_is_accepted_by_oauth_authorize(hub, alice, names):
    """A client with an API token that follows the server's OAuth redirect gets a code, not the
    login page (as in JupyterHub), and reaches the server; a token of another user does not."""
    name = names["alice"]
    xsrf = next(c.value for c in alice.cookies if c.name == "_xsrf" and c.path == "/hub/")
    token = alice.post(alice.url(f"/hub/api/users/{name}/tokens"), json={},
                       headers={"X-XSRFToken": xsrf}).json()["token"]
    client = HubClient(hub.url)  # no hub cookie: only the token
    first = client.get(client.url(f"/user/{name}/lab"), allow_redirects=False)
    location = first.headers["Location"]
    assert first.status_code == 302 and "/hub/api/oauth2/authorize" in location
    authorize = client.url(location) if location.startswith("/") else location
    anonymous = client.get(authorize, allow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/hub/login")
    r = client.get(authorize,
                   headers={"Authorization": f"token {token}"}, allow_redirects=False)
    assert r.status_code == 302, r.text
    assert r.headers["Location"].startswith(f"/user/{name}/oauth_callback?code="), r.headers["Location"]
    lab = client.get(client.url(r.headers["Location"]))
    assert lab.status_code == 200 and lab.url == client.url(f"/user/{name}/lab") and "JupyterLab" in lab.text

    bob = HubClient(hub.url)
    assert bob.login(names["bob"], PASSWORD).status_code == 302
    bob_xsrf = next(c.value for c in bob.cookies if c.name == "_xsrf" and c.path == "/hub/")
    bob_token = bob.post(bob.url(f"/hub/api/users/{names['bob']}/tokens"), json={},
                         headers={"X-XSRFToken": bob_xsrf}).json()["token"]
    refused = HubClient(hub.url).get(authorize,
                                     headers={"Authorization": f"token {bob_token}"}, allow_redirects=False)
    assert refused.status_code == 403


def test_user_redirect_keeps_the_query_encoded(hub, alice, names):
    """nbgitpuller links: `%23` in `urlpath` must reach the server still encoded."""
    name = names["alice"]
    tail = "git-pull?repo=https%3A%2F%2Fexample.org%2Fr.git&urlpath=lab%2Ftree%2Fr%2Fa.ipynb%23section&x=a%2Bb"
    r = alice.get(alice.url(f"/hub/user-redirect/{tail}"), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == f"/user/{name}/{tail}"
    short = alice.get(alice.url(f"/user-redirect/{tail}"), allow_redirects=False)  # without /hub, as JupyterHub
    assert short.status_code == 302 and short.headers["Location"] == f"/hub/user-redirect/{tail}"
    # Not logged in: through the login page and back, still encoded.
    client = HubClient(hub.url)
    to_login = client.get(client.url(f"/hub/user-redirect/{tail}"), allow_redirects=False)
    assert to_login.status_code == 302 and to_login.headers["Location"].startswith("/hub/login?next=")
    login_page = client.get(client.url(to_login.headers["Location"]))
    next_url = re.search(r'name="next" value="([^"]*)"', login_page.text).group(1)
    assert html.unescape(next_url) == f"/hub/user-redirect/{tail}"
    logged_in = client.login(name, PASSWORD, next_url=html.unescape(next_url))
    assert logged_in.headers["Location"] == f"/hub/user-redirect/{tail}"
    assert client.get(client.url(logged_in.headers["Location"]), allow_redirects=False).headers["Location"] \
        == f"/user/{name}/{tail}"


def test_daemon_killed_and_restarted_keeps_servers_and_sessions(hub, alice, names):
    name = names["alice"]
    hub.kill()
    # The data path does not go through the daemon.
    assert alice.get(alice.url(f"/user/{name}/api/status")).status_code == 200
    hub.start()
    home = alice.get(alice.url("/hub/home"))
    assert home.status_code == 200 and "Your server is running" in home.text
    kernel = alice.start_kernel(name)
    assert alice.execute(name, kernel, "6*7") == "42"


def test_stop_removes_route_and_start_again_works(hub, alice, names):
    name = names["alice"]
    prefix_rule = f"PathPrefix(`/user/{name}/`)"
    assert prefix_rule in hub.traefik_route_names()
    assert alice.stop(name).status_code == 302
    assert prefix_rule not in hub.traefik_route_names()
    r = alice.get(alice.url(f"/user/{name}/api/status"), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == f"/hub/user/{name}/api/status"
    r = alice.get(alice.url(r.headers["Location"]), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(f"/hub/spawn/{name}")
    with pytest.raises(AssertionError):
        singleuser_port(f"jupyter-{name}")

    events = alice.spawn(name)
    assert events[-1]["ready"] is True
    kernel = alice.start_kernel(name)
    assert alice.execute(name, kernel, "6*7") == "42"


def private_mib_of_executable(pid):
    """MiB of `pid`'s own executable resident and mapped by it alone (its smaps, summed): the
    pages a release can drop (another Traefik mapping the same file shares the rest)."""
    exe = os.readlink(f"/proc/{pid}/exe")
    total_kib, in_exe = 0, False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                in_exe = len(fields) >= 6 and fields[5] == exe
            elif in_exe and fields[0] in ("Private_Clean:", "Private_Dirty:"):
                total_kib += int(fields[1])
    return total_kib / 1024


def test_traefik_keeps_only_the_pages_it_serves_with(hub, alice, names):
    """Its start-up leaves ~110 MiB of its binary resident; serving touches ~20 MiB of it."""
    import json
    with open(f"{hub.prefix}/state/traefik/traefik.pid") as f:
        pid = json.load(f)["pid"]
    for _ in range(200):
        assert alice.get(alice.url(f"/user/{names['alice']}/api/status")).status_code == 200
    released = re.search(r"Traefik's resident memory: (\d+) MiB after start-up", hub.log())
    assert released, "the daemon released Traefik's start-up pages"
    # Its binary's resident part: ~80-110 of ~90-120 MiB as started; ~30 MiB with the release.
    assert private_mib_of_executable(pid) < int(released.group(1)) / 2
    # Go's soft memory limit keeps its heap near what is live (traefik.py, GO_MEMORY_LIMIT).
    with open(f"/proc/{pid}/environ", "rb") as f:
        assert b"GOMEMLIMIT=40MiB" in f.read().split(b"\0")


def test_traefik_restarted_when_it_dies(hub, alice, names):
    import json
    with open(f"{hub.prefix}/state/traefik/traefik.pid") as f:
        old = json.load(f)["pid"]
    psutil.Process(old).kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if alice.get(alice.url(f"/user/{names['alice']}/api/status"), timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("Traefik did not come back\n" + hub.log()[-3000:])
    with open(f"{hub.prefix}/state/traefik/traefik.pid") as f:
        assert json.load(f)["pid"] != old


def test_a_server_that_dies_is_noticed_and_can_start_again(hub, alice, names):
    name = names["alice"]
    port = singleuser_port(f"jupyter-{name}")
    victim = next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
                  and c.status == psutil.CONN_LISTEN)
    psutil.Process(victim).kill()
    deadline = time.monotonic() + 20
    while "Start my server" not in alice.get(alice.url("/hub/home")).text:
        assert time.monotonic() < deadline, "the hub did not notice the server died"
        time.sleep(0.5)
    assert f"PathPrefix(`/user/{name}/`)" not in hub.traefik_route_names()
    assert alice.spawn(name)[-1]["ready"] is True
