"""Real-time collaboration (collaboration.enabled) on a shared server, in a real headless Chromium:
the owner and the user they share with open one file in the owner's JupyterLab, and what one
types appears in the other's editor. With the key off, the same user environment (which has
jupyter-collaboration) runs servers without it.

jupyter-collaboration is not in the shared test user environment: this module builds a private
one once (uv, ~10 s with a warm cache) and removes it afterwards."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from labpage import person
from userenvs import python_for_users
from hubprocess import needs_root
from tljh_daemon import collaboration
from tljh_installer.steps import USER_ENV_PACKAGES, install_kernel_prewarm

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def collab_env():
    top = tempfile.mkdtemp(prefix="tljh-test-collab-env-", dir="/var/tmp")
    os.chmod(top, 0o755)
    path = os.path.join(top, "user")
    uv = shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")
    subprocess.run([uv, "venv", "--quiet", "--python", python_for_users(), path], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python",
                    os.path.join(path, "bin", "python"), *USER_ENV_PACKAGES, *collaboration.PACKAGES], check=True)
    install_kernel_prewarm([uv], os.path.join(path, "bin", "python"))
    yield path
    shutil.rmtree(top, ignore_errors=True)


def start_server(page, hub, name):
    page.goto(f"{hub.url}/hub/home")
    page.click("#start")
    page.wait_for_url(f"**/user/{name}/lab**", timeout=180_000)
    page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)


def server_api(page, method, path, body=None):
    """A Jupyter Server API call from a page of that server (its XSRF cookie in the header)."""
    return page.evaluate("""([method, path, body]) => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
        return fetch(path, {method, headers: {"X-XSRFToken": decodeURIComponent(xsrf),
                                              "Content-Type": "application/json"},
                            body: body === null ? undefined : JSON.stringify(body)}).then(r => r.status);
    }""", [method, path, body])


def test_two_people_edit_one_file(browser, make_hub, collab_env, run_id, unix_accounts):
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": collab_env},
                    "sharing": {"enabled": True}, "collaboration": {"enabled": True}})
    owner, friend = f"{run_id}-teacher", f"{run_id}-student"
    unix_accounts.extend([f"jupyter-{owner}", f"jupyter-{friend}"])
    friend_context, friend_page = person(browser, hub, friend)
    owner_context, page = person(browser, hub, owner)
    start_server(page, hub, owner)
    assert server_api(page, "PUT", f"/user/{owner}/api/contents/together.txt",
                      {"type": "file", "format": "text", "content": ""}) in (200, 201)
    assert server_api(page, "PUT", f"/user/{owner}/api/collaboration/session/together.txt",
                      {"format": "text", "type": "file"}) in (200, 201)  # jupyter-collaboration is on
    page.goto(f"{hub.url}/hub/home")
    assert page.evaluate("(f) => hubApi('POST', '/shares/' + encodeURIComponent(hubUser) + '/', {user: f})"
                         ".then(s => s.user.name)", friend) == friend

    editor = ".jp-FileEditor .cm-content"
    for p in (page, friend_page):
        p.goto(f"{hub.url}/user/{owner}/lab/tree/together.txt")
        if p is friend_page:  # another user's server: authorize access once
            p.get_by_role("button", name="Authorize").click()
        p.locator(editor).wait_for(timeout=120_000)
    page.locator(editor).click()
    page.keyboard.type("typed by the teacher")
    friend_page.locator(editor, has_text="typed by the teacher").wait_for(timeout=60_000)
    friend_page.locator(editor).click()
    friend_page.keyboard.press("Control+End")
    friend_page.keyboard.type(" and by the student")
    page.locator(editor, has_text="typed by the teacher and by the student").wait_for(timeout=60_000)
    friend_context.close()
    owner_context.close()


def test_off_means_servers_run_without_it(browser, make_hub, collab_env, run_id, unix_accounts):
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": collab_env}})
    name = f"{run_id}-solo"
    unix_accounts.append(f"jupyter-{name}")
    context, page = person(browser, hub, name)
    start_server(page, hub, name)
    session = f"/user/{name}/api/collaboration/session/x.txt"
    assert server_api(page, "PUT", session, {"format": "text", "type": "file"}) == 404
    context.close()
