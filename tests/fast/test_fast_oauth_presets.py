"""GitHub and Google presets against the fake provider's copies of their documented API
shapes: organization and team membership, verified email and hosted domain."""

import pytest

from fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from test_fast_oidc import sign_in, users
from tljh_daemon.auth import AUTH_TYPES
from tljh_daemon.auth.oauth_presets import GitHubOAuthenticator, GoogleOAuthenticator


@pytest.fixture
async def provider():
    p = await FakeProvider().start()
    p.add_user("octocat", email="octocat@github.example")
    p.add_user("hubot")
    p.add_user("pending-pat")
    p.add_user("alice@school.edu", email="alice@school.edu", email_verified=True, hd="school.edu")
    p.add_user("mallory@gmail.com", email="mallory@gmail.com", email_verified=True)
    p.add_user("eve@school.edu", email="eve@school.edu", email_verified=False, hd="school.edu")
    p.orgs = {"jupyter-class": {"octocat"}}
    p.teams = {("big-org", "teachers"): {"hubot": "active", "pending-pat": "pending"}}
    yield p
    await p.close()


def github(provider, **settings):
    return {"auth": {"type": "oauthenticator.github.GitHubOAuthenticator", "GitHubOAuthenticator": {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "authorize_url": provider.authorize_url, "token_url": provider.token_url,
        "userdata_url": provider.url + "/api/v3/user", **settings}}}


def google(provider, **settings):
    return {"auth": {"type": "google", "GoogleOAuthenticator": {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "authorize_url": provider.authorize_url,
        "token_url": provider.token_url, "userdata_url": provider.url + "/oauth2/v1/userinfo", **settings}}}


def test_names_and_published_endpoints():
    assert AUTH_TYPES["oauthenticator.github.GitHubOAuthenticator"] == "github"
    assert AUTH_TYPES["oauthenticator.google.GoogleOAuthenticator"] == "google"
    gh, go = GitHubOAuthenticator.DEFAULTS, GoogleOAuthenticator.DEFAULTS
    assert gh["authorize_url"] == "https://github.com/login/oauth/authorize"
    assert gh["token_url"] == "https://github.com/login/oauth/access_token"
    assert gh["userdata_url"] == "https://api.github.com/user" and gh["username_claim"] == "login"
    assert go["authorize_url"] == "https://accounts.google.com/o/oauth2/v2/auth"
    assert go["token_url"] == "https://oauth2.googleapis.com/token"
    assert go["username_claim"] == "email" and go["scope"] == ["openid", "email"]


async def test_github_organization_and_team_membership(start_hub, provider):
    hub = await start_hub(github(provider, allowed_organizations=["jupyter-class", "big-org:teachers"]))
    async with (await hub.browser()).request("GET", "/hub/login") as r:
        assert "Sign in with GitHub" in await r.text()
    assert (await sign_in(hub, provider, "octocat"))[0] == 302  # org member (204)
    assert (await sign_in(hub, provider, "hubot"))[0] == 302  # active team member (200 "active")
    status, page, _ = await sign_in(hub, provider, "pending-pat")  # invited, not yet a member
    assert status == 403 and "not a member of an organization or team this hub admits" in page
    assert sorted(await users(hub)) == ["hubot", "octocat"]
    sent = provider.authorize_requests[-1]
    assert "read:org" in sent["scope"].split() and sent["code_challenge_method"] == "S256"
    assert "nonce" not in sent  # plain OAuth 2.0, like GitHub
    assert provider.token_requests[-1]["form"]["client_secret"] == CLIENT_SECRET  # in the body, as GitHub documents


async def test_github_without_organizations_needs_an_allow_rule(start_hub, provider):
    hub = await start_hub(github(provider, allowed_users=["octocat"]))
    assert (await sign_in(hub, provider, "octocat"))[0] == 302
    status, page, _ = await sign_in(hub, provider, "hubot")
    assert status == 403 and "not on this hub&#39;s list" in page


async def test_github_enterprise_api_root():
    from tljh_daemon import config as config_mod
    from tljh_daemon.settings import auth_settings
    config = config_mod.merge(config_mod.DEFAULTS, {"auth": {"GitHubOAuthenticator": {
        "userdata_url": "https://ghe.example.org/api/v3/user"}}})
    assert GitHubOAuthenticator(auth_settings(config), None).api_url == "https://ghe.example.org/api/v3"
    assert GitHubOAuthenticator(auth_settings(config_mod.merge(config_mod.DEFAULTS, {})), None).api_url == "https://api.github.com"


async def test_google_hosted_domain_and_verified_email(start_hub, provider):
    hub = await start_hub(google(provider, hosted_domain=["school.edu"]))
    status, _, r = await sign_in(hub, provider, "alice@school.edu")
    assert status == 302
    assert await users(hub) == ["alice"]  # one hosted domain: the name drops @school.edu
    status, page, _ = await sign_in(hub, provider, "mallory@gmail.com")
    assert status == 403 and "only accounts of school.edu may sign in" in page
    status, page, _ = await sign_in(hub, provider, "eve@school.edu")
    assert status == 403 and "not verified" in page
    assert await users(hub) == ["alice"]
    assert "nonce" in provider.authorize_requests[-1]  # OpenID Connect: the ID token is checked too


async def test_google_several_domains_keep_full_names(start_hub, provider):
    hub = await start_hub(google(provider, hosted_domain=["school.edu", "uni.example"]))
    assert (await sign_in(hub, provider, "alice@school.edu"))[0] == 302
    assert await users(hub) == ["alice@school.edu"]


async def test_google_without_hosted_domain_needs_an_allow_rule(start_hub, provider):
    hub = await start_hub(google(provider, allowed_users=["mallory@gmail.com"]))
    assert (await sign_in(hub, provider, "mallory@gmail.com"))[0] == 302
    status, page, _ = await sign_in(hub, provider, "alice@school.edu")
    assert status == 403
