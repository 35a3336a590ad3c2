"""Sign-in through a real OpenID Connect provider (npm's oidc-provider) in headless Chromium:
a server and a kernel for an allowed user, allowed_groups refusing the other, a wrong client
secret and a tampered state giving the clear page; the GitHub and Google presets through the
same provider with their endpoints overridden."""

import os
import pwd
import sqlite3

import pytest

from hubclient import HubClient
from hubprocess import needs_root
from oidcserver import CLIENT_ID, OIDCProvider, have_node
from tljh_daemon.paths import Paths

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not have_node(), reason="node and npm are not installed (scripts/test installs them)"),
]


@pytest.fixture(scope="session")
def people(run_id):
    return {"ann": f"{run_id}-oidc-ann", "bob": f"{run_id}-oidc-bob"}  # unlike other files' users


@pytest.fixture(scope="session")
def oidc(people):
    """One provider for the session: ann in group class-a (and GitHub org jupyter-class),
    bob in group other, each with an email of a different domain."""
    ann, bob = people["ann"], people["bob"]
    provider = OIDCProvider({
        ann: {"claims": {"groups": ["class-a"], "email": f"{ann}@school.test", "email_verified": True,
                         "hd": "school.test"}, "orgs": ["jupyter-class"]},
        bob: {"claims": {"groups": ["other"], "email": f"{bob}@elsewhere.test", "email_verified": True},
              "orgs": []},
    }).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def accounts(people, unix_accounts):
    unix_accounts.extend(f"jupyter-{n}" for n in people.values())


def generic(oidc, user_env, **settings):
    return {"auth": {"type": "oauthenticator.generic.GenericOAuthenticator", "GenericOAuthenticator": {
        "client_id": CLIENT_ID, "client_secret": oidc.client_secret, "authorize_url": oidc.issuer + "/auth",
        "scope": ["openid", "profile", "groups"], "username_claim": "preferred_username",
        "allowed_groups": ["class-a"], "login_service": "Test SSO", **settings}},
        "user_environment": {"path": user_env}}


@pytest.fixture(scope="module")
def hub(make_hub, user_env, oidc, accounts):
    return make_hub(generic(oidc, user_env))


def sign_in(browser, hub, login, service="Test SSO", next_url="/hub/home"):
    """A fresh browser: the hub's login page, the provider's button, its login and consent
    pages (development interactions: any password). Returns the page where it ends."""
    page = browser.new_context().new_page()
    page.goto(f"{hub.url}/hub/login?next={next_url}")
    page.click(f"text=Sign in with {service}")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.click("button:has-text('Continue')")  # the provider's consent page
    return page


