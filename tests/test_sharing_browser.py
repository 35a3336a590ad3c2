"""Sharing a server from the home page's Share panel, in a real headless Chromium with one browser
context per person, through Traefik to real jupyterhub-singleuser servers: the owner shares with
a user by keyboard, the other user opens the owner's JupyterLab as themselves; the owner stops
sharing and a new session of the other user is refused; a share link brings them back.

With TLJH_SCREENSHOTS=<folder> the run saves the Share panel and the accept-share page there
(docs/images holds the ones docs/howto-sharing.md shows)."""

import os

import pytest
import requests

from a11y import DESKTOP, PHONE, assert_accessible, assert_no_horizontal_overflow, console_errors
from hubprocess import needs_root
from labpage import person

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def hub(make_hub, user_env, run_id, unix_accounts):
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "user_environment": {"path": user_env}, "sharing": {"enabled": True},
                    "named_servers": {"enabled": True}})
    hub.owner, hub.friend = f"{run_id}-owner", f"{run_id}-friend"
    unix_accounts.extend([f"jupyter-{hub.owner}", f"jupyter-{hub.friend}"])
    return hub


def screenshot(page, name, selector):
    folder = os.environ.get("TLJH_SCREENSHOTS")
    if folder:
        page.locator(selector).screenshot(path=os.path.join(folder, name))


def opens_lab(page, hub, owner):
    """`page` gets into `owner`'s JupyterLab (through Traefik and the server's OAuth): the first
    time, the hub asks to authorize access (as JupyterHub does for another user's server)."""
    page.goto(f"{hub.url}/user/{owner}/lab")
    page.locator("#oauth-consent").wait_for()
    assert f"access:servers!server={owner}/" in page.locator("#oauth-consent").inner_text()
    assert_accessible(page)
    screenshot(page, "share-authorize.png", "#oauth-consent")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"**/user/{owner}/lab**", timeout=60_000)
    page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)


def who_is_in(page):
    """The user name the server's Jupyter Server identity API (/api/me) sees on this page."""
    return page.evaluate("""() => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
        return fetch("api/me", {headers: {"X-XSRFToken": decodeURIComponent(xsrf)}})
            .then(r => r.json()).then(me => me.identity.username);
    }""")


def test_share_open_revoke_and_share_link(browser, hub):
    owner, friend = hub.owner, hub.friend
    friend_context, friend_page = person(browser, hub, friend)  # the friend exists once signed in
    owner_context, page = person(browser, hub, owner)
    errors = console_errors(page)
    page.click("#start")
    page.wait_for_url(f"**/user/{owner}/lab**", timeout=180_000)
    page.goto(f"{hub.url}/hub/home")
    panel = page.locator("#share-panel")
    panel.locator("#no-shares").wait_for()

    # Share with the friend by keyboard only: the label finds the field, Enter submits.
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type(friend)
    page.keyboard.press("Enter")
    row = page.locator(f'#shares tr[data-who="{friend}"]')
    row.wait_for()
    assert page.locator("#status").inner_text() == f"Shared with {friend}"
    assert_accessible(page, within=["#share-panel"])
    assert not errors, errors
    screenshot(page, "share-panel.png", "#share-panel")

    # The friend sees it on their home page and opens the owner's server as themselves.
    friend_page.goto(f"{hub.url}/hub/home")
    link = friend_page.locator("#shared-with-me a", has_text=f"{owner}'s server")
    link.wait_for()
    opens_lab(friend_page, hub, owner)
    assert who_is_in(friend_page) == friend  # the owner's server knows them by their own name
    friend_context.close()

    # The owner stops sharing (keyboard: the button is named after the person) ...
    page.get_by_role("button", name=f"Stop sharing with {friend}").focus()
    page.keyboard.press("Enter")
    row.wait_for(state="detached")
    page.locator("#no-shares").wait_for()
    # ... and a new session of the friend is refused by the hub.
    friend_context, friend_page = person(browser, hub, friend)
    response = friend_page.goto(f"{hub.url}/user/{owner}/lab")
    assert response.status == 403
    assert "permission" in friend_page.content()
    friend_context.close()

    # A share link: the owner makes one, the friend opens it, accepts, and is in again.
    page.get_by_label("Link valid for").select_option("3600")
    page.get_by_role("button", name="Make a share link").click()
    link_field = page.get_by_label("Your new share link")
    link_field.wait_for()
    share_link = link_field.input_value()
    assert share_link.startswith(f"{hub.url}/hub/accept-share?code=")
    friend_context, friend_page = person(browser, hub, friend)
    friend_page.goto(share_link)
    assert owner in friend_page.locator("#accept-share").inner_text()
    assert_accessible(friend_page)
    screenshot(friend_page, "accept-share.png", "#accept-share")
    friend_page.get_by_role("button", name="Accept and open").click()
    friend_page.wait_for_url(f"**/user/{owner}/lab**", timeout=60_000)
    friend_page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
    page.reload()
    page.locator(f'#shares tr[data-who="{friend}"]').wait_for()
    assert page.locator("#codes tbody tr").first.locator("td").nth(2).inner_text() == "1 time"
    page.set_viewport_size(PHONE)  # the panel with both lists filled fits a phone
    assert_no_horizontal_overflow(page)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)
    friend_context.close()

    # Revoking the link: it cannot be used any more.
    page.locator("#codes tbody tr").first.get_by_role("button").click()
    page.locator("#no-codes").wait_for()
    assert requests.get(share_link, allow_redirects=False).status_code == 302  # login first
    friend_context, friend_page = person(browser, hub, friend)
    assert friend_page.goto(share_link).status == 404
    friend_context.close()
    owner_context.close()


def test_a_named_server_is_shared_on_its_own(browser, hub):
    """With named servers the panel's Server choice says which server it shares: sharing a
    named one (made through the REST API from the page, not started) shares that one only."""
    owner, friend = hub.owner, hub.friend
    person(browser, hub, friend)[0].close()  # the friend exists once signed in
    context, page = person(browser, hub, owner)
    errors = console_errors(page)
    api = "(args) => window.hubApi(...args)"
    page.evaluate(api, ["PUT", f"/users/{owner}/servers/proj", {"display_name": "Project"}])
    # The default server is shared with nobody (the test before may have left a share).
    page.evaluate("(args) => window.hubApi(...args).catch(() => null)", ["PATCH", f"/shares/{owner}/", {"user": friend}])
    page.reload()

    page.get_by_label("Server", exact=True).select_option(label="Project (proj)")
    page.locator("#no-shares").wait_for()  # the named server is shared with nobody yet
    page.get_by_label("Name", exact=True).fill(friend)
    page.keyboard.press("Enter")
    page.locator(f'#shares tr[data-who="{friend}"]').wait_for()
    shares = page.evaluate(api, ["GET", f"/shares/{owner}/proj"])["items"]
    assert [(s["user"]["name"], s["scopes"]) for s in shares] == [(friend, [f"access:servers!server={owner}/proj"])]
    assert page.evaluate(api, ["GET", f"/shares/{owner}/"])["items"] == []

    page.get_by_label("Server", exact=True).select_option(value="")
    page.locator("#no-shares").wait_for()  # the panel is about the default server again
    assert_accessible(page, within=["#share-panel"])
    assert not errors, errors
    context.close()
