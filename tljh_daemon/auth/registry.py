"""Which class each `auth.type` value means, and the settings sections they read.

Authenticators register in the `tljh_daemon.authenticators` entry point group (the
built-in ones in setup.cfg, a plugin's in its own package; see backends.py), under
their short name. `auth.type` takes that name or one of the class's JupyterHub class
names (as TLJH does, e.g. `oauthenticator.generic.GenericOAuthenticator`); config.load
turns either into the short name. Each class brings its `auth.<section>` schema,
defaults, cross-key check and secret keys.
"""

from .. import backends

REGISTRY = backends.Registered(backends.AUTHENTICATORS)  # short name -> class
AUTH_TYPES = backends.AuthTypes()  # every accepted auth.type value -> short name


def authenticator_class(auth_type):
    """The class for an `auth.type` value (short or class name); KeyError when unknown."""
    return REGISTRY[AUTH_TYPES[auth_type]]


def sections():
    """{section name: class} for every registered class with settings."""
    return {cls.section: cls for cls in REGISTRY.values() if cls.section}


def section_settings(config, cls):
    """The class's section of config.yaml merged over its defaults."""
    return {**cls.DEFAULTS, **(config["auth"].get(cls.section) or {})}


def secret_keys():
    """`auth.<section>.<key>` paths of every secret setting (masked by `tljh-config show`)."""
    return {f"auth.{cls.section}.{key}" for cls in REGISTRY.values() for key in cls.SECRET_KEYS}
