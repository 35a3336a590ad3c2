"""The pages a user sees (login, home, spawn, token) in a real headless Chromium at desktop and
phone width: nothing wider than the screen, no console errors, the accessibility audit passes,
the home page's buttons have one size and the user name stays clear of the links; the sign-up
and change-password pages say which password is which; the token
page hands out narrow tokens that are refused where their scope does not reach, and revokes
the OAuth applications a user signed in to.

With TLJH_SCREENSHOTS=<folder> the run saves the home page (a running server) and the login
page there (docs/images holds the ones the docs show)."""

import os
import pathlib
import shutil
import tempfile

import pytest
import requests

from a11y import DESKTOP, PHONE, assert_accessible, assert_no_horizontal_overflow, console_errors
from hubprocess import needs_root

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]

WIDTHS = {"desktop": DESKTOP, "phone": PHONE}
SITE = "Physics 101"


@pytest.fixture(scope="module")
def hub(make_hub, user_env, run_id, unix_accounts):
    # A long name: the header must still keep it apart from the links on a phone.
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "branding": {"site_name": SITE}, "user_environment": {"path": user_env}})
    hub.student = f"{run_id}-ada-lovelace"
    unix_accounts.append(f"jupyter-{hub.student}")
    return hub


class Tab:
    """A page in its own browser context at one width, collecting console errors."""

    def __init__(self, browser, width):
        self.context = browser.new_context(viewport=WIDTHS[width])
        self.page = self.context.new_page()
        self.errors = console_errors(self.page)

    def login(self, hub, name, password="pw"):
        self.page.goto(f"{hub.url}/hub/login?next=/hub/home")
        self.page.fill("#username", name)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/hub/home")

    def check(self, what):
        """The page is as good at this width as we promise."""
        assert_no_horizontal_overflow(self.page)
        assert_accessible(self.page)
        assert not self.errors, f"{what}: console errors {self.errors}"

    def close(self):
        self.context.close()


def screenshot(page, name, full_page=False):
    """Save the page down to a little below its content (not the empty rest of the screen)."""
    folder = os.environ.get("TLJH_SCREENSHOTS")
    if folder and full_page:
        page.screenshot(path=os.path.join(folder, name), full_page=True)
    elif folder:
        size = page.viewport_size
        bottom = page.evaluate("() => document.querySelector('main').getBoundingClientRect().bottom")
        page.screenshot(path=os.path.join(folder, name),
                        clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], bottom + 32)})


def overlapping(page, selector, others):
    """The elements matching `others` whose boxes overlap the element `selector`."""
    return page.evaluate("""([selector, others]) => {
        const a = document.querySelector(selector).getBoundingClientRect();
        return [...document.querySelectorAll(others)].filter(el => {
            const b = el.getBoundingClientRect();
            return b.width && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        }).map(el => el.textContent.trim() || el.tagName);
    }""", [selector, others])


