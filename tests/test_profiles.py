"""Profiles and per-group limits with a real daemon, Traefik and jupyterhub-singleuser in
process mode: the options form in headless Chromium (1280 and 375 px, keyboard, axe-core)
lands in the chosen server; the REST API's user_options through Traefik; a profile's memory
limit is the server's cgroup limit (a kernel over the small profile's is killed, the same
kernel in the big profile lives); limits.groups give members their group's limits."""

import os
import sqlite3
import threading

import psutil
import pytest

from a11y import DESKTOP, PHONE, assert_accessible, assert_no_horizontal_overflow, console_errors
from hubclient import HubClient
from hubprocess import needs_root
from test_limits import cgroup_files
from tljh_daemon.cgroups import Cgroups
from waiting import wait_for

pytestmark = [
    needs_root,
    pytest.mark.skipif(os.geteuid() == 0 and not Cgroups("probe").available,
                       reason="this machine does not let root write cgroups"),
]
MiB = 1024 * 1024
SMALL_MB, BIG_MB, ALLOCATE_MB = 400, 1200, 600
PROFILES = [
    {"slug": "small", "display_name": "Small", "description": "For the weekly exercises.", "default": True,
     "limits": {"memory": f"{SMALL_MB}M", "cpu": 0.5}},
    {"slug": "big", "display_name": "Big", "description": "For the project weeks.",
     "limits": {"memory": f"{BIG_MB}M", "cpu": 1}},
    {"slug": "grading", "display_name": "Grading", "groups": ["teachers"], "limits": {"memory": "2G"}},
]


@pytest.fixture(scope="module")
def hub(make_hub, user_env, run_id, unix_accounts):
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [f"{run_id}-padm"]}, "user_environment": {"path": user_env},
                    "limits": {"memory": "1G"}, "profiles": PROFILES})
    hub.names = {role: f"{run_id}-p{role}" for role in ("student", "other")}
    unix_accounts.extend(f"jupyter-{name}" for name in hub.names.values())
    return hub


def logged_in(hub, name):
    client = HubClient(hub.url)
    assert client.login(name, "pw").status_code == 302
    client.xsrf = next(c.value for c in client.cookies if c.name == "_xsrf" and c.path == "/hub/")
    return client


def server_pid(hub, name):
    """The pid the daemon recorded for `name`'s server (its database; the test runs as root)."""
    db = sqlite3.connect(f"file:{os.path.join(hub.prefix, 'state', 'tljh.sqlite')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT json_extract(spawner_state, '$.pid') FROM servers WHERE user=? AND name=''",
                          (name,)).fetchone()[0]
    finally:
        db.close()


def memory_limit(pid):
    with open(cgroup_files(pid)["memory"]) as f:
        return int(f.read().split()[0])


def allocates(client, name, megabytes):
    """Whether a new kernel of `name`'s server survives allocating `megabytes` (False: killed)."""
    client.get(client.url(f"/user/{name}/lab"))  # the server's cookies, through OAuth
    kernel = client.start_kernel(name)
    pid = int(client.execute(name, kernel, "import os; os.getpid()"))
    result = {}

    def allocate():  # a killed kernel never replies: do not wait on it in the test's thread
        try:
            result["len"] = client.execute(name, kernel, f"x = b'x' * ({megabytes} * {MiB}); len(x)", timeout=60)
        except Exception as e:
            result["error"] = e

    worker = threading.Thread(target=allocate, daemon=True)
    worker.start()
    wait_for(lambda: result or not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
             f"the kernel allocating {megabytes} MiB to finish or be killed", 90)
    if result.get("len") == str(megabytes * MiB):
        return True
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
             "the kernel to be gone", 30)
    return False


