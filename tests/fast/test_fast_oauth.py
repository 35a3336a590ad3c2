"""The OAuth2 authorization-code flow single-user servers log browsers in with (PKCE S256)."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

CALLBACK = "/user/alice/oauth_callback"
CLIENT = "jupyterhub-user-alice"


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


async def _server(hub):
    """alice's running server: returns its client secret (the server's API token)."""
    await hub.start_server("alice", hub.token("alice"))
    return hub.spawner.requests[-1].env["JUPYTERHUB_API_TOKEN"]


async def _authorize(browser, **params):
    query = {"client_id": CLIENT, "redirect_uri": CALLBACK, "response_type": "code", "state": "s1", **params}
    async with browser.request("GET", "/hub/api/oauth2/authorize?" + urlencode(query)) as resp:
        return resp.status, resp.headers.get("Location", ""), await resp.text()


def _query(location):
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def _exchange(hub, secret, code, verifier=None, redirect_uri=CALLBACK, client_id=CLIENT, basic=False):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    else:
        form.update(client_id=client_id, client_secret=secret)
    async with hub.request("POST", "/hub/api/oauth2/token", data=form, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_code_flow_with_pkce(hub):
    secret = await _server(hub)
    browser = await hub.browser("alice")
    verifier, challenge = pkce()
    status, location, _ = await _authorize(browser, code_challenge=challenge, code_challenge_method="S256")
    assert status == 302
    assert location.startswith(CALLBACK + "?")
    query = _query(location)
    assert query["state"] == "s1"
    status, body = await _exchange(hub, secret, query["code"], verifier)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert "access:servers!server=alice/" in body["scope"].split()
    async with hub.api("GET", "/user", body["access_token"]) as resp:
        assert resp.status == 200
        me = await resp.json()
    assert me["name"] == "alice"
    assert "access:servers!server=alice/" in me["scopes"]
    assert "admin:users" not in me["scopes"]
    # The code is single-use.
    status, body = await _exchange(hub, secret, query["code"], verifier)
    assert status == 400 and body["error"] == "invalid_grant"


async def test_pkce_verifier_must_match(hub):
    secret = await _server(hub)
    browser = await hub.browser("alice")
    verifier, challenge = pkce()
    for bad in (None, "wrong-verifier-" + "x" * 40):
        _, location, _ = await _authorize(browser, code_challenge=challenge, code_challenge_method="S256")
        status, body = await _exchange(hub, secret, _query(location)["code"], bad)
        assert status == 400 and body["error"] == "invalid_grant", bad


async def test_only_s256_challenges(hub):
    await _server(hub)
    browser = await hub.browser("alice")
    for method in ("plain", None):
        params = {"code_challenge": "abc"} | ({"code_challenge_method": method} if method else {})
        status, location, _ = await _authorize(browser, **params)
        assert status == 302
        query = _query(location)
        assert query["error"] == "invalid_request" and query["state"] == "s1"
        assert "code" not in query


async def test_flow_without_pkce_still_works(hub):
    secret = await _server(hub)
    browser = await hub.browser("alice")
    _, location, _ = await _authorize(browser)
    status, body = await _exchange(hub, secret, _query(location)["code"], basic=True)
    assert status == 200 and body["access_token"]


async def test_redirect_uri_must_match_registration(hub):
    secret = await _server(hub)
    browser = await hub.browser("alice")
    for uri in ("https://evil.example/cb", "/user/alice/other", "/user/bob/oauth_callback", ""):
        status, location, text = await _authorize(browser, redirect_uri=uri)
        assert status == 400, uri
        assert "redirect_uri" in text and not location
    # ... and the token request must repeat the same redirect_uri.
    _, location, _ = await _authorize(browser)
    status, body = await _exchange(hub, secret, _query(location)["code"], redirect_uri="/elsewhere")
    assert status == 400 and body["error"] == "invalid_grant"


async def test_client_must_authenticate_and_own_the_code(hub):
    secret = await _server(hub)
    browser = await hub.browser("alice")
    _, location, _ = await _authorize(browser)
    code = _query(location)["code"]
    status, body = await _exchange(hub, "not-the-secret", code)
    assert status == 401 and body["error"] == "invalid_client"
    status, body = await _exchange(hub, secret, code, client_id="jupyterhub-user-bob")
    assert status == 401
    status, body = await _exchange(hub, secret, "made-up-code")
    assert status == 400 and body["error"] == "invalid_grant"
    async with hub.request("POST", "/hub/api/oauth2/token", data={"grant_type": "password"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "unsupported_grant_type"


async def test_unknown_client_and_response_type(hub):
    await _server(hub)
    browser = await hub.browser("alice")
    status, _, text = await _authorize(browser, client_id="nope")
    assert status == 400 and "Unknown OAuth client" in text
    status, location, _ = await _authorize(browser, response_type="token")
    assert status == 302 and _query(location)["error"] == "unsupported_response_type"


async def test_other_users_are_refused_admins_allowed(hub):
    await _server(hub)
    bob = await hub.browser("bob")
    status, _, text = await _authorize(bob)
    assert status == 403
    assert "permission" in text
    boss = await hub.browser()
    hub.add_user("boss", admin=True)
    assert (await boss.login("boss")).status == 302
    status, location, _ = await _authorize(boss)
    assert status == 302 and "code" in _query(location)


async def test_anonymous_authorize_goes_to_login(hub):
    await _server(hub)
    browser = await hub.browser()
    status, location, _ = await _authorize(browser)
    assert status == 302
    assert location.startswith("/hub/login?")
    assert _query(location)["next"].startswith("/hub/api/oauth2/authorize?client_id=" + CLIENT)


async def test_logout_revokes_oauth_tokens_and_stop_keeps_them(hub):
    secret = await _server(hub)
    browser = await hub.browser("alice")
    _, location, _ = await _authorize(browser)
    _, body = await _exchange(hub, secret, _query(location)["code"])
    access = body["access_token"]
    async with hub.api("DELETE", "/users/alice/server", hub.token("alice")) as resp:
        assert resp.status == 204
    async with hub.api("GET", "/user", access) as resp:
        assert resp.status == 200  # open tabs reconnect after a server restart
    async with browser.request("GET", "/hub/logout"):
        pass
    async with hub.api("GET", "/user", access) as resp:
        assert resp.status == 403


async def test_oauth_client_secret_rotates_with_each_spawn(hub):
    old = await _server(hub)
    async with hub.api("DELETE", "/users/alice/server", hub.token("alice")) as resp:
        assert resp.status == 204
    await hub.start_server("alice", hub.token("alice"))
    browser = await hub.browser("alice")
    _, location, _ = await _authorize(browser)
    status, body = await _exchange(hub, old, _query(location)["code"])
    assert status == 401
