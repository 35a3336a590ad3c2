"""Sign-up with approval and workshop accounts in a real headless Chromium (Playwright):
sign up -> pending (clear page, no session) -> an admin approves in the admin panel -> log in
-> spawn -> run code; two workshop visitors get two users, and culling removes them."""

import os
import pwd
import re
import time

import pytest

from hubprocess import needs_root
from labpage import run_code_in_a_new_notebook
from tljh_daemon.sessions import COOKIE_NAME

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]
PASSWORD = "amber-lantern-58"


def sign_up(page, hub, name):
    page.goto(f"{hub.url}/hub/login")
    page.click("#signup-link")
    page.wait_for_url("**/hub/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_confirm]", PASSWORD)
    page.click("button[type=submit]")
    return page.locator("#signup-result").inner_text(timeout=30_000)


def log_in(page, hub, name):
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_sign_up_pending_approval_in_the_admin_panel_then_spawn_and_run_code(make_hub, user_env, run_id,
                                                                             unix_accounts, browser):
    pupil, boss = f"{run_id}-signee", f"{run_id}-approver"  # unlike other files' users
    unix_accounts.extend([f"jupyter-{pupil}", f"jupyter-{boss}"])
    hub = make_hub({"auth": {"type": "nativeauthenticator.NativeAuthenticator"}, "users": {"admin": [boss]},
                    "user_environment": {"path": user_env}})

    visitor = browser.new_context()
    page = visitor.new_page()
    assert "waiting for an administrator" in sign_up(page, hub, pupil)
    log_in(page, hub, pupil)
    assert "waiting for an administrator" in page.locator("p.error").inner_text(timeout=30_000)
    assert COOKIE_NAME not in {c["name"] for c in visitor.cookies()}
    with pytest.raises(KeyError):
        pwd.getpwnam(f"jupyter-{pupil}")  # nothing half-made

    admin = browser.new_context().new_page()
    assert "is ready" in sign_up(admin, hub, boss)  # users.admin: approved at sign-up
    log_in(admin, hub, boss)
    admin.wait_for_url("**/hub/spawn-pending/**", timeout=30_000)
    admin.goto(f"{hub.url}/hub/admin")
    row = admin.locator(f'#signups tr[data-signup="{pupil}"]')
    assert row.locator(".status").inner_text() == "pending"
    row.locator("button.approve").click()
    admin.locator(f'#users tr[data-user="{pupil}"]').wait_for(timeout=30_000)  # now a hub user
    assert admin.locator(f'#signups tr[data-signup="{pupil}"]').count() == 0

    log_in(page, hub, pupil)
    page.wait_for_url(f"**/user/{pupil}/lab**", timeout=180_000)
    run_code_in_a_new_notebook(page, "print(6 * 7, 'from the kernel')")
    page.locator(".jp-OutputArea-output", has_text="42 from the kernel").wait_for(timeout=120_000)
    visitor.close()


def _user_of(page):
    return re.search(r"/user/([^/]+)/", page.url).group(1)


def _gone(name):
    try:
        pwd.getpwnam(f"jupyter-{name}")
    except KeyError:
        return True
    return False


def test_workshop_visitors_get_their_own_users_and_culling_removes_them(make_hub, user_env, unix_accounts,
                                                                         browser):
    # Culled 45 s after the start: long enough for both spawns on a busy machine.
    hub = make_hub({"auth": {"type": "tmpauthenticator.TmpAuthenticator"},
                    "services": {"cull": {"enabled": True, "timeout": 45, "every": 2}},
                    "user_environment": {"path": user_env}})
    one, two = browser.new_context(), browser.new_context()
    pages = [one.new_page(), two.new_page()]
    for page in pages:
        page.goto(f"{hub.url}/")
    names = []
    for page in pages:
        page.wait_for_url("**/user/tmp-*/lab**", timeout=180_000)
        names.append(_user_of(page))
        unix_accounts.append(f"jupyter-{names[-1]}")
    first, second = names
    assert first != second and all(n.startswith("tmp-") for n in names)
    assert not _gone(first) and not _gone(second)

    page = pages[0]
    page.goto(f"{hub.url}/hub/home")
    assert "temporary account" in page.locator("#temporary-notice").inner_text()
    # Each visitor reaches only their own server.
    response = page.goto(f"{hub.url}/user/{second}/lab")
    assert response.status == 403 or _user_of(page) != second

    deadline = time.monotonic() + 180
    while not (_gone(first) and _gone(second)):
        assert time.monotonic() < deadline, hub.log()[-3000:]
        time.sleep(1)
    assert f"Removed temporary user {first}" in hub.log()
    assert not os.path.exists(f"/home/jupyter-{first}")

    # The same browser comes back: a new user and a new server.
    page.goto(f"{hub.url}/")
    page.wait_for_url("**/user/tmp-*/lab**", timeout=180_000)
    third = _user_of(page)
    unix_accounts.append(f"jupyter-{third}")
    assert third not in (first, second)
    one.close()
    two.close()
