"""The admin panel and the token page in a real headless Chromium (Playwright)."""

import os

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def hub(make_hub, user_env, run_id, unix_accounts):
    admin = f"{run_id}-boss"
    unix_accounts.extend([f"jupyter-{admin}", f"jupyter-{run_id}-pupil"])
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [admin]}, "user_environment": {"path": user_env}})
    hub.admin = admin
    return hub


def logged_in_page(browser, hub, name):
    page = browser.new_page()
    page.goto(f"{hub.url}/hub/login?next=/hub/home")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/hub/home")
    return page


def test_admin_adds_starts_watches_and_stops_a_user(browser, hub, run_id):
    pupil = f"{run_id}-pupil"
    page = logged_in_page(browser, hub, hub.admin)
    page.goto(f"{hub.url}/hub/admin")
    page.fill("#new-users", pupil)
    page.click("#add-users")
    row = page.locator(f'tr[data-user="{pupil}"]')
    row.wait_for(timeout=10000)
    assert row.locator(".state").inner_text().startswith("stopped")

    row.locator("button.start").click()
    page.locator(f'tr[data-user="{pupil}"][data-state="running"]').wait_for(timeout=120000)
    row = page.locator(f'tr[data-user="{pupil}"]')
    page.wait_for_function(
        f"""() => /\\d+ MiB/.test(document.querySelector('tr[data-user="{pupil}"] .memory').textContent)""",
        timeout=15000)
    memory = int(row.locator(".memory").inner_text().split()[0])
    assert 20 < memory < 2000, memory
    assert "%" in row.locator(".cpu").inner_text()
    assert row.locator("a", has_text="open").get_attribute("href") == f"/user/{pupil}/"

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
    name_cell = page.locator("#users td.name").first
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
