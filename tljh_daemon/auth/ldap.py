"""LDAP and Active Directory (ldapauthenticator.LDAPAuthenticator's keys), on ldap3.

A login binds as the user (DN from `bind_dn_template`, or looked up with
`lookup_dn`), then checks group membership for `allowed_groups` and
`admin_groups`. All LDAP traffic runs in a worker thread with short timeouts,
so a slow or dead directory never blocks the event loop.
"""

import asyncio
import logging
import re
import ssl
from typing import Any

from .. import users
from .base import Authenticator, LoggedIn, LoginRefused

log = logging.getLogger(__name__)

SECTION = "LDAPAuthenticator"
TLS_STRATEGIES = ("before_bind", "on_connect", "insecure")
CONNECT_TIMEOUT = 5
RECEIVE_TIMEOUT = 10
UNREACHABLE = (
    "The directory server (LDAP) that checks passwords cannot be reached right now. "
    "Please try again in a few minutes; if it keeps failing, tell the hub's administrator."
)
MISCONFIGURED = (
    "The hub cannot check passwords with the directory server (LDAP) as it is set up: {reason}. "
    "Trying again will not help; tell the hub's administrator."
)
# Bind results that say how to connect, not that the password is wrong (RFC 4511 4.1.9):
# Active Directory answers strongerAuthRequired (8) to a simple bind without TLS when it
# requires LDAP signing; OpenLDAP's `security simple_bind=` answers confidentialityRequired (13).
NEEDS_TLS = {"strongerAuthRequired": 8, "confidentialityRequired": 13}
NOT_ALLOWED = (
    "Your password is right, but your account is not in a group allowed to use this hub. "
    "Ask the hub's administrator to add you."
)

DEFAULTS: dict[str, Any] = {
    "server_address": "",
    "server_port": None,
    "tls_strategy": "before_bind",
    "tls_kwargs": {},
    "bind_dn_template": [],
    "lookup_dn": False,
    "user_search_base": None,
    "user_attribute": None,
    "lookup_dn_search_filter": "({login_attr}={login})",
    "lookup_dn_search_user": None,
    "lookup_dn_search_password": None,
    "lookup_dn_user_dn_attribute": None,
    "use_lookup_dn_username": False,
    "search_filter": "",
    "allowed_groups": [],
    "admin_groups": [],
    "group_search_filter": "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))",
    "group_attributes": ["member", "uniqueMember", "memberUid"],
    "valid_username_regex": r"^[a-z][.a-z0-9_-]*$",
}

_str_or_null = {"type": ["string", "null"]}
_strings = {"type": "array", "items": {"type": "string", "minLength": 1}}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "server_address": {"type": "string"},
        "server_port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
        "tls_strategy": {"enum": list(TLS_STRATEGIES)},
        "tls_kwargs": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ca_certs_file": {"type": "string"},
                "ca_certs_path": {"type": "string"},
                "validate": {"enum": ["CERT_REQUIRED", "CERT_OPTIONAL", "CERT_NONE"]},
                "local_certificate_file": {"type": "string"},
                "local_private_key_file": {"type": "string"},
                "ciphers": {"type": "string"},
            },
        },
        "bind_dn_template": {"anyOf": [{"type": "string"}, _strings]},
        "lookup_dn": {"type": "boolean"},
        "user_search_base": _str_or_null,
        "user_attribute": _str_or_null,
        "lookup_dn_search_filter": {"type": "string", "minLength": 1},
        "lookup_dn_search_user": _str_or_null,
        "lookup_dn_search_password": _str_or_null,
        "lookup_dn_user_dn_attribute": _str_or_null,
        "use_lookup_dn_username": {"type": "boolean"},
        "search_filter": {"type": "string"},
        "allowed_groups": _strings,
        "admin_groups": _strings,
        "group_search_filter": {"type": "string", "minLength": 1},
        "group_attributes": _strings,
        "valid_username_regex": {"type": "string", "minLength": 1},
    },
}

