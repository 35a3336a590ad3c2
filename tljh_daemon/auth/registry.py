"""Which class each `auth.type` value means, and the settings sections they read.

`auth.type` takes JupyterHub class names (as TLJH does, e.g.
`oauthenticator.generic.GenericOAuthenticator`) and short names (`generic-oauth`);
config.load turns either into the short name. Each class brings its `auth.<section>`
schema, defaults, cross-key check and secret keys, so adding an authenticator is
one `register` call.
"""

REGISTRY = {}  # short name -> class
AUTH_TYPES = {}  # every accepted auth.type value -> short name


def register(cls):
    """Make `cls` selectable by its short name and its class names."""
    REGISTRY[cls.short_name] = cls
    for name in (cls.short_name, *cls.class_names):
        AUTH_TYPES[name] = cls.short_name
    return cls


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
