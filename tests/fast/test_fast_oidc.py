"""OAuth 2.0 / OpenID Connect sign-in against the in-process fake provider: the flow (state,
PKCE, nonce, discovery), ID token checks, allow/admin rules, and every failure path giving a
clear page, one log line and no user."""

import logging

import aiohttp
import pytest
from joserfc.jwk import RSAKey
from yarl import URL

from fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tljh_daemon import config as config_mod
from tljh_daemon.auth import AUTH_TYPES


@pytest.fixture
async def provider():
    p = await FakeProvider().start()
    p.add_user("alice", email="alice@example.org", groups=["class-a"])
    p.add_user("bob", email="bob@example.org", groups=["other"], realm_access={"roles": ["teacher"]})
    yield p
    await p.close()


def generic(provider, **settings):
    section = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "authorize_url": provider.authorize_url,
               "scope": ["openid", "profile"], "username_claim": "preferred_username",
               "allowed_groups": ["class-a"], "login_service": "Example SSO", **settings}
    return {"auth": {"type": "oauthenticator.generic.GenericOAuthenticator", "GenericOAuthenticator": section}}


async def sign_in(hub, provider, user, browser=None, next_url="", tamper=None, prefix=""):
    """The browser's round trip: hub login route -> provider -> hub callback. Returns the
    callback's (status, body, response)."""
    provider.next_user = user
    browser = browser or await hub.browser()
    params = {"next": next_url} if next_url else {}
    async with browser.request("GET", prefix + "/hub/oauth_login", params=params) as r:
        assert r.status == 302, await r.text()
        to_provider = r.headers["Location"]
    async with aiohttp.ClientSession() as outside, outside.get(to_provider, allow_redirects=False) as r:
        back = URL(r.headers["Location"])
    if tamper:
        back = tamper(back)
    async with browser.request("GET", back.path_qs) as r:
        return r.status, await r.text(), r


async def users(hub):
    return [row["name"] for row in hub.db.all("SELECT name FROM users")]


def test_names_registered():
    for name in ("generic", "generic-oauth", "oauthenticator.generic.GenericOAuthenticator"):
        assert AUTH_TYPES[name] == "generic"


async def test_login_page_shows_only_the_button(start_hub, provider):
    hub = await start_hub(generic(provider))
    async with (await hub.browser()).request("GET", "/hub/login?next=/hub/token") as r:
        page = await r.text()
    assert "Sign in with Example SSO" in page and 'href="/hub/oauth_login?next=%2Fhub%2Ftoken"' in page
    assert 'name="password"' not in page


async def test_flow_state_pkce_nonce_and_session(start_hub, provider):
    hub = await start_hub(generic(provider))
    browser = await hub.browser()
    status, _, r = await sign_in(hub, provider, "alice", browser, next_url="/hub/token")
    assert status == 302 and r.headers["Location"] == "/hub/token"
    sent = provider.authorize_requests[-1]
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) >= 43
    assert len(sent["state"]) >= 32 and len(sent["nonce"]) >= 32
    assert sent["scope"] == "openid profile"
    assert sent["redirect_uri"] == str(hub.client.make_url("/hub/oauth_callback"))
    token_request = provider.token_requests[-1]
    assert token_request["authorization"].startswith("Basic ")  # basic_auth defaults to true
    assert CLIENT_SECRET not in str(token_request["form"])
    async with browser.api("GET", "/user") as resp:
        assert (await resp.json())["name"] == "alice"
    cookie = r.cookies["tljh-oauth-state"]
    assert cookie.value == "" or cookie["max-age"] == "0"  # the state cookie is cleared


async def test_under_a_base_url(start_hub, provider):
    hub = await start_hub({**generic(provider), "base_url": "/jupyter/"})
    browser = await hub.browser()
    async with browser.request("GET", "/jupyter/hub/login") as r:
        assert 'href="/jupyter/hub/oauth_login"' in await r.text()
    status, _, r = await sign_in(hub, provider, "alice", browser, prefix="/jupyter")
    assert status == 302 and r.headers["Location"] == "/jupyter/hub/spawn"
    assert provider.authorize_requests[-1]["redirect_uri"].endswith("/jupyter/hub/oauth_callback")
    assert r.cookies["jupyterhub-hub-login"]["path"] == "/jupyter/hub/"


async def test_auto_login_goes_straight_to_the_provider(start_hub, provider):
    hub = await start_hub(generic(provider, auto_login=True))
    async with (await hub.browser()).request("GET", "/hub/login?next=/hub/home") as r:
        location = URL(r.headers["Location"])
        assert r.status == 302 and location.path == "/hub/oauth_login" and location.query["next"] == "/hub/home"


async def test_group_not_allowed_gets_a_clear_page_and_no_user(start_hub, provider, caplog):
    hub = await start_hub(generic(provider))
    caplog.set_level(logging.INFO)
    status, page, _ = await sign_in(hub, provider, "bob")
    assert status == 403
    assert "as bob, but bob may not use this hub" in page and "not in a group this hub admits" in page
    assert "Ask the hub" in page
    assert await users(hub) == []
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


