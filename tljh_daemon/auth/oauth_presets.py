"""GitHub and Google: GenericOAuthenticator with the providers' published endpoints and
user-info shapes, plus the one rule each adds (OAuthenticator's keys).

- GitHub (`allowed_organizations`, entries `org` or `org:team-slug`): membership is asked of
  GitHub's REST API with the user's token: `GET /orgs/{org}/members/{user}` answers 204 for
  a member (404, or 302 when the user cannot see the member list, otherwise), and
  `GET /orgs/{org}/teams/{team_slug}/memberships/{user}` answers 200 with
  `"state": "active"` (or `"pending"` for an invitation not yet accepted).
- Google (`hosted_domain`): the verified email's domain must be one of the listed domains;
  with exactly one domain, `@domain` is dropped from user names (alice@school.edu -> alice).
"""

from urllib.parse import quote

from .oauth import DEFAULTS as GENERIC_DEFAULTS
from .oauth import SCHEMA_PROPERTIES, GenericOAuthenticator, scope_list
from .oauth_provider import fetch

_strings = {"type": "array", "items": {"type": "string", "minLength": 1}}


def _check_client(settings):
    for key in ("client_id", "client_secret"):
        if not settings[key]:
            return key, "is required for OAuth sign-in (from the provider's app registration)"
    return None


class _Preset(GenericOAuthenticator):
    """GenericOAuthenticator for one provider, named as OAuthenticator names it: `defaults` are
    its endpoints and claims, `own` its extra keys (key -> (default, JSON schema))."""

    check_settings = staticmethod(_check_client)

    def __init_subclass__(cls, *, provider, defaults, own, **kwargs):
        super().__init_subclass__(**kwargs)
        module = provider.lower()
        cls.short_name = module
        cls.section = f"{provider}OAuthenticator"
        cls.class_names = (f"oauthenticator.{module}.{cls.section}", f"oauthenticator.{cls.section}")
        cls.DEFAULTS = {**GENERIC_DEFAULTS, "login_service": provider, **defaults,
                        **{key: default for key, (default, _) in own.items()}}
        cls.SCHEMA = {"type": "object", "additionalProperties": False,
                      "properties": {**SCHEMA_PROPERTIES, **{key: schema for key, (_, schema) in own.items()}}}


class GitHubOAuthenticator(_Preset, provider="GitHub", own={"allowed_organizations": ([], _strings)}, defaults={
    "authorize_url": "https://github.com/login/oauth/authorize",
    "token_url": "https://github.com/login/oauth/access_token",
    "userdata_url": "https://api.github.com/user",
    "username_claim": "login",
    "basic_auth": False,
}):

    def __init__(self, auth_settings, db):
        super().__init__(auth_settings, db)
        if self.settings["allowed_organizations"] and "read:org" not in self.scope:
            self.scope.append("read:org")  # private memberships are invisible without it

    @property
    def api_url(self):
        """GitHub's REST API root: api.github.com, or <host>/api/v3 for GitHub Enterprise."""
        userdata_url = self.settings["userdata_url"]
        return userdata_url[: -len("/user")] if userdata_url.endswith("/user") else "https://api.github.com"

    def _preset_allow_rule(self):
        return bool(self.settings["allowed_organizations"])

    async def provider_rules(self, name, claims, api):
        login = quote(str(claims.get("login", name)), safe="")
        for entry in self.settings["allowed_organizations"]:
            org, _, team = entry.partition(":")
            org, team = quote(org, safe=""), quote(team, safe="")
            if team:
                status, body = await fetch(api, "GET", f"{self.api_url}/orgs/{org}/teams/{team}/memberships/{login}")
                if status == 200 and isinstance(body, dict) and body.get("state") == "active":
                    return True, None
            else:
                status, _ = await fetch(api, "GET", f"{self.api_url}/orgs/{org}/members/{login}")
                if status == 204:
                    return True, None
        return False, None

    def not_allowed_reason(self, groups):
        if self.settings["allowed_organizations"]:
            return ("you are not a member of an organization or team this hub admits",
                    "not in allowed_organizations")
        return super().not_allowed_reason(groups)


class GoogleOAuthenticator(_Preset, provider="Google", own={
    "hosted_domain": ([], {"anyOf": [_strings, {"type": "string"}]}),
}, defaults={
    "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
    "token_url": "https://oauth2.googleapis.com/token",
    "userdata_url": "https://www.googleapis.com/oauth2/v1/userinfo",
    "username_claim": "email",
    "scope": ["openid", "email"],
}):

    @property
    def hosted_domains(self):
        return [d.lower().lstrip("@") for d in scope_list(self.settings["hosted_domain"])]

    def _preset_allow_rule(self):
        return bool(self.hosted_domains)

    def username(self, claims):
        name = super().username(claims)
        domains = self.hosted_domains
        if len(domains) == 1 and name.endswith("@" + domains[0]):
            name = name[: -len(domains[0]) - 1]  # one domain: its users need no @domain
        return name

    async def provider_rules(self, name, claims, api):
        email = str(claims.get("email") or "")
        verified = claims.get("verified_email", claims.get("email_verified"))
        if not email or verified is not True:
            return False, "your Google account's email address is not verified"
        if not self.hosted_domains:
            return False, None
        if email.rpartition("@")[2].lower() not in self.hosted_domains:
            return False, f"only accounts of {', '.join(self.hosted_domains)} may sign in"
        return True, None
