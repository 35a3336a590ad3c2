"""JupyterLab itself in a real headless Chromium, on a pre-warmed server (the default).

The user signs in, starts the server, and JupyterLab loads without a console error, a failed
request or an error response; the user changes the theme and opens a notebook, runs a cell, and
after a reload the theme (the settings API) and the open notebook (the workspaces API) are kept.
"""

import os

import pytest

from a11y import DESKTOP, console_errors
from hubprocess import needs_root
from labpage import run_code_in_a_new_notebook
from test_prewarm import is_prewarmed, launcher, server_pid
from waiting import wait_for

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]


def failed_requests(page):
    """A list that fills with requests that failed or were answered with an error status."""
    failures = []
    page.on("requestfailed", lambda req: failures.append(f"{req.method} {req.url}: {req.failure}"))
    page.on("response", lambda resp: failures.append(f"{resp.request.method} {resp.url}: {resp.status}")
            if resp.status >= 400 else None)
    return failures


def test_jupyterlab_on_a_prewarmed_server_saves_settings_and_workspaces(browser, make_hub, user_env, run_id,
                                                                        unix_accounts):
    name = f"{run_id}-lab"
    unix_accounts.append(f"jupyter-{name}")
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": user_env}})
    wait_for(lambda: launcher(hub), "the launcher to start", 60)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors, failures = console_errors(page), failed_requests(page)
    try:
        page.goto(f"{hub.url}/hub/login?next=/hub/spawn")
        page.fill("#username", name)
        page.fill("#password", "pw")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/user/{name}/lab**", timeout=120_000)
        assert is_prewarmed(server_pid(hub, name))
        page.locator(".jp-LauncherCard").first.wait_for(timeout=120_000)

        # The theme, through the Settings menu as a user changes it (a PUT to the settings API).
        page.get_by_role("menuitem", name="Settings").click()
        page.get_by_text("Theme", exact=True).hover()
        page.get_by_text("JupyterLab Dark", exact=True).click()
        try:
            page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=60_000)
        except Exception:
            pytest.fail(f"the theme did not change; failed requests: {failures}, console errors: {errors}")
        run_code_in_a_new_notebook(page, "print(6 * 7)")
        page.locator(".jp-OutputArea-output").get_by_text("42").wait_for(timeout=60_000)
        page.wait_for_function("document.title.includes('Untitled')", timeout=60_000)

        page.reload()
        page.locator(".jp-Notebook").first.wait_for(timeout=120_000)  # the workspace reopened the notebook
        assert page.evaluate("document.body.dataset.jpThemeLight") == "false", "the theme was not kept"
        assert page.locator(".jp-mod-current .jp-Notebook, .jp-NotebookPanel").count() >= 1
        assert errors == [], f"console errors in JupyterLab: {errors}"
        assert failures == [], f"failed requests in JupyterLab: {failures}"
    finally:
        context.close()