async def test_admin_groups_from_a_nested_claim_applied_at_every_login(start_hub, provider):
    hub = await start_hub(generic(provider, claim_groups_key="realm_access.roles",
                                  allowed_groups=["student"], admin_groups=["teacher"]))
    assert (await sign_in(hub, provider, "bob"))[0] == 302
    assert hub.db.one("SELECT admin FROM users WHERE name='bob'")[0] == 1
    provider.users["bob"]["realm_access"]["roles"] = ["student"]
    assert (await sign_in(hub, provider, "bob"))[0] == 302
    assert hub.db.one("SELECT admin FROM users WHERE name='bob'")[0] == 0


async def test_allow_lists(start_hub, provider):
    hub = await start_hub({**generic(provider, allowed_groups=[], allowed_users=["bob"]),
                           "users": {"admin": ["alice"]}})
    assert (await sign_in(hub, provider, "bob"))[0] == 302
    assert (await sign_in(hub, provider, "alice"))[0] == 302  # admins are always allowed
    assert hub.db.one("SELECT admin FROM users WHERE name='alice'")[0] == 1
    hub2 = await start_hub(generic(provider, allowed_groups=[]))
    status, page, _ = await sign_in(hub2, provider, "alice")
    assert status == 403 and "has not been told who may sign in" in page
    hub3 = await start_hub(generic(provider, allowed_groups=[], allow_all=True))
    assert (await sign_in(hub3, provider, "bob"))[0] == 302


async def test_blocked_and_banned(start_hub, provider):
    hub = await start_hub({**generic(provider, allow_all=True, blocked_users=["bob"]), "users": {"banned": ["alice"]}})
    for name in ("alice", "bob"):
        status, page, _ = await sign_in(hub, provider, name)
        assert status == 403 and "blocked" in page
    assert await users(hub) == []


async def test_tampered_or_foreign_state_is_refused(start_hub, provider, caplog):
    hub = await start_hub(generic(provider))
    status, page, _ = await sign_in(
        hub, provider, "alice", tamper=lambda u: u.update_query(state=u.query["state"][:-2] + "xx"))
    assert status == 400 and "does not match one started in this browser" in page
    assert await users(hub) == []
    # A callback URL made in another browser (login CSRF) does not log this one in.
    provider.next_user = "alice"
    attacker = await hub.browser()
    async with attacker.request("GET", "/hub/oauth_login") as r:
        to_provider = r.headers["Location"]
    async with aiohttp.ClientSession() as outside, outside.get(to_provider, allow_redirects=False) as r:
        back = URL(r.headers["Location"])
    victim = await hub.browser()
    async with victim.request("GET", back.path_qs) as r:
        assert r.status == 400
    # A state is good once.
    async with attacker.request("GET", back.path_qs) as r:
        assert r.status == 302
    async with attacker.request("GET", back.path_qs) as r:
        assert r.status == 400
    assert len([r for r in caplog.records if "state missing, unknown" in r.getMessage()]) == 3


async def test_wrong_client_secret(start_hub, provider, caplog):
    hub = await start_hub(generic(provider, client_secret="not-the-secret"))
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "client id or client secret is not right" in page
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("tljh_daemon")]
    assert sum("refused the client" in line for line in lines) == 1
    assert not any("not-the-secret" in line for line in lines)
    assert await users(hub) == []


async def test_client_secret_post(start_hub, provider):
    hub = await start_hub(generic(provider, basic_auth=False))
    assert (await sign_in(hub, provider, "alice"))[0] == 302
    assert provider.token_requests[-1]["authorization"] is None


@pytest.mark.parametrize("tweak", [
    {"exp": 1000}, {"iss": "http://127.0.0.1:1/evil"}, {"aud": "someone-else"}, {"nonce": "replayed"}])
async def test_bad_id_tokens_are_refused(start_hub, provider, tweak, caplog):
    hub = await start_hub(generic(provider))
    provider.id_token_tweaks = tweak
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "could not be verified" in page
    assert await users(hub) == []
    assert sum("ID token from" in r.getMessage() for r in caplog.records) == 1


async def test_forged_id_token_signature(start_hub, provider):
    hub = await start_hub(generic(provider))
    provider.sign_with = RSAKey.generate_key(2048, parameters={"kid": "key-1"}, private=True)
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "could not be verified" in page
    assert await users(hub) == []


async def test_key_rotation_is_followed(start_hub, provider):
    hub = await start_hub(generic(provider))
    assert (await sign_in(hub, provider, "alice"))[0] == 302
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "key-2", "use": "sig"}, private=True)
    hub.hub.authenticator.provider._keys_at -= 120  # past the one-refresh-a-minute limit
    assert (await sign_in(hub, provider, "alice"))[0] == 302


