"""Authenticators, chosen by `auth.type` (see registry.py)."""

from .base import Authenticator, LoggedIn, LoginRefused, PasswordsManagedElsewhere
from .dummy import DummyAuthenticator
from .firstuse import FirstUseAuthenticator
from .ldap import LDAPAuthenticator
from .native import NativeAuthenticator
from .oauth import GenericOAuthenticator
from .oauth_presets import GitHubOAuthenticator, GoogleOAuthenticator
from .pam import PAMAuthenticator
from .registry import AUTH_TYPES, REGISTRY, authenticator_class, register
from .tmp import TmpAuthenticator

for _cls in (FirstUseAuthenticator, PAMAuthenticator, DummyAuthenticator, LDAPAuthenticator,
             GenericOAuthenticator, GitHubOAuthenticator, GoogleOAuthenticator, NativeAuthenticator,
             TmpAuthenticator):
    register(_cls)


def make_authenticator(auth_settings, db):
    """The authenticator `auth.type` names, given settings.AuthSettings."""
    return authenticator_class(auth_settings.type)(auth_settings, db)


__all__ = ["AUTH_TYPES", "REGISTRY", "Authenticator", "LoggedIn", "LoginRefused", "PasswordsManagedElsewhere",
           "authenticator_class", "make_authenticator", "register"]