def test_options_form_in_chromium_keyboard_and_both_widths(hub, browser):
    name = hub.names["student"]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"{hub.url}/hub/login?next=/hub/home")
    page.fill("#username", name)
    page.fill("#password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/hub/home")
    page.click("#start")
    page.wait_for_url("**/hub/spawn")
    assert page.locator("legend").inner_text() == "Server size"
    radios = page.locator("input[type=radio][name=profile]")
    assert radios.count() == 2, "grading is for teachers only"
    assert page.get_by_label("Small").is_checked() and not page.get_by_label("Big").is_checked()
    assert page.locator("#profile-big-about").inner_text() == "For the project weeks. (1200MB memory, 1 CPU)"
    assert_no_horizontal_overflow(page)
    assert_accessible(page)
    assert not errors, errors

    phone = browser.new_context(viewport=PHONE)
    narrow = phone.new_page()
    narrow_errors = console_errors(narrow)
    for cookie in context.cookies():
        phone.add_cookies([cookie])
    narrow.goto(f"{hub.url}/hub/spawn")
    assert narrow.get_by_label("Big").is_visible() and narrow.locator("#start").is_visible()
    assert_no_horizontal_overflow(narrow)
    assert_accessible(narrow)
    assert not narrow_errors, narrow_errors
    phone.close()

    # Keyboard only: the arrow key moves the choice within the group, Tab reaches Start.
    page.get_by_label("Small").focus()
    page.keyboard.press("ArrowDown")
    assert page.get_by_label("Big").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "start"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/user/{name}/lab**", timeout=180_000)  # progress page, then OAuth
    context.close()

    client = logged_in(hub, name)
    model = client.get(client.url(f"/hub/api/users/{name}")).json()
    assert model["servers"][""]["user_options"] == {"profile": "big"}
    assert memory_limit(server_pid(hub, name)) == BIG_MB * MiB


def test_rest_api_user_options_through_traefik(hub):
    name = hub.names["other"]
    client = logged_in(hub, name)
    headers = {"X-XSRFToken": client.xsrf}
    for options, status, words in (({"profile": "huge"}, 400, "no such profile 'huge'"),
                                   ({"profile": "grading"}, 403, "only for members of the groups teachers"),
                                   ({"size": "big"}, 400, "unknown user_options 'size'")):
        r = client.post(client.url(f"/hub/api/users/{name}/server"), json=options, headers=headers)
        assert r.status_code == status and words in r.json()["message"], r.text
    # No body and no earlier start: the default profile (after one, its profile: JupyterHub 6).
    r = client.post(client.url(f"/hub/api/users/{name}/server"), headers=headers)
    assert r.status_code == 202, r.text
    assert client.progress_events(name)[-1]["ready"] is True
    assert client.get(client.url(f"/hub/api/users/{name}")).json()["servers"][""]["user_options"] == \
        {"profile": "small"}
    assert memory_limit(server_pid(hub, name)) == SMALL_MB * MiB


def test_a_kernel_over_the_small_profiles_limit_is_killed_and_lives_in_the_big_one(hub):
    """The same allocation: killed in `other`'s small server, fine in `student`'s big one."""
    small, big = hub.names["other"], hub.names["student"]
    assert not allocates(logged_in(hub, small), small, ALLOCATE_MB)
    assert allocates(logged_in(hub, big), big, ALLOCATE_MB)
    wait_for(lambda: "for going over its memory limit (400M)" in hub.log(), "the daemon to log the OOM kill", 30)
    small_client = logged_in(hub, small)
    assert small_client.get(small_client.url(f"/hub/api/users/{small}")).json()["servers"][""]["ready"] is True


def test_group_limits_largest_wins(make_hub, user_env, run_id, unix_accounts):
    admin, teacher, student = f"{run_id}-gadm", f"{run_id}-gteach", f"{run_id}-gstud"
    unix_accounts.extend(f"jupyter-{n}" for n in (teacher, student))
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [admin]}, "user_environment": {"path": user_env},
                    "limits": {"memory": "400M", "groups": {"teachers": {"memory": "900M"},
                                                           "staff": {"memory": "700M", "cpu": 2}}}})
    boss = logged_in(hub, admin)
    clients = {n: logged_in(hub, n) for n in (teacher, student)}
    for group in ("teachers", "staff"):
        r = boss.post(boss.url(f"/hub/api/groups/{group}"), json={"users": [teacher]},
                      headers={"X-XSRFToken": boss.xsrf})
        assert r.status_code == 201, r.text
    for n, client in clients.items():
        assert client.spawn(n)[-1]["ready"] is True
    assert memory_limit(server_pid(hub, teacher)) == 900 * MiB
    assert memory_limit(server_pid(hub, student)) == 400 * MiB
    with open(cgroup_files(server_pid(hub, teacher))["cpu"]) as f:
        assert f.read().split()[0] == "200000"  # staff's 2 CPUs of a 100 ms period
    for n, client in clients.items():
        assert client.stop(n).status_code == 302