def landed(page, hub, pattern, timeout=30_000):
    """Wait for the page to reach `pattern`; on a timeout say where it is instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_url(pattern, timeout=timeout)
    except PlaywrightTimeout:
        raise AssertionError(f"not at {pattern} but at {page.url}: {page.locator('body').inner_text()[:500]}\n"
                             f"hub log: {hub.log()[-2000:]}") from None


def hub_users(hub):
    with sqlite3.connect(Paths(hub.prefix).database) as db:
        return [row[0] for row in db.execute("SELECT name FROM users")]


def test_sign_in_get_a_server_and_run_code(browser, hub, people):
    ann = people["ann"]
    page = sign_in(browser, hub, ann, next_url="/hub/spawn")
    landed(page, hub, f"**/user/{ann}/lab**", timeout=180_000)
    client = HubClient(hub.url)
    for cookie in page.context.cookies():
        client.cookies.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
    # The browser's server cookie lets this client in; the server's XSRF token is per client.
    assert client.get(client.url(f"/user/{ann}/lab")).status_code == 200
    kernel = client.start_kernel(ann)
    assert client.execute(ann, kernel, "import os; os.getuid()") == str(pwd.getpwnam(f"jupyter-{ann}").pw_uid)
    assert f"OAuth: {ann} signed in" in hub.log()
    page.context.close()


def test_allowed_groups_refuses_the_other_user(browser, hub, people):
    bob = people["bob"]
    page = sign_in(browser, hub, bob)
    landed(page, hub, "**/hub/oauth_callback**")
    text = page.locator("p.error").inner_text()
    assert f"as {bob}, but {bob} may not use this hub" in text and "Ask the hub's administrator" in text
    assert bob not in hub_users(hub)
    assert hub.log().count(f"sign-in of {bob} refused") == 1
    page.context.close()


def test_tampered_state_gives_the_clear_page(browser, hub, people):
    def via_provider(page, change_state):
        """The hub's redirect to the provider (its state cookie lands in this browser), then
        the provider with the state as given back by `change_state`."""
        to_provider = page.context.request.get(f"{hub.url}/hub/oauth_login?next=/hub/home", max_redirects=0)
        assert to_provider.status == 302
        page.goto(change_state(to_provider.headers["location"]))
        page.fill("input[name=login]", people["ann"])
        page.fill("input[name=password]", "x")
        page.click("button[type=submit]")
        page.click("button:has-text('Continue')")

    page = browser.new_context().new_page()
    via_provider(page, lambda url: url.replace("state=", "state=x"))
    landed(page, hub, "**/hub/oauth_callback**")
    assert "does not match one started in this browser" in page.locator("p.error").inner_text()
    assert "state missing, unknown" in hub.log()
    page.context.close()
    page = browser.new_context().new_page()
    via_provider(page, lambda url: url)  # the same way, untouched: signed in
    landed(page, hub, "**/hub/home")
    page.context.close()


def test_wrong_client_secret_gives_the_clear_page(browser, make_hub, user_env, oidc, people, accounts):
    hub = make_hub(generic(oidc, user_env, client_secret="not-the-secret"))
    page = sign_in(browser, hub, people["ann"])
    landed(page, hub, "**/hub/oauth_callback**")
    assert "client id or client secret is not right" in page.locator("p.error").inner_text()
    log = hub.log()
    assert log.count("refused the client") == 1 and "not-the-secret" not in log
    assert "Traceback" not in log and hub_users(hub) == []
    page.context.close()


def test_github_preset_with_its_endpoints_overridden(browser, make_hub, user_env, oidc, people, accounts):
    hub = make_hub({"auth": {"type": "oauthenticator.github.GitHubOAuthenticator", "GitHubOAuthenticator": {
        "client_id": CLIENT_ID, "client_secret": oidc.client_secret, "basic_auth": True,
        "authorize_url": oidc.issuer + "/auth", "token_url": oidc.issuer + "/token",
        "userdata_url": oidc.issuer + "/api/v3/user", "allowed_organizations": ["jupyter-class"],
        # oidc-provider grants nothing without openid (GitHub itself does plain OAuth 2.0, which
        # the fast tier covers); the organization check runs against its GitHub-shaped API.
        "scope": ["openid"]}},
        "user_environment": {"path": user_env}})
    page = sign_in(browser, hub, people["ann"], service="GitHub")
    landed(page, hub, "**/hub/home")
    page.context.close()
    page = sign_in(browser, hub, people["bob"], service="GitHub")
    landed(page, hub, "**/hub/oauth_callback**")
    assert "not a member of an organization or team this hub admits" in page.locator("p.error").inner_text()
    page.context.close()
    assert hub_users(hub) == [people["ann"]]


def test_google_preset_with_its_endpoints_overridden(browser, make_hub, user_env, oidc, people, accounts):
    hub = make_hub({"auth": {"type": "google", "GoogleOAuthenticator": {
        "client_id": CLIENT_ID, "client_secret": oidc.client_secret, "authorize_url": oidc.issuer + "/auth",
        "token_url": oidc.issuer + "/token", "userdata_url": oidc.issuer + "/me", "hosted_domain": ["school.test"]}},
        "user_environment": {"path": user_env}})
    page = sign_in(browser, hub, people["ann"], service="Google")
    landed(page, hub, "**/hub/home")
    page.context.close()
    page = sign_in(browser, hub, people["bob"], service="Google")
    landed(page, hub, "**/hub/oauth_callback**")
    assert "only accounts of school.test may sign in" in page.locator("p.error").inner_text()
    page.context.close()
    assert hub_users(hub) == [people["ann"]]  # ann@school.test, one hosted domain: no @school.test


def test_id_tokens_signed_with_the_client_secret(browser, make_hub, user_env, oidc, people, accounts):
    """A client whose ID tokens the provider signs with HS256 (its secret as the key)."""
    hub = make_hub(generic(oidc, user_env, client_id=f"{CLIENT_ID}-hs256",
                           client_secret=f"{oidc.client_secret}-hs256"))
    page = sign_in(browser, hub, people["ann"])
    landed(page, hub, "**/hub/home**")
    assert "signs ID tokens with HS256; checking them with the client secret" in hub.log()
    assert f"OAuth: {people['ann']} signed in" in hub.log()
    page.context.close()
