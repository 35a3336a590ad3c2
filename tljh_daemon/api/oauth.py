"""The OAuth2 authorization-code provider that single-user servers log browsers in with."""

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from .. import roles, scopes, tokens, xsrf
from ..forms import read_form
from ..hub import HUB
from ..identity import identify, login_redirect
from ..servers import CLIENT_ID_PREFIX, client_id

routes = web.RouteTableDef()

CODE_LIFETIME = 600
TOKEN_LIFETIME = 14 * 24 * 3600


def oauth_error(error, description, status=400):
    return web.json_response({"error": error, "error_description": description}, status=status)


def granted_scopes(identity, access_scopes):
    """The client's access scopes the user actually holds."""
    granted = []
    for scope in access_scopes:
        base, _, flt = scope.partition("!")
        kind, _, value = flt.partition("=")
        if kind == "server":
            user, _, server = value.partition("/")
            ok = identity.can(base, user=user, server=server)
        elif kind == "user":
            ok = identity.can(base, user=value)
        elif kind == "service":
            ok = identity.can(base, service=value)
        else:
            ok = identity.can(base)
        if ok:
            granted.append(scope)
    return granted


def _needs_consent(db, user, client, granted):
    """(On the database thread.) Does `user` have to confirm before `client` gets `granted`?
    As in JupyterHub: yes for another user's server (one shared with them), unless a token
    they gave that client already holds those scopes; never for their own servers. Services
    are approved without asking, as before."""
    if not client.startswith(CLIENT_ID_PREFIX):
        return False
    own = {client_id(user)} | {client_id(user, r["name"]) for r in db.all("SELECT name FROM servers WHERE user=?", (user,))}
    if client in own:
        return False
    held = set()
    for row in db.all("SELECT scopes FROM api_tokens WHERE user=? AND client_id=? AND (expires_at IS NULL OR"
                      " expires_at > ?)", (user, client, time.time())):
        held |= set(json.loads(row["scopes"]))
    return not set(granted) <= held


@routes.get("/hub/api/oauth2/authorize")
@routes.post("/hub/api/oauth2/authorize")  # the consent page's Authorize button
async def authorize(request):
    hub = request.app[HUB]
    identity = await identify(request)  # the login cookie, or an API token (as JupyterHub accepts)
    if identity is None:
        raise login_redirect(request)
    consented = request.method == "POST"
    if consented:
        await xsrf.checked_form(request)
    if identity.kind != "user":
        raise web.HTTPForbidden(text="Services cannot authorize OAuth clients")
    query = request.query
    client = await hub.db.one("SELECT * FROM oauth_clients WHERE id=?", (query.get("client_id", ""),))
    if client is None:
        raise web.HTTPBadRequest(text="Unknown OAuth client")
    if query.get("redirect_uri") != client["redirect_uri"]:
        raise web.HTTPBadRequest(text="redirect_uri does not match the one registered for this client")
    redirect_uri = client["redirect_uri"]
    state = {"state": query["state"]} if "state" in query else {}
    if query.get("response_type") != "code":
        raise web.HTTPFound(f"{redirect_uri}?" + urlencode({"error": "unsupported_response_type", **state}))
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method", "plain" if challenge else None)
    if challenge and method != "S256":
        raise web.HTTPFound(
            f"{redirect_uri}?" + urlencode({"error": "invalid_request",
                                            "error_description": "only S256 code challenges are supported", **state})
        )
    stored = json.loads(client["access_scopes"])
    access, allowed = (stored["access"], stored["allowed"]) if isinstance(stored, dict) else (stored, [])
    granted = granted_scopes(identity, access)
    if not granted:
        raise web.HTTPForbidden(text=f"You do not have permission to access {client['description']}")
    granted += sorted(s for s in roles.resolve_all(allowed, user=identity.name)
                      if s not in granted and scopes.subset_of([s], identity.scopes))
    # Admins are not asked (they reach every server anyway; JupyterHub asks them too).
    if not consented and not identity.admin and await hub.db.run(_needs_consent, identity.name, client["id"],
                                                                   granted):
        context = {"user": identity, "xsrf": xsrf.token(request), "client": client["description"] or client["id"],
                   "scopes": granted, "action": request.raw_path}
        return aiohttp_jinja2.render_template("oauth_consent.html", request, context)  # XSRF cookie: middleware
    code = secrets.token_urlsafe(32)
    await hub.db.execute(
        "INSERT INTO oauth_codes (hash, client_id, user, redirect_uri, scopes, code_challenge,"
        " code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (tokens.hash_token(code), client["id"], identity.name, redirect_uri, json.dumps(granted),
         challenge, method, time.time() + CODE_LIFETIME),
    )
    raise web.HTTPFound(f"{redirect_uri}?" + urlencode({"code": code, **state}))


def _client_credentials(request, form):
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return client_id, secret
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")


def _pkce_ok(code_row, verifier):
    if not code_row["code_challenge"]:
        return True
    if not verifier:
        return False
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return hmac.compare_digest(computed, code_row["code_challenge"])


def _take_code(db, code_hash):
    """(On the database thread.) The code's row, deleted in the same step: a code is used once."""
    code = db.one("SELECT * FROM oauth_codes WHERE hash=?", (code_hash,))
    if code is not None:
        db.execute("DELETE FROM oauth_codes WHERE hash=?", (code["hash"],))
    return code


@routes.post("/hub/api/oauth2/token")
async def token(request):
    hub = request.app[HUB]
    form = await read_form(request)
    if form.get("grant_type") != "authorization_code":
        return oauth_error("unsupported_grant_type", "only authorization_code is supported")
    client_id, secret = _client_credentials(request, form)
    client = await hub.db.one("SELECT * FROM oauth_clients WHERE id=?", (client_id or "",))
    if client is None or not secret or not hmac.compare_digest(tokens.hash_token(secret), client["secret_hash"]):
        return oauth_error("invalid_client", "client authentication failed", status=401)
    code = await hub.db.run(_take_code, tokens.hash_token(form.get("code", "")))
    if (
        code is None
        or code["client_id"] != client["id"]
        or code["expires_at"] < time.time()
        or form.get("redirect_uri") != code["redirect_uri"]
    ):
        return oauth_error("invalid_grant", "the code is unknown, expired, or not for this client")
    if not _pkce_ok(code, form.get("code_verifier")):
        return oauth_error("invalid_grant", "code_verifier does not match the code challenge")
    granted = json.loads(code["scopes"])
    access_token = await hub.db.run(
        tokens.create, code["user"], "oauth", granted, client_id=client["id"], expires_in=TOKEN_LIFETIME,
        note=f"OAuth access for {client['id']}",
    )
    return web.json_response(
        {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
         "scope": " ".join(granted)},
        headers={"Cache-Control": "no-store"},
    )
