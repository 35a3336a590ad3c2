"""The admin panel and the token page in a real headless Chromium (Playwright)."""

import os
import pathlib
import shutil
import tempfile

import pytest
import requests

from a11y import DESKTOP, PHONE, assert_accessible, assert_no_horizontal_overflow, console_errors
from hubclient import HubClient
from hubprocess import needs_root
from npmcache import have_node
from labpage import logged_in_page

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def hub(make_hub, user_env, run_id, unix_accounts):
    admin = f"{run_id}-boss"
    unix_accounts.extend([f"jupyter-{admin}", f"jupyter-{run_id}-pupil",
                          *(f"jupyter-{run_id}-bulk{i}" for i in range(3))])
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [admin]}, "user_environment": {"path": user_env}})
    hub.admin = admin
    return hub


def test_admin_adds_starts_watches_and_stops_a_user(browser, hub, run_id):
    pupil = f"{run_id}-pupil"
    page = logged_in_page(browser, hub, hub.admin)
    page.goto(f"{hub.url}/hub/admin")
    page.fill("#new-users", pupil)
    page.click("#add-users")
    row = page.locator(f'tr[data-user="{pupil}"]')
    row.wait_for(timeout=10000)
    assert row.get_attribute("data-state") == "stopped" and row.locator(".state").inner_text() == "Stopped"

    row.locator("button.start").click()
    page.locator(f'tr[data-user="{pupil}"][data-state="running"]').wait_for(timeout=120000)
    row = page.locator(f'tr[data-user="{pupil}"]')
    page.wait_for_function(
        f"""() => /\\d+ MiB/.test(document.querySelector('tr[data-user="{pupil}"] .memory').textContent)""",
        timeout=15000)
    memory = int(row.locator(".memory").inner_text().split()[0])
    assert 20 < memory < 2000, memory
    assert "%" in row.locator(".cpu").inner_text()
    assert row.locator("a", has_text="Open").get_attribute("href") == f"/user/{pupil}/"

    row.locator("button.stop").click()
    page.locator(f'tr[data-user="{pupil}"][data-state="stopped"]').wait_for(timeout=60000)
    page.close()


def test_user_text_is_escaped(browser, hub):
    client = HubClient(hub.url)
    client.login(hub.admin, "pw")
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    evil = "<b>bold<b><img>&amp;"
    r = client.post(client.url("/hub/api/users"), json={"usernames": [evil]}, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201
    page = logged_in_page(browser, hub, hub.admin)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{hub.url}/hub/admin?search=bold")
    name_cell = page.locator("#users .name").first
    assert name_cell.inner_text() == evil
    assert name_cell.locator("b, img").count() == 0
    assert not dialogs
    page.close()


def test_admin_api_needs_xsrf_with_cookies(hub):
    client = HubClient(hub.url)
    client.login(hub.admin, "pw")
    r = client.post(client.url("/hub/api/users"), json={"usernames": ["xsrf-victim"]})
    assert r.status_code == 403 and r.json()["status"] == 403
    assert client.get(client.url("/hub/api/users/xsrf-victim")).status_code == 404


def test_non_admins_cannot_open_the_panel(hub, run_id):
    client = HubClient(hub.url)
    client.login(f"{run_id}-pupil", "pw")
    assert client.get(client.url("/hub/admin")).status_code == 403
    assert client.get(client.url("/hub/admin/usage")).status_code == 403


def test_token_page_creates_lists_and_revokes(browser, hub):
    page = logged_in_page(browser, hub, hub.admin)
    page.goto(f"{hub.url}/hub/token")
    page.fill("#note", "for my script")
    page.click("#create-token")
    page.locator("#token-value").wait_for()
    token = page.locator("#token-value").inner_text()
    assert requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}).json()["name"] == hub.admin
    row = page.locator("#tokens tr", has_text="for my script")
    row.wait_for()
    row.locator("button.revoke").click()
    row.wait_for(state="detached")
    assert requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}).status_code == 403
    page.close()


