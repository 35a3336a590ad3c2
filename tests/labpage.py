"""Driving the hub and JupyterLab in a headless Chromium: sign in, open a notebook and run code in its kernel."""

import contextlib

from a11y import DESKTOP, console_errors

# Debian's chromium, never a browser a tool downloads; flags for a headless run in a container.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def chromium():
    """A headless Chromium (playwright's sync API), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def logged_in_page(browser, hub, name, password="pw"):
    """A new page signed in as `name` (through the login form), on the home page."""
    page = browser.new_page()
    _log_in(page, hub, name, password)
    return page


def person(browser, hub, name, password="pw"):
    """(context, page): a browser context of its own (its own cookies: a person) at desktop
    size, signed in as `name`, on the home page."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    _log_in(page, hub, name, password)
    return context, page


def _log_in(page, hub, name, password):
    page.goto(f"{hub.url}/hub/login?next=/hub/home")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/hub/home")


def run_code_in_a_new_notebook(page, code):
    """Open a notebook from the launcher and run `code` in its first cell.

    A cell run before the kernel is connected is dropped, so this waits for the kernel to be
    idle first (on a busy machine that takes seconds after the notebook opens)."""
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click(timeout=120_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click(timeout=60_000)
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def failed_requests(page):
    """A list that fills with requests that failed or were answered with an error status."""
    failures = []
    page.on("requestfailed", lambda req: failures.append(f"{req.method} {req.url}: {req.failure}"))
    page.on("response", lambda resp: failures.append(f"{resp.request.method} {resp.url}: {resp.status}")
            if resp.status >= 400 else None)
    return failures


def lab_keeps_theme_and_workspace(browser, hub_url, name, password, started=lambda: None):
    """Sign in, start the server, and use JupyterLab as a person would: change the theme in the
    Settings menu (the settings API), run a cell in a new notebook, reload; the theme and the open
    notebook (the workspaces API) are kept, and nothing failed on the way: no console error, no
    failed request, no error response. `started()` runs once JupyterLab's URL is reached (a check
    that the server is the kind the caller wants)."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors, failures = console_errors(page), failed_requests(page)
    try:
        page.goto(f"{hub_url}/hub/login?next=/hub/spawn")
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/user/{name}/lab**", timeout=120_000, wait_until="commit")
        # From here on JupyterLab's own: the spawn page's progress stream, aborted when that page
        # moves on, is the hub pages' business (test_pages_browser.py).
        errors.clear()
        failures.clear()
        started()
        page.locator(".jp-LauncherCard").first.wait_for(timeout=120_000)

        page.get_by_role("menuitem", name="Settings").click()
        page.get_by_text("Theme", exact=True).hover()
        page.get_by_text("JupyterLab Dark", exact=True).click()
        try:
            page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=60_000)
        except Exception:
            raise AssertionError(f"the theme did not change; failed requests: {failures}, "
                                 f"console errors: {errors}") from None
        run_code_in_a_new_notebook(page, "print(6 * 7)")
        page.locator(".jp-OutputArea-output").get_by_text("42").wait_for(timeout=60_000)
        page.wait_for_function("document.title.includes('Untitled')", timeout=60_000)

        page.reload()
        page.locator(".jp-Notebook").first.wait_for(timeout=120_000)  # the workspace reopened the notebook
        assert page.evaluate("document.body.dataset.jpThemeLight") == "false", "the theme was not kept"
        assert errors == [], f"console errors in JupyterLab: {errors}"
        assert failures == [], f"failed requests in JupyterLab: {failures}"
    finally:
        context.close()
