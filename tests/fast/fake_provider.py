"""An in-process OAuth 2.0 / OpenID Connect provider for the fast tier (aiohttp, joserfc).

It speaks the shapes the real providers document: OIDC discovery, JWKS, a token endpoint
that checks client authentication, the code, redirect_uri and the PKCE verifier, a userinfo
endpoint; GitHub's `/user`, `/orgs/{org}/members/{user}` (204/404) and
`/orgs/{org}/teams/{team}/memberships/{user}` (200 {"state": "active"} / 404); Google's v1
userinfo (`email`, `verified_email`, `hd`). Knobs let a test forge, expire or mis-address
the ID token, or make the provider fail.
"""

import base64
import hashlib
import secrets
import time
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

CLIENT_ID = "tljh-hub"
CLIENT_SECRET = "fake-provider-secret"


class FakeProvider:
    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig"}, private=True)
        self.users = {}  # name -> claims
        self.next_user = None  # who "signs in" at the authorize endpoint
        self.orgs = {}  # org -> set of member logins
        self.teams = {}  # (org, team) -> {login: "active" | "pending"}
        self.codes = {}
        self.token_requests = []
        self.authorize_requests = []
        self.id_token_tweaks = {}  # claims to override in the next ID tokens
        self.sign_with = None  # another key: a forged ID token
        self.id_token_alg = "RS256"  # HS256/384/512: signed with a secret (`hs_secret`, else CLIENT_SECRET)
        self.hs_secret = None
        self.discovery = True
        self.advertised_issuer = None  # a discovery document claiming another issuer
        self.server = None

    def add_user(self, name, **claims):
        self.users[name] = {"sub": f"sub-{name}", "preferred_username": name, **claims}

    @property
    def url(self):
        return str(self.server.make_url("")).rstrip("/")

    async def start(self):
        app = web.Application()
        app.router.add_get("/realms/test/.well-known/openid-configuration", self.discovery_document)
        app.router.add_get("/realms/test/protocol/openid-connect/auth", self.authorize)
        app.router.add_post("/realms/test/protocol/openid-connect/token", self.token)
        app.router.add_get("/realms/test/protocol/openid-connect/userinfo", self.userinfo)
        app.router.add_get("/realms/test/protocol/openid-connect/certs", self.jwks)
        app.router.add_get("/api/v3/user", self.github_user)
        app.router.add_get("/api/v3/orgs/{org}/members/{user}", self.github_member)
        app.router.add_get("/api/v3/orgs/{org}/teams/{team}/memberships/{user}", self.github_team)
        app.router.add_get("/oauth2/v1/userinfo", self.google_userinfo)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self):
        await self.server.close()

    # -- endpoints ---------------------------------------------------------------------------

    @property
    def issuer(self):
        return self.url + "/realms/test"

    @property
    def authorize_url(self):
        return self.issuer + "/protocol/openid-connect/auth"

    @property
    def token_url(self):
        return self.issuer + "/protocol/openid-connect/token"

    @property
    def userinfo_url(self):
        return self.issuer + "/protocol/openid-connect/userinfo"

    async def discovery_document(self, request):
        if not self.discovery:
            raise web.HTTPNotFound()
        return web.json_response({
            "issuer": self.advertised_issuer or self.issuer, "authorization_endpoint": self.authorize_url, "token_endpoint": self.token_url,
            "userinfo_endpoint": self.userinfo_url, "jwks_uri": self.issuer + "/protocol/openid-connect/certs",
            "id_token_signing_alg_values_supported": ["RS256", "HS256"], "code_challenge_methods_supported": ["S256"]})

    async def jwks(self, request):
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request):
        """Signs `next_user` in at once and sends the browser back with a code."""
        q = request.query
        self.authorize_requests.append(dict(q))
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"user": self.next_user, "redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"),
                            "challenge": q.get("code_challenge"), "method": q.get("code_challenge_method")}
        raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}))

    def _client_ok(self, request, form):
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        return client_id == CLIENT_ID and secret == CLIENT_SECRET

    async def token(self, request):
        form = await request.post()
        self.token_requests.append({"form": dict(form), "authorization": request.headers.get("Authorization")})
        if not self._client_ok(request, form):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(form.get("code"), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant["method"] != "S256" or challenge != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        user = grant["user"]
        access_token = f"at-{user}-{secrets.token_hex(8)}"
        self.codes[access_token] = {"user": user}
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": self.users[user]["sub"], "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], **self.id_token_tweaks}
        payload = {k: v for k, v in claims.items() if v is not None}
        if self.id_token_alg.startswith("HS"):
            secret = OctKey.import_key((self.hs_secret or CLIENT_SECRET).encode())
            id_token = jwt.encode({"alg": self.id_token_alg}, payload, secret, algorithms=[self.id_token_alg])
        else:
            key = self.sign_with or self.key
            id_token = jwt.encode({"alg": self.id_token_alg, "kid": key.kid}, payload, key,
                                  algorithms=[self.id_token_alg])
        return web.json_response({"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                                  "id_token": id_token})

    def _user_for(self, request):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        grant = self.codes.get(token)
        if grant is None:
            raise web.HTTPUnauthorized()
        return grant["user"]

    async def userinfo(self, request):
        return web.json_response(self.users[self._user_for(request)])

    async def github_user(self, request):
        user = self._user_for(request)
        return web.json_response({"login": user, "id": 1000 + len(user), "email": None, "type": "User"})

    async def github_member(self, request):
        self._user_for(request)
        org, user = request.match_info["org"], request.match_info["user"]
        if user in self.orgs.get(org, set()):
            return web.Response(status=204)
        return web.json_response({"message": "Not Found"}, status=404)

    async def github_team(self, request):
        self._user_for(request)
        key = (request.match_info["org"], request.match_info["team"])
        state = self.teams.get(key, {}).get(request.match_info["user"])
        if state is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"url": str(request.url), "role": "member", "state": state})

    async def google_userinfo(self, request):
        claims = self.users[self._user_for(request)]
        info = {"id": claims["sub"], "email": claims["email"], "verified_email": claims.get("email_verified", True),
                "picture": "https://example.org/p.png"}
        if claims.get("hd"):
            info["hd"] = claims["hd"]  # only Google Workspace accounts have one
        return web.json_response(info)