#: keys whose values `tljh-config show` masks and the daemon never logs
SECRET_KEYS = ("lookup_dn_search_password",)


def check_settings(settings):
    """Cross-key rules a schema cannot express; returns (key, message) or None."""
    if not settings["server_address"]:
        return "server_address", "is required for LDAPAuthenticator"
    if not settings["lookup_dn"] and not settings["bind_dn_template"]:
        return "bind_dn_template", "set bind_dn_template, or lookup_dn with user_search_base and user_attribute"
    if settings["lookup_dn"]:
        for key in ("user_search_base", "user_attribute"):
            if not settings[key]:
                return key, "is required when lookup_dn is true"
    try:
        re.compile(settings["valid_username_regex"])
    except re.error as e:
        return "valid_username_regex", f"is not a valid regular expression: {e}"
    for template in _templates(settings["bind_dn_template"]):
        if "{username}" not in template:
            return "bind_dn_template", "each template must contain {username}"
        if (not settings["lookup_dn"] and not _is_dn(template) and not settings["user_search_base"]
                and (settings["allowed_groups"] or settings["admin_groups"])):
            return "user_search_base", (
                f"is required with groups when bind_dn_template {template!r} is not a DN (Active Directory's "
                "{username}@domain or DOMAIN\\{username}): the hub searches there for the user's DN")
    return None


def _templates(value):
    return [value] if isinstance(value, str) else list(value or [])


def _is_dn(value):
    """Whether `value` is a DN (`uid=x,dc=y`), not another name AD binds with (`x@domain`, `DOMAIN\\x`)."""
    from ldap3.core import exceptions as ldap_errors
    from ldap3.utils.dn import parse_dn

    try:
        return bool(parse_dn(value.replace("{username}", "x")))
    except ldap_errors.LDAPInvalidDnError:
        return False


class DirectoryUnreachable(Exception):
    """The LDAP server could not be reached or broke off the conversation."""