@pytest.mark.parametrize("width", WIDTHS)
def test_login_page(browser, hub, width):
    tab = Tab(browser, width)
    page = tab.page
    page.goto(f"{hub.url}/hub/login")
    assert page.locator("h1.site-name").inner_text() == SITE
    logo = page.locator(".login-brand img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=logo.element_handle())
    assert page.get_attribute("#username", "autocomplete") == "username"
    assert page.get_attribute("#password", "autocomplete") == "current-password"
    tab.check(f"login at {width}")
    if width == "desktop":
        screenshot(page, "login.png")
    tab.close()


def test_home_spawn_and_the_running_server(browser, hub):
    tab = Tab(browser, "desktop")
    page = tab.page
    tab.login(hub, hub.student)
    assert page.locator("#server-status").inner_text() == "Stopped"
    tab.check("home, stopped")
    page.click("#start")
    page.wait_for_url(f"**/user/{hub.student}/lab**", timeout=180_000)  # progress page, then OAuth
    tab.errors.clear()  # JupyterLab's own console is not ours to judge

    page.goto(f"{hub.url}/hub/home")
    assert page.locator("#server-status").inner_text() == "Running"
    open_box, stop_box = page.locator("#open").bounding_box(), page.locator("#stop").bounding_box()
    assert (round(open_box["width"]), round(open_box["height"])) == (round(stop_box["width"]), round(stop_box["height"]))
    assert not overlapping(page, "#user-name", ".nav-links a, .brand")
    tab.check("home, running, desktop")
    screenshot(page, "home.png")
    tab.close()

    tab = Tab(browser, "phone")
    page = tab.page
    tab.login(hub, hub.student)
    open_box, stop_box = page.locator("#open").bounding_box(), page.locator("#stop").bounding_box()
    assert (round(open_box["width"]), round(open_box["height"])) == (round(stop_box["width"]), round(stop_box["height"]))
    assert not overlapping(page, "#user-name", ".nav-links a, .brand")
    assert page.locator("#user-name").is_visible()
    tab.check("home, running, phone")
    screenshot(page, "home-phone.png")
    tab.close()


def test_token_page_narrow_tokens_and_authorized_applications(browser, hub):
    """Runs after the test above opened the student's server (its OAuth client holds a token)."""
    name = hub.student
    tab = Tab(browser, "phone")
    page = tab.page
    tab.login(hub, name)
    page.goto(f"{hub.url}/hub/token")
    app = page.locator(f'#oauth-apps tr[data-client="jupyterhub-user-{name}"]')
    assert f"access:servers!server={name}/" in app.inner_text()
    tab.check("token page, phone")

    page.fill("#note", "reads my profile")
    page.fill("#scopes", f"read:users!user={name}")
    page.click("#create-token")
    page.locator("#token-value").wait_for()
    narrow = {"Authorization": f"token {page.locator('#token-value').inner_text()}"}
    row = page.locator("#tokens tr", has_text="reads my profile")
    assert row.locator(".scope-list").inner_text() == f"read:users!user={name}"
    # Accepted where the scope reaches; refused by the hub and by the server where it does not.
    assert requests.get(f"{hub.url}/hub/api/users/{name}", headers=narrow).json()["name"] == name
    assert requests.post(f"{hub.url}/hub/api/users/{name}/server", headers=narrow).status_code == 403
    assert requests.post(f"{hub.url}/hub/api/users/{name}/tokens", headers=narrow, json={}).status_code == 403
    assert requests.get(f"{hub.url}/user/{name}/api/contents", headers=narrow).status_code == 403
    if os.environ.get("TLJH_SCREENSHOTS"):
        page.set_viewport_size(DESKTOP)
        screenshot(page, "token.png", full_page=True)
        page.set_viewport_size(PHONE)

    page.fill("#scopes", "admin:users")
    page.click("#create-token")
    page.locator("#status.error", has_text="wider").wait_for()
    assert tab.errors == ["console.error: Failed to load resource: the server responded with a status of 403 (Forbidden)"]
    tab.errors.clear()  # that refusal was the point

    app.locator("button.revoke-app").click()
    app.wait_for(state="detached")
    assert page.locator("#no-apps").is_visible()
    listed = page.request.get(f"{hub.url}/hub/api/users/{name}/tokens").json()["api_tokens"]
    assert [t["note"] for t in listed] == ["reads my profile"], "the server's OAuth tokens are gone"
    tab.check("token page after revoking, phone")
    tab.close()


def test_spawn_progress_and_failure_pages(browser, make_hub, run_id, unix_accounts):
    """A server that never answers: the progress page while it starts, then (at the start
    timeout) the failure page, at both widths."""
    name = f"{run_id}-slow-starter"
    unix_accounts.append(f"jupyter-{name}")
    top = pathlib.Path(tempfile.mkdtemp(dir="/var/tmp"))  # not /tmp: servers get a private one
    env = top / "env"
    (env / "bin").mkdir(parents=True)
    script = env / "bin" / "jupyterhub-singleuser"
    script.write_text("#!/bin/sh\nexec sleep 600\n")
    for path in (script, env / "bin", env, top):
        path.chmod(0o755)
    try:
        hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                        "user_environment": {"path": str(env)}, "spawner": {"start_timeout": 45}})
        tabs = {width: Tab(browser, width) for width in WIDTHS}
        for tab in tabs.values():
            tab.login(hub, name)
        # From here the checks must finish within the start timeout (it is generous: the
        # progress page's checks take a few seconds).
        for width, tab in tabs.items():
            if width == "desktop":
                tab.page.click("#start")
            else:
                tab.page.goto(f"{hub.url}/hub/spawn-pending/{name}")
            tab.page.wait_for_url(f"**/hub/spawn-pending/{name}")
            assert tab.page.locator("h1").inner_text() == "Your server is starting up", tab.page.locator("main").inner_text()
            tab.check(f"progress page at {width}")
        for width, tab in tabs.items():
            # The page reloads itself when the start fails; the failure page is a 500, as in JupyterHub.
            tab.page.locator("#reason").wait_for(timeout=120_000)
            assert "Your server failed to start" in tab.page.locator("h1").inner_text()
            assert all("status of 500" in e for e in tab.errors), tab.errors
            tab.errors.clear()
            tab.check(f"failure page at {width}")
            tab.close()
    finally:
        shutil.rmtree(top)


@pytest.fixture(scope="module")
def native_hub(make_hub):
    return make_hub({"auth": {"type": "native", "NativeAuthenticator": {"open_signup": True}}})


@pytest.mark.parametrize("width", WIDTHS)
def test_sign_up_and_change_password_pages(browser, native_hub, run_id, width):
    """The pages with new passwords use the same components and say which password is which."""
    hub = native_hub
    name, password = f"{run_id}-grace-{width}", "a-long-enough-passphrase-1"
    tab = Tab(browser, width)
    page = tab.page
    page.goto(f"{hub.url}/hub/login")
    page.click("#signup-link")
    page.wait_for_url("**/hub/signup")
    assert page.get_attribute("input[name=username]", "autocomplete") == "username"
    assert page.get_attribute("input[name=password]", "autocomplete") == "new-password"
    tab.check(f"sign-up page at {width}")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.fill("input[name=password_confirm]", password)
    page.click("button[type=submit]")
    page.locator("#signup-result").wait_for()
    tab.check(f"sign-up result at {width}")
    tab.login(hub, name, password)
    page.click("text=Change password")
    page.wait_for_url("**/hub/auth/change-password")
    assert page.get_attribute("input[name=old_password]", "autocomplete") == "current-password"
    assert page.get_attribute("input[name=new_password]", "autocomplete") == "new-password"
    assert not overlapping(page, "#user-name", ".nav-links a, .brand")
    tab.check(f"change-password page at {width}")
    tab.close()
