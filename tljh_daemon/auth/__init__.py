"""Authenticators, chosen by `auth.type`."""

from .base import Authenticator, LoginRefused
from .dummy import DummyAuthenticator
from .firstuse import FirstUseAuthenticator
from .ldap import LDAPAuthenticator
from .pam import PAMAuthenticator

AUTHENTICATORS = {
    "dummy": DummyAuthenticator,
    "firstuse": FirstUseAuthenticator,
    "pam": PAMAuthenticator,
    "ldap": LDAPAuthenticator,
}


def make_authenticator(config, db):
    return AUTHENTICATORS[config["auth"]["type"]](config, db)


__all__ = ["Authenticator", "LoginRefused", "make_authenticator"]
