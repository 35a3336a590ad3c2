"""Authenticators, chosen by `auth.type` among the registered ones (see registry.py)."""

from .base import Authenticator, LoggedIn, LoginRefused, PasswordsManagedElsewhere
from .registry import AUTH_TYPES, REGISTRY, authenticator_class


def make_authenticator(auth_settings, db):
    """The authenticator `auth.type` names, given settings.AuthSettings."""
    return authenticator_class(auth_settings.type)(auth_settings, db)


__all__ = ["AUTH_TYPES", "REGISTRY", "Authenticator", "LoggedIn", "LoginRefused", "PasswordsManagedElsewhere",
           "authenticator_class", "make_authenticator"]