async def test_a_discovery_document_of_another_issuer_is_ignored(start_hub, provider, caplog):
    provider.advertised_issuer = "https://evil.example"
    hub = await start_hub(generic(provider, token_url=provider.token_url, userdata_url=provider.userinfo_url))
    assert (await sign_in(hub, provider, "alice"))[0] == 302
    assert "nonce" not in provider.authorize_requests[-1]  # plain OAuth 2.0: the document was not used
    assert "no OpenID Connect discovery document describes" in caplog.text


async def test_provider_unreachable(start_hub, provider, caplog):
    hub = await start_hub(generic(provider, token_url="http://127.0.0.1:9/token", userdata_url="http://x.invalid/"))
    hub.hub.authenticator.provider.discover = False  # keep the flow plain OAuth 2.0
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "could not be reached" in page
    assert await users(hub) == []
    assert sum("unreachable during sign-in" in r.getMessage() for r in caplog.records) == 1
    # The provider down at the start of a sign-in: the same clear page.
    down = await start_hub(generic(provider, authorize_url="http://127.0.0.1:9/realms/x/auth"))
    async with (await down.browser()).request("GET", "/hub/oauth_login") as r:
        assert r.status == 502 and "could not be reached" in await r.text()


async def test_an_unforeseen_error_is_still_a_clear_page(start_hub, provider, monkeypatch):
    hub = await start_hub(generic(provider))

    async def broken(claims, api):
        raise KeyError("a claim nobody expected")

    monkeypatch.setattr(hub.hub.authenticator, "groups", broken)
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "failed unexpectedly" in page
    assert await users(hub) == []


async def test_plain_oauth2_without_discovery_uses_userdata_url(start_hub, provider):
    provider.discovery = False
    hub = await start_hub(generic(provider, scope=["profile"], token_url=provider.token_url,
                                  userdata_url=provider.userinfo_url))
    assert (await sign_in(hub, provider, "alice"))[0] == 302
    assert "nonce" not in provider.authorize_requests[-1]


async def test_provider_error_and_missing_username(start_hub, provider):
    hub = await start_hub(generic(provider, username_claim="nickname"))
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "has no &#39;nickname&#39;" in page and "username_claim" in page
    status, page, _ = await sign_in(hub, provider, "alice", tamper=lambda u: u.with_query(
        state=u.query["state"], error="access_denied"))
    assert status == 403 and "did not sign you in (access_denied)" in page
    assert await users(hub) == []


async def test_password_form_is_refused_and_no_password_change(start_hub, provider):
    hub = await start_hub(generic(provider))
    browser = await hub.browser()
    assert (await browser.login("alice", "pw")).status == 400
    await sign_in(hub, provider, "alice", browser)
    async with browser.request("GET", "/hub/auth/change-password") as r:
        assert r.status == 400


@pytest.mark.parametrize("section,key,message", [
    ({"client_id": ""}, "client_id", "required"),
    ({"client_secret": ""}, "client_secret", "required"),
    ({"scope": ["profile"]}, "token_url", "openid"),
    ({"oauth_callback_url": "https://hub.example.org/oauth"}, "oauth_callback_url", "/hub/"),
    ({"authorize_url": "ftp://x"}, "authorize_url", ""),
    ({"allow_al": True}, "allow_al", "unknown key"),
])
def test_settings_are_checked(tmp_path, section, key, message):
    base = {"client_id": "c", "client_secret": "s", "authorize_url": "https://idp.example/auth", "scope": ["openid"]}
    path = tmp_path / "config.yaml"
    from ruamel.yaml import YAML
    with open(path, "w") as f:
        YAML(typ="safe").dump({"auth": {"type": "generic-oauth", "GenericOAuthenticator": {**base, **section}}}, f)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert e.value.key == f"auth.GenericOAuthenticator.{key}" and message in str(e.value)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_id_tokens_signed_with_the_client_secret_are_verified_with_it(start_hub, provider, alg):
    """OpenID Connect Core allows HMAC-signed ID tokens (the key is the client secret);
    django-oauth-toolkit offers them. OAuthenticator accepts them; so do we."""
    hub = await start_hub(generic(provider))
    provider.id_token_alg = alg
    assert (await sign_in(hub, provider, "alice"))[0] == 302
    assert alg in hub.hub.authenticator.provider._secret_algorithms_seen
    provider.hs_secret = "another-clients-secret"  # forged with the wrong secret
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "could not be verified" in page


async def test_an_algorithm_the_hub_cannot_check_is_named(start_hub, provider, caplog):
    hub = await start_hub(generic(provider))
    provider.id_token_alg = "RS384"  # not in the provider's own list, so never accepted
    status, page, _ = await sign_in(hub, provider, "alice")
    assert status == 502 and "signed its answer with RS384" in page and "Please sign in again" not in page
    assert any("signed with 'RS384'" in r.getMessage() for r in caplog.records)
    assert await users(hub) == []
