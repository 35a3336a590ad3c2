"""LDAP settings: refusals name their key; secrets are masked by `tljh-config show`; a dead
directory (nothing listening) is a clear message, not an exception."""

import socket

import pytest

from tljh_daemon import config as config_mod
from tljh_daemon import configfile
from tljh_daemon.auth import LoginRefused
from tljh_daemon.auth.ldap import LDAPAuthenticator
from tljh_daemon.settings import auth_settings

LDAP = "auth:\n  type: ldapauthenticator.LDAPAuthenticator\n  LDAPAuthenticator:\n"


@pytest.mark.parametrize("settings, key, words", [
    ("    bind_dn_template: uid={username},dc=x\n", "auth.LDAPAuthenticator.server_address", "required"),
    ("    server_address: h\n", "auth.LDAPAuthenticator.bind_dn_template", "lookup_dn"),
    ("    server_address: h\n    bind_dn_template: uid=x,dc=x\n", "auth.LDAPAuthenticator.bind_dn_template",
     "{username}"),
    ("    server_address: h\n    lookup_dn: true\n    user_attribute: uid\n",
     "auth.LDAPAuthenticator.user_search_base", "lookup_dn"),
    ("    server_address: h\n    bind_dn_template: uid={username}\n    tls_strategy: starttls\n",
     "auth.LDAPAuthenticator.tls_strategy", "before_bind"),
    ("    server_address: h\n    bind_dn_template: uid={username}\n    server_port: 0\n",
     "auth.LDAPAuthenticator.server_port", ""),
    ("    server_address: h\n    bind_dn_template: uid={username}\n    valid_username_regex: '('\n",
     "auth.LDAPAuthenticator.valid_username_regex", "regular expression"),
    ("    server_address: h\n    bind_dn_template: uid={username}\n    use_ssl: true\n",
     "auth.LDAPAuthenticator.use_ssl", "unknown key"),
    ("    server_address: h\n    bind_dn_template: uid={username}\n    tls_kwargs: {validate: maybe}\n",
     "auth.LDAPAuthenticator.tls_kwargs.validate", ""),
    # Active Directory's user@domain bind: groups list DNs, so the hub must search for it.
    ("    server_address: h\n    bind_dn_template: '{username}@corp.example'\n    allowed_groups: [cn=g,dc=x]\n",
     "auth.LDAPAuthenticator.user_search_base", "not a DN"),
])
def test_bad_ldap_settings_name_their_key(tmp_path, settings, key, words):
    path = tmp_path / "config.yaml"
    path.write_text(LDAP + settings)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.load(str(path))
    assert e.value.key == key, e.value
    assert words in str(e.value)


def test_valid_ldap_settings_load(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(LDAP + "    server_address: ldap.example.org\n    bind_dn_template:\n"
                           "      - uid={username},ou=people,dc=example,dc=org\n")
    assert config_mod.load(str(path))["auth"]["type"] == "ldap"


@pytest.mark.parametrize("template", ["'{username}@corp.example'", "'CORP\\{username}'"])
def test_active_directory_bind_names_load(tmp_path, template):
    """AD binds with user@domain or DOMAIN\\user; with groups, user_search_base finds the DN."""
    path = tmp_path / "config.yaml"
    path.write_text(LDAP + f"    server_address: ad.example.org\n    bind_dn_template: {template}\n")
    assert config_mod.load(str(path))["auth"]["type"] == "ldap"
    path.write_text(LDAP + f"    server_address: ad.example.org\n    bind_dn_template: {template}\n"
                           "    user_search_base: dc=corp,dc=example\n    allowed_groups: [cn=g,dc=corp,dc=example]\n")
    assert config_mod.load(str(path))["auth"]["type"] == "ldap"


def test_show_masks_secrets_and_keeps_comments():
    text = ("# my hub\nauth:\n  LDAPAuthenticator:\n    lookup_dn_search_password: hunter2  # shh\n"
            "    server_address: ldap.example.org\n  GenericOAuthenticator:\n    client_secret: s3cret\n"
            "traefik_api:\n  password: null\n")
    shown = configfile.masked(text)
    assert "hunter2" not in shown and "s3cret" not in shown
    assert "lookup_dn_search_password: '********'" in shown or "lookup_dn_search_password: ********" in shown
    assert "# my hub" in shown and "ldap.example.org" in shown and "traefik_api:\n  password:" in shown


async def test_nothing_listening_is_a_clear_refusal(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = config_mod.merge(config_mod.DEFAULTS, {"auth": {"type": "ldap", "LDAPAuthenticator": {
        "server_address": "127.0.0.1", "server_port": port, "tls_strategy": "insecure",
        "bind_dn_template": "uid={username},dc=x"}}})
    auth = LDAPAuthenticator(auth_settings(config), db=None)
    with pytest.raises(LoginRefused, match="cannot be reached"):
        await auth.login("alice", "secret-pw")
    lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(lines) == 1 and "secret-pw" not in caplog.text


async def test_names_outside_the_regex_never_reach_the_directory():
    config = config_mod.merge(config_mod.DEFAULTS, {"auth": {"type": "ldap", "LDAPAuthenticator": {
        "server_address": "127.0.0.1", "server_port": 9, "bind_dn_template": "uid={username},dc=x"}}})
    auth = LDAPAuthenticator(auth_settings(config), db=None)
    for name in ("*)(uid=*", "a,b", "1abc"):
        with pytest.raises(LoginRefused, match="Invalid username or password"):
            await auth.login(name, "pw")
