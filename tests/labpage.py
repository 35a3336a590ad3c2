"""Driving the hub and JupyterLab in a headless Chromium: sign in, open a notebook and run code in its kernel."""


def logged_in_page(browser, hub, name, password="pw"):
    """A new page signed in as `name` (through the login form), on the home page."""
    page = browser.new_page()
    page.goto(f"{hub.url}/hub/login?next=/hub/home")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/hub/home")
    return page


def run_code_in_a_new_notebook(page, code):
    """Open a notebook from the launcher and run `code` in its first cell.

    A cell run before the kernel is connected is dropped, so this waits for the kernel to be
    idle first (on a busy machine that takes seconds after the notebook opens)."""
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click(timeout=120_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click(timeout=60_000)
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