def _admin_api(hub, admin=None):
    client = HubClient(hub.url)
    client.login(admin or hub.admin, "pw")
    xsrf = next(c.value for c in client.cookies if c.name == "_xsrf")
    return client, {"X-XSRFToken": xsrf}


def _states(hub, names):
    client, _ = _admin_api(hub)
    return {n: client.get(client.url(f"/hub/api/users/{n}?include_stopped_servers=1")).json()["servers"]
            for n in names}


def _screenshots(page, name):
    """With TLJH_TEST_SCREENSHOTS=<dir> (how docs/images is made), save the page at desktop
    width and, whole, at phone width once the running servers' memory is shown."""
    shots = os.environ.get("TLJH_TEST_SCREENSHOTS")
    if not shots:
        return
    page.wait_for_function("""() => [...document.querySelectorAll('#users tr[data-state="running"] .memory')]
                                     .every((cell) => /MiB/.test(cell.textContent))""", timeout=15000)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=os.path.join(shots, f"{name}.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=os.path.join(shots, f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_bulk_start_selected_and_stop_all_on_three_users(browser, hub, run_id):
    names = [f"{run_id}-bulk{i}" for i in range(3)]
    client, headers = _admin_api(hub)
    r = client.post(client.url("/hub/api/users"), json={"usernames": names}, headers=headers)
    assert r.status_code == 201, r.text
    page = logged_in_page(browser, hub, hub.admin)
    errors = console_errors(page)
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{hub.url}/hub/admin?search={run_id}-bulk")
    assert page.locator("#users tbody tr").count() == 3
    for name in names:
        page.locator(f'tr[data-user="{name}"] input.select').check()
    assert page.locator("#selected-count").inner_text() == "3 selected"
    assert page.locator("#select-page").is_checked()
    page.click("#start-selected")
    for name in names:  # the rows follow the starts without a reload
        page.locator(f'tr[data-user="{name}"][data-state="running"]').wait_for(timeout=180000)
    assert all(s[""]["ready"] for s in _states(hub, names).values())
    assert page.locator("#selected-count").inner_text() == "3 selected"  # the selection survived
    _screenshots(page, "admin-dashboard")
    page.select_option("#state-filter", "inactive")  # filtered on the server: none of them is "not running"
    page.click("#search-form button[type=submit]")
    page.wait_for_url("**state=inactive**")
    assert page.locator("#users tbody tr").count() == 0 and page.locator("#no-users").is_visible()
    page.select_option("#state-filter", "ready")
    page.click("#search-form button[type=submit]")
    page.wait_for_url("**state=ready**")
    assert sorted(page.locator("#users tbody tr").evaluate_all("rows => rows.map(r => r.dataset.user)")) == names

    page.click("#stop-all")  # every user matching the search, after a confirmation
    for name in names:
        page.locator(f'tr[data-user="{name}"][data-state="stopped"]').wait_for(timeout=60000)
    assert all(s[""]["stopped"] for s in _states(hub, names).values())
    assert "done for 3 users" in page.locator("#status").inner_text()
    assert not errors, errors
    page.close()


@pytest.mark.skipif(not have_node(), reason="needs node and npm for axe-core")
@pytest.mark.parametrize("viewport", [DESKTOP, {"width": 1100, "height": 800}, {"width": 1024, "height": 768}, PHONE],
                         ids=["desktop", "narrow-desktop", "tablet", "phone"])
def test_admin_page_fits_the_screen_and_passes_the_accessibility_audit(browser, hub, run_id, viewport):
    page = browser.new_page(viewport=viewport)
    errors = console_errors(page)
    page.goto(f"{hub.url}/hub/login?next=/hub/admin")
    page.fill("input[name=username]", hub.admin)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/hub/admin")
    page.locator("#users tbody tr").first.wait_for()
    assert_no_horizontal_overflow(page)
    assert_accessible(page)
    # Keyboard: Tab reaches the first row's checkbox, Space selects it.
    page.locator("#select-page").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.matches('#users tbody input.select')")
    page.keyboard.press("Space")
    assert page.locator("#selected-count").inner_text() == "1 selected"
    assert page.locator("#start-selected").is_enabled()
    assert not errors, errors
    page.close()


def test_delete_selected_users(browser, hub, run_id):
    names = [f"{run_id}-gone{i}" for i in range(2)]  # never started: no Unix accounts
    client, headers = _admin_api(hub)
    assert client.post(client.url("/hub/api/users"), json={"usernames": names}, headers=headers).status_code == 201
    page = logged_in_page(browser, hub, hub.admin)
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{hub.url}/hub/admin?search={run_id}-gone")
    page.check("#select-page")
    assert page.locator("#selected-count").inner_text() == "2 selected"
    page.click("#delete-selected")
    page.locator("#no-users").wait_for(timeout=15000)  # the page reloads without them
    for name in names:
        assert client.get(client.url(f"/hub/api/users/{name}")).status_code == 404
    page.close()


def test_an_admin_cancels_a_start_and_both_pages_say_cancelled(browser, make_hub, run_id, unix_accounts):
    """A server that never answers stays "Starting" until the admin clicks "Cancel start": the
    row then says Cancelled (not Failed), and the user's progress page sends them home, which
    says the start was cancelled."""
    admin, name, failer = f"{run_id}-chief", f"{run_id}-waiter", f"{run_id}-failer"
    unix_accounts.extend([f"jupyter-{admin}", f"jupyter-{name}", f"jupyter-{failer}"])
    top = pathlib.Path(tempfile.mkdtemp(dir="/var/tmp"))  # not /tmp: servers get a private one
    script = top / "env" / "bin" / "jupyterhub-singleuser"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!/bin/sh\n[ \"$JUPYTERHUB_USER\" = {failer} ] && "
                      f"echo '{'A long reason, word after word, that has to wrap on a phone. ' * 3}' && exit 3\n"
                      "exec sleep 600\n")
    for path in (script, script.parent, script.parent.parent, top):
        path.chmod(0o755)
    try:
        hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                        "users": {"admin": [admin]}, "user_environment": {"path": str(top / "env")},
                        "spawner": {"start_timeout": 600}})
        user = logged_in_page(browser, hub, name)
        user.click("#start")
        user.wait_for_url(f"**/hub/spawn-pending/{name}")
        panel = logged_in_page(browser, hub, admin)
        errors = console_errors(panel)
        panel.goto(f"{hub.url}/hub/admin?state=active")
        row = panel.locator(f'tr[data-user="{name}"][data-state="pending"]')
        assert row.locator(".state").inner_text() == "Starting"
        row.locator("button.stop", has_text="Cancel start").click()
        cancelled = panel.locator(f'tr[data-user="{name}"][data-state="cancelled"]')
        cancelled.wait_for(timeout=60000)  # the row follows, though it left the "active" filter
        assert cancelled.locator(".state").inner_text() == "Cancelled"
        assert cancelled.locator("button.start").is_visible()
        user.wait_for_url("**/hub/home", timeout=30000)
        assert "The last start was cancelled" in user.locator("main").inner_text()

        # A failed start's reason shows in the row, and wraps on a phone.
        client, headers = _admin_api(hub, admin)
        assert client.post(client.url("/hub/api/users"), json={"usernames": [failer]}, headers=headers).status_code == 201
        assert client.post(client.url(f"/hub/api/users/{failer}/server"), headers=headers).status_code == 202
        assert client.progress_events(failer, timeout=60)[-1].get("failed")  # the stream ends with the failure
        panel.goto(f"{hub.url}/hub/admin?state=failed")
        failed = panel.locator(f'tr[data-user="{failer}"][data-state="failed"]')
        failed.wait_for(timeout=60000)
        assert "has to wrap on a phone" in failed.locator(".server-message").inner_text()
        assert panel.locator("#users tbody tr").count() == 2  # the failed and the cancelled start
        for viewport in (PHONE, DESKTOP):
            panel.set_viewport_size(viewport)
            assert_no_horizontal_overflow(panel)
            if have_node():
                assert_accessible(panel)
        assert not errors, errors
        user.close()
        panel.close()
    finally:
        shutil.rmtree(top)