class DirectoryMisconfigured(Exception):
    """The directory refused the connection or bind for a reason of setup, not of the password:
    it requires TLS, or its certificate is not trusted or does not name server_address.
    `reason` is safe to show anyone; the exception's text adds what to change, for the log."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _bind_refusal(error, dn):
    """A DirectoryMisconfigured for a bind refused because TLS is required, else None."""
    description = str(error).rpartition(" - ")[2].strip()
    if description in NEEDS_TLS:
        return DirectoryMisconfigured(
            "the directory requires an encrypted connection (TLS)",
            f"the bind of {dn!r} was refused with {description} (LDAP result {NEEDS_TLS[description]}), which "
            "means TLS is required: set auth.LDAPAuthenticator.tls_strategy to before_bind (StartTLS) or "
            "on_connect (LDAPS)")
    return None


def _certificate_problem(error, address):
    """A DirectoryMisconfigured when `error` is a refused server certificate, else None."""
    from ldap3.core import exceptions as ldap_errors

    text = str(error)
    if isinstance(error, ldap_errors.LDAPCertificateError) or "doesn't match any name" in text:
        detail = f"its certificate does not name {address} (server_address must be a name the certificate holds)"
    elif "CERTIFICATE_VERIFY_FAILED" in text:
        detail = (f"its certificate was not accepted ({text.rpartition('certificate verify failed:')[2].strip(' .)')}"
                  "): trust its CA with auth.LDAPAuthenticator.tls_kwargs.ca_certs_file, or use a name it holds")
    else:
        return None
    return DirectoryMisconfigured("the directory's TLS certificate is not trusted", detail)


class LDAPAuthenticator(Authenticator):
    """Checks passwords against an LDAP directory; admin and allowed status come from its groups."""

    short_name = "ldap"
    class_names = ("ldapauthenticator.LDAPAuthenticator",)
    section = SECTION
    DEFAULTS = DEFAULTS
    SCHEMA = SCHEMA
    SECRET_KEYS = SECRET_KEYS
    check_settings = staticmethod(check_settings)

    def __init__(self, auth_settings, db):
        import ldap3  # here, not at the top: config validation loads every login backend's module

        super().__init__(auth_settings, db)
        s = self.settings
        self.username_pattern = re.compile(s["valid_username_regex"])
        self.user_dn_attribute = s["lookup_dn_user_dn_attribute"] or s["user_attribute"]
        self.port = s["server_port"] or (636 if s["tls_strategy"] == "on_connect" else 389)
        self.tls = None
        if s["tls_strategy"] != "insecure":
            kwargs = dict(s["tls_kwargs"])
            kwargs["validate"] = getattr(ssl, kwargs.get("validate", "CERT_REQUIRED"))
            self.tls = ldap3.Tls(**kwargs)

    def _server(self):
        # A fresh Server per connection: ldap3 remembers a failed address as unavailable and
        # would keep refusing after the directory comes back.
        import ldap3

        s = self.settings
        return ldap3.Server(s["server_address"], port=self.port, use_ssl=s["tls_strategy"] == "on_connect",
                            tls=self.tls, connect_timeout=CONNECT_TIMEOUT, get_info=ldap3.NONE)

    # -- blocking part (runs in a worker thread) --------------------------------------------

    def _connect(self, dn, password):
        """A connection bound as `dn`, or None when the directory refuses the credentials."""
        import ldap3
        from ldap3.core import exceptions as ldap_errors

        auto_bind = (ldap3.AUTO_BIND_TLS_BEFORE_BIND if self.settings["tls_strategy"] == "before_bind"
                     else ldap3.AUTO_BIND_NO_TLS)
        try:
            return ldap3.Connection(self._server(), user=dn, password=password, auto_bind=auto_bind,
                                    receive_timeout=RECEIVE_TIMEOUT, raise_exceptions=False)
        except ldap_errors.LDAPBindError as e:
            refusal = _bind_refusal(e, dn)
            if refusal is not None:
                raise refusal from None
            log.info("LDAP: bind of %r refused: %s", dn, str(e).rpartition(" - ")[2].strip())
            return None
        except (ldap_errors.LDAPCommunicationError, ldap_errors.LDAPStartTLSError, ldap_errors.LDAPCertificateError,
                ldap_errors.LDAPResponseTimeoutError, ssl.SSLError) as e:
            problem = _certificate_problem(e, self.settings["server_address"])
            if problem is not None:
                raise problem from None
            raise DirectoryUnreachable(f"{type(e).__name__}: {e}") from None

    def _lookup(self, login):
        """(DN, directory name) of the one entry whose user_attribute is `login`, else (None, None)."""
        import ldap3
        from ldap3.utils.conv import escape_filter_chars

        s = self.settings
        conn = self._connect(s["lookup_dn_search_user"], s["lookup_dn_search_password"])
        if conn is None:
            log.error("LDAP: the lookup_dn_search_user could not bind; check it and its password")
            return None, None
        try:
            search_filter = s["lookup_dn_search_filter"].format(
                login_attr=s["user_attribute"], login=escape_filter_chars(login))
            conn.search(s["user_search_base"], search_filter, search_scope=ldap3.SUBTREE,
                        attributes=[self.user_dn_attribute])
            if len(conn.entries) != 1:
                if conn.entries:
                    log.error("LDAP: looking up %s found %d entries; expected one", login, len(conn.entries))
                return None, None
            entry = conn.entries[0]
            values = entry.entry_attributes_as_dict.get(self.user_dn_attribute) or []
            return entry.entry_dn, (str(values[0]) if len(values) == 1 else login)
        finally:
            conn.unbind()

    def _own_dn(self, conn, login, bind_name):
        """The DN of a user who bound with a name that is not a DN (AD's `user@domain` or
        `DOMAIN\\user`), found with the user's own connection under user_search_base."""
        import ldap3
        from ldap3.utils.conv import escape_filter_chars

        search_filter = "(|(userPrincipalName={upn})(sAMAccountName={login}))".format(
            upn=escape_filter_chars(bind_name), login=escape_filter_chars(login))
        conn.search(self.settings["user_search_base"], search_filter, search_scope=ldap3.SUBTREE, attributes=[])
        if len(conn.entries) != 1:
            log.warning("LDAP: could not find the DN of %s (bound as %s) under user_search_base: %d entries",
                        login, bind_name, len(conn.entries))
            return None
        return conn.entries[0].entry_dn

    def _authenticate(self, login, password):
        """(directory name, groups the user is in) on success, else None."""
        import ldap3
        from ldap3.utils.conv import escape_filter_chars
        from ldap3.utils.dn import escape_rdn

        s = self.settings
        name, templates, dn = login, _templates(s["bind_dn_template"]), None
        if s["lookup_dn"]:
            dn, name = self._lookup(login)
            if dn is None:
                return None
            templates = templates or [dn]
        conn = userdn = None
        for template in templates:
            userdn = template.replace("{username}", escape_rdn(name)) if "{username}" in template else template
            conn = self._connect(userdn, password)
            if conn is not None:
                break
        if conn is None:
            return None
        try:
            if s["search_filter"]:
                conn.search(s["user_search_base"], s["search_filter"].format(
                    userattr=s["user_attribute"], username=escape_filter_chars(name)), search_scope=ldap3.SUBTREE)
                if len(conn.entries) != 1:
                    log.warning("LDAP: %s does not match search_filter", login)
                    return None
            groups: set[str] = set()
            # Groups list their members by DN: the entry found by lookup_dn, or the bound name
            # when it is a DN; a user who bound as `user@domain` is looked up first.
            member_dn = dn or userdn
            wanted = {*s["allowed_groups"], *s["admin_groups"]}
            if wanted and not _is_dn(member_dn):
                member_dn = self._own_dn(conn, login, userdn)
                if member_dn is None:
                    return name, groups
            group_filter = s["group_search_filter"].format(
                userdn=escape_filter_chars(member_dn or ""), uid=escape_filter_chars(name))
            for group in wanted:
                if conn.search(group, group_filter, search_scope=ldap3.BASE, attributes=s["group_attributes"]):
                    groups.add(group)
            return name, groups
        finally:
            conn.unbind()

    # -- the event-loop side ------------------------------------------------------------------

    async def login(self, name, password, address=""):
        login = (name or "").strip()
        if not self.username_pattern.match(login.lower()):
            log.warning("LDAP login refused: %r does not match valid_username_regex", login[:64])
            raise LoginRefused("Invalid username or password")
        return await super().login(login, password, address)

    def check_allowed(self, name):
        # Allowed lists are checked after the bind, together with the LDAP groups.
        return name not in self.banned

    async def check_password(self, name, password):
        try:
            result = await asyncio.to_thread(self._authenticate, name, password)
        except DirectoryUnreachable as e:
            log.error("LDAP server %s:%s unreachable during the login of %s: %s",
                      self.settings["server_address"], self.port, name, e)
            raise LoginRefused(UNREACHABLE) from None
        except DirectoryMisconfigured as e:
            log.error("LDAP: the login of %s failed at %s:%s because of the hub's setup, not the password: %s",
                      name, self.settings["server_address"], self.port, e)
            raise LoginRefused(MISCONFIGURED.format(reason=e.reason)) from None
        if result is None:
            return False
        ldap_name, groups = result
        if self.settings["use_lookup_dn_username"]:
            try:
                name = users.normalize_name(ldap_name)
            except users.InvalidName:
                log.warning("LDAP login of %s refused: its directory name %r is not a valid user name", name, ldap_name)
                return False
        admin = name in self.admins or bool(groups & set(self.settings["admin_groups"]))
        allowed_names = self.allowed
        restricted = bool(allowed_names or self.settings["allowed_groups"])
        if restricted and not (admin or name in allowed_names or groups & set(self.settings["allowed_groups"])):
            log.warning("LDAP login of %s refused: not in users.allowed nor in allowed_groups", name)
            raise LoginRefused(NOT_ALLOWED)
        # Group membership is re-read at every login: admin rights follow the directory.
        return LoggedIn(name, admin=admin)
