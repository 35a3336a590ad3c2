"""config.yaml: TLJH's keys, merged over defaults and validated by a JSON schema.

An invalid file stops the daemon with a message naming the offending key, so a
typo never silently falls back to a default.
"""

import copy
import json
import os
import re
import ssl
from urllib.parse import urlsplit

import jsonschema
from ruamel.yaml import YAML

from . import backends, config_names, environments, profiles, roles
from . import scopes as scopes_mod
from .files import write_atomically
from .spawner.slurm_settings import DEFAULTS as SLURM_DEFAULTS

DEFAULTS = {
    "base_url": "/",
    "auth": {
        "type": "firstuse",
        "FirstUseAuthenticator": {"min_password_length": 6},
        "DummyAuthenticator": {"password": None},
    },
    "users": {"allowed": [], "banned": [], "admin": [], "extra_user_groups": {}},
    "limits": {"memory": None, "cpu": None, "groups": {}},
    "profiles": [],
    # JupyterHub's allow_named_servers and named_server_limit_per_user (0: no limit)
    "named_servers": {"enabled": False, "limit_per_user": 0},
    "user_environment": {"default_app": "jupyterlab", "path": None},
    "environments": {},
    "http": {"port": 80, "address": ""},
    "https": {
        "enabled": False,
        "port": 443,
        "address": "",
        "tls": {"cert": "", "key": ""},
        "letsencrypt": {
            "email": "",
            "domains": [],
            "staging": False,
            "acme_server": "",
            "acme_ca_file": "",
            "dns_provider": "",
            "dns_env_file": "",
        },
    },
    "hub": {"port": 15001},
    "shared_folders": {},
    "announcement": {"all": "", "login": "", "home": "", "spawn": "", "logout": ""},
    "branding": {"site_name": "", "logo": "", "templates": ""},
    "traefik_api": {"ip": "127.0.0.1", "port": 8099, "username": "api_admin", "password": None},
    "spawner": {
        "type": "local",
        "start_timeout": 120,
        "stop_timeout": 10,
        "concurrent_spawn_limit": 100,
        "concurrent_starts": 0,
        "prewarm": True,
        "slurm": SLURM_DEFAULTS,
    },
    "usage": {"interval": 10, "retention_hours": 24},
    "roles": [],  # JupyterHub's load_roles (a list), or {name: role}; see roles.py
    "kernels": {"prewarm": True},
    "sharing": {"enabled": False},  # sharing.py: users may share their servers (shares!user)
    "collaboration": {"enabled": False},  # jupyter-collaboration in the user environment, on in servers
    "services": {
        "cull": {
            "enabled": True,
            "timeout": 600,
            "every": 60,
            "concurrency": 5,
            "max_age": 0,
            "users": False,
            "remove_named_servers": False,
            "exempt_admins": False,
        }
    },
}

_port = {"type": "integer", "minimum": 1, "maximum": 65535}
_names = {"type": "array", "items": {"type": "string", "minLength": 1}}
_role_fields = {
    "description": {"type": "string"},
    "scopes": _names,
    "users": _names,
    "groups": _names,
    "services": _names,
}
_obj = lambda props, extra=False: {  # noqa: E731
    "type": "object",
    "properties": props,
    "additionalProperties": extra,
}


def schema():
    """config.yaml's JSON schema, with the registered backends' types and sections."""
    spawners = backends.registered(backends.SPAWNERS)
    authenticators = backends.registered(backends.AUTHENTICATORS)
    return _schema(
        auth_types=sorted(backends.authenticator_types()),
        auth_sections={cls.section: cls.SCHEMA for cls in authenticators.values() if cls.section},
        spawner_types=sorted(spawners),
        spawner_sections={cls.section: cls.SCHEMA for cls in spawners.values() if getattr(cls, "section", None)},
    )


def _schema(auth_types, auth_sections, spawner_types, spawner_sections):
    return _obj(
        {
            "base_url": {"type": "string"},  # its shape: check_base_url
            "auth": _obj(
                {
                    "type": {"enum": auth_types},
                    **auth_sections,
                },
                extra=True,  # sections of authenticators we do not implement are kept, unused
            ),
            "users": _obj(
                {
                    "allowed": _names,
                    "banned": _names,
                    "admin": _names,
                    "extra_user_groups": {
                        "type": "object",
                        "additionalProperties": _names,
                    },
                }
            ),
            "limits": _obj(
                {
                    "memory": {
                        "type": ["string", "null"],
                        "pattern": r"^[0-9]+(\.[0-9]+)?[KMGT]?$",
                    },
                    "cpu": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    # {hub group: {memory, cpu}}: override limits.* for members (profiles.py)
                    "groups": {"type": "object", "additionalProperties": profiles.LIMITS_SCHEMA},
                }
            ),
            # KubeSpawner's profile_list: the sizes of server users choose from (profiles.py)
            "profiles": profiles.SCHEMA,
            "user_environment": _obj(
                {
                    "default_app": {"enum": ["jupyterlab", "classic", "notebook"]},
                    "path": {"type": ["string", "null"]},
                }
            ),
            # {name: {packages | requirements, python, display_name} | {path}} (environments.py)
            "environments": {
                "type": "object",
                "propertyNames": {"pattern": environments.NAME.pattern, "not": {"enum": list(environments.RESERVED)}},
                "additionalProperties": _obj(
                    {
                        "packages": _names,
                        "requirements": {"type": "string", "pattern": "^/"},
                        # a number too: `tljh-config set environments.ml.python 3.12` reads a float
                        "python": {"type": ["string", "number"], "pattern": r"^3(\.[0-9]+){0,2}$"},
                        "display_name": {"type": "string", "minLength": 1},
                        "path": {"type": "string", "pattern": "^/"},
                    }
                ),
            },
            "http": _obj({"port": _port, "address": {"type": "string"}}),
            "https": _obj(
                {
                    "enabled": {"type": "boolean"},
                    "port": _port,
                    "address": {"type": "string"},
                    "tls": _obj({"cert": {"type": "string"}, "key": {"type": "string"}}),
                    "letsencrypt": _obj(
                        {
                            "email": {"type": "string"},
                            "domains": {"type": "array", "items": {"type": "string", "minLength": 1}},
                            "staging": {"type": "boolean"},
                            "acme_server": {"type": "string", "pattern": "^(https://.*)?$"},
                            "acme_ca_file": {"type": "string"},
                            "dns_provider": {"type": "string", "pattern": "^[a-z0-9.-]*$"},
                            "dns_env_file": {"type": "string"},
                        }
                    ),
                }
            ),
            "hub": _obj({"port": _port}),
            # {folder name: {group: readers, writers: group, path: dir}} (see shared_folders.py)
            "shared_folders": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
                "additionalProperties": _obj(
                    {
                        "group": {"type": "string", "pattern": "^[a-z_][a-z0-9_-]*$"},
                        "writers": {"type": "string", "pattern": "^[a-z_][a-z0-9_-]*$"},
                        "path": {"type": "string", "pattern": "^/"},
                    }
                ),
            },
            # HTML shown at the top of those pages (JupyterHub's announcement template variables).
            "announcement": _obj({page: {"type": "string"} for page in ("all", "login", "home", "spawn", "logout")}),
            "branding": _obj(
                {
                    "site_name": {"type": "string"},
                    "logo": {"type": "string"},  # an image file served at /hub/logo
                    "templates": {"type": "string"},  # a folder whose templates override ours
                }
            ),
            "traefik_api": _obj(
                {
                    "ip": {"type": "string"},
                    "port": _port,
                    "username": {"type": "string", "minLength": 1},
                    "password": {"type": ["string", "null"]},
                }
            ),
            "spawner": _obj(
                {
                    "start_timeout": {"type": "number", "exclusiveMinimum": 0},
                    "stop_timeout": {"type": "number", "exclusiveMinimum": 0},
                    "concurrent_spawn_limit": {"type": "integer", "minimum": 0},
                    "concurrent_starts": {"type": "integer", "minimum": 0},
                    "prewarm": {"type": "boolean"},
                    "type": {"enum": spawner_types},
                    **spawner_sections,
                }
            ),
            # roles.py: a list in JupyterHub's load_roles shape, or a mapping {role name: role}
            "roles": {
                "type": ["array", "object"],
                "items": {**_obj({"name": {"type": "string"}, **_role_fields}), "required": ["name"]},
                "additionalProperties": {"type": ["object", "null"], "properties": _role_fields,
                                         "additionalProperties": False},
            },
            "named_servers": _obj(
                {"enabled": {"type": "boolean"}, "limit_per_user": {"type": "integer", "minimum": 0}}
            ),
            # kernels of the user environment forked from a per-server zygote (tljh_kernel_prewarm)
            "kernels": _obj({"prewarm": {"type": "boolean"}}),
            "sharing": _obj({"enabled": {"type": "boolean"}}),
            "collaboration": _obj({"enabled": {"type": "boolean"}}),
            # usage_sampler.py: seconds between samples, hours of history kept
            "usage": _obj(
                {
                    "interval": {"type": "number", "minimum": 1, "maximum": 600},
                    "retention_hours": {"type": "number", "minimum": 1, "maximum": 24 * 31},
                }
            ),
            "services": {
                "type": "object",
                "properties": {
                    "cull": _obj(
                        {
                            "enabled": {"type": "boolean"},
                            "timeout": {"type": "number", "exclusiveMinimum": 0},
                            "every": {"type": "number", "exclusiveMinimum": 0},
                            "concurrency": {"type": "integer", "minimum": 1},
                            "max_age": {"type": "number", "minimum": 0},
                            "users": {"type": "boolean"},
                            "remove_named_servers": {"type": "boolean"},
                            "exempt_admins": {"type": "boolean"},
                        }
                    )
                },
                # Any other key is a managed service, named by its key.
                "additionalProperties": _obj(
                    {
                        "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        # A service that runs elsewhere (no command) authenticates with this token.
                        "api_token": {"type": "string", "minLength": 8},
                        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
                        "url": {"type": "string", "pattern": "^http://127\\.0\\.0\\.1:[0-9]+/?$"},
                        "admin": {"type": "boolean"},
                        "scopes": {"type": "array", "items": {"type": "string"}},
                        "user": {"type": "string"},
                        "display": {"type": "boolean"},
                        "cwd": {"type": "string", "pattern": "^/"},
                        "oauth_client_allowed_scopes": _names,
                        "oauth_roles": _names,
                    }
                ),
            },
        }
    )


class ConfigError(Exception):
    """A configuration problem, with the dotted key it is about."""

    def __init__(self, key, message):
        self.key = key
        super().__init__(f"config key {key!r}: {message}" if key else message)


def merge(base, override):
    """Deep-merge `override` into a copy of `base` (dicts merge, anything else replaces)."""
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


PLUGIN_KEYS_FILE = "plugin-keys.json"


def plugin_keys(config_dir):
    """{dotted key: plugin name} of the keys plugins own (recorded by the installer when a
    plugin's tljh_config_post_install added them); the schema does not check them."""
    try:
        with open(os.path.join(config_dir, PLUGIN_KEYS_FILE)) as f:
            owned = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(None, f"{os.path.join(config_dir, PLUGIN_KEYS_FILE)} is unreadable: {e}") from None
    return owned if isinstance(owned, dict) else {}


def save_plugin_keys(config_dir, owned):
    write_atomically(os.path.join(config_dir, PLUGIN_KEYS_FILE), json.dumps(owned, indent=2, sort_keys=True) + "\n")


def without_keys(config, keys):
    """A copy of `config` without the dotted `keys` (missing ones are ignored)."""
    config = copy.deepcopy(config)
    for key in keys:
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return config


def unknown_keys(config):
    """Every dotted key the schema does not know (plugins' keys, typos)."""
    found = []
    for error in _Validator(schema()).iter_errors(config):
        if error.validator == "additionalProperties":
            base = list(map(str, error.absolute_path))
            for extra in sorted(set(error.instance) - set(error.schema.get("properties", {}))):
                found.append(".".join([*base, str(extra)]))
    return found


def validate(config, owned=(), names=True):
    """Raise ConfigError for the most relevant schema violation in `config`, leaving out the
    plugin-owned keys `owned`; with `names`, also for a user or group name the REST API refuses.

    This checks each value on its own, so `tljh-config set` can take TLJH's documented
    sequences one key at a time; `check` (run at start and at reload) ties keys together.
    """
    if owned:
        config = without_keys(config, owned)
    errors = list(_Validator(schema()).iter_errors(config))
    if not errors:
        check_base_url(config)
        check_ports(config)
        check_cull(config)
        check_environments(config)
        check_roles(config)
        check_service_scopes(config)
        check_profiles(config)
        if names:
            for key, _, reason in config_names.problems(config)[:1]:
                raise ConfigError(key, reason)
        return
    error = jsonschema.exceptions.best_match(errors)
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path.append(extra[0])
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        raise ConfigError(".".join(map(str, path)), f"unknown key (known here: {allowed})")
    if "propertyNames" in error.schema_path:  # a bad name: the key is the name itself
        raise ConfigError(".".join(map(str, [*path, error.instance])), _bad_name(path, error))
    hint = ENVIRONMENT_HINTS.get(path[2]) if len(path) == 3 and path[0] == "environments" else None
    if hint and error.validator == "pattern":
        raise ConfigError(".".join(map(str, path)), f"{error.instance!r}: {hint}")
    if error.validator == "enum" and path in (["auth", "type"], ["spawner", "type"]):
        kind = "authenticators" if path[0] == "auth" else "spawners"
        raise ConfigError(".".join(path), f"{error.instance!r} is not one of the registered {kind}: "
                          f"{', '.join(error.validator_value)} (a plugin package can register more)")
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        raise ConfigError(
            ".".join(map(str, path)), f"{error.instance!r} is not one of: {allowed}"
        )
    raise ConfigError(".".join(map(str, path)), error.message)


ENVIRONMENT_HINTS = {
    "requirements": "give the absolute path of a requirements file, e.g. /srv/course/requirements.txt",
    "path": "give the absolute path of an existing environment, e.g. /opt/conda/envs/ml",
    "python": "give a Python 3 version, e.g. '3.12'",
}


def _bad_name(path, error):
    if path == ["environments"]:
        if error.validator == "not":
            return f"{error.instance!r} is reserved (the user environment's own kernel)"
        return ("an environment's name is its kernel's and directory's name: lowercase letters, "
                "digits, _ and - (starting with a letter or digit)")
    return f"{error.instance!r} is not a valid name here ({error.message})"


def _strict_integer(checker, instance):
    """Only a real int is an integer: jsonschema also takes 19150.0, which Traefik cannot."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)

BASE_URL = re.compile(r"^/([A-Za-z0-9._~-]+/)*$")


def check_base_url(config):
    """base_url is '/' or a sub-path such as '/jupyter/': it starts and ends with '/', and its
    segments are plain URL characters (it goes into Traefik rules, cookie paths and redirects)."""
    value = config["base_url"]
    if BASE_URL.match(value):
        return
    if not value.startswith("/") or not value.endswith("/"):
        hint = "/" + value.strip("/") + "/" if value.strip("/") else "/"
        raise ConfigError("base_url", f"{value!r} must start and end with '/', e.g. {hint!r}")
    raise ConfigError("base_url", f"{value!r}: use only letters, digits and . _ ~ - between the slashes "
                                  "(e.g. '/jupyter/')")


def check_roles(config):
    """Role names and scopes are JupyterHub's (checked at `set` too: a typo in a scope would
    otherwise grant nothing, silently)."""
    for key, reason in roles.problems(config["roles"])[:1]:
        raise ConfigError(key, reason)


def check_service_scopes(config):
    """A service's OAuth scopes are JupyterHub's; its oauth_roles are roles. (Its `scopes` are
    not checked here: a hub upgraded with an old scope name there keeps starting.)"""
    known = {role.name for role in roles.DEFAULTS} | {spec.get("name") for _, spec in roles.entries(config["roles"])}
    for name, spec in config["services"].items():
        if name == "cull":
            continue
        bad = [s for s in spec.get("oauth_client_allowed_scopes") or [] if not scopes_mod.valid_in_role(s)]
        if bad:
            raise ConfigError(f"services.{name}.oauth_client_allowed_scopes", f"unknown scopes: {', '.join(bad)}")
        missing = [r for r in spec.get("oauth_roles") or [] if r not in known]
        if missing:
            raise ConfigError(f"services.{name}.oauth_roles", f"no such role: {', '.join(missing)} "
                                                              f"(define it under roles)")


def check_cull(config):
    """services.cull.remove_named_servers needs named servers (true would silently do nothing)."""
    if config["services"]["cull"]["remove_named_servers"] and not config["named_servers"]["enabled"]:
        raise ConfigError("services.cull.remove_named_servers",
                          "there are no named servers to remove: set named_servers.enabled to true first, "
                          "or this to false")


def check_environments(config):
    """An environment's Python version given as a number (tljh-config reads 3.12 as one) must
    read back as a version: 3.1 is what YAML and tljh-config make of 3.10."""
    for name, spec in config["environments"].items():
        try:
            environments.python_version(spec)
        except ValueError as e:
            raise ConfigError(f"environments.{name}.python", str(e)) from None


def check_profiles(config):
    """Profile slugs differ and at most one profile is the default."""
    found = profiles.problem(config["profiles"], config["environments"])
    if found:
        raise ConfigError(*found)


PORT_KEYS = ("http.port", "https.port", "hub.port", "traefik_api.port")


def check_ports(config):
    """The hub's listening ports are distinct (HTTPS's only counts when it is enabled).

    Checked at `set` too: two services on one port take the hub down at the next start."""
    seen = {}
    for key in PORT_KEYS:
        section, _, name = key.partition(".")
        if section == "https" and not config["https"]["enabled"]:
            continue
        port = config[section][name]
        if port in seen:
            raise ConfigError(key, f"{port} is already {seen[port]}: these ports must differ "
                                   f"({', '.join(PORT_KEYS)})")
        seen[port] = key


def check(config):
    """Checks that tie keys together; run before the hub starts or reloads, never at `set`."""
    check_https(config)
    check_auth(config)
    check_branding(config)
    check_services(config)


def check_services(config):
    for name, spec in config["services"].items():
        if name != "cull" and not (spec.get("command") or spec.get("api_token")):
            raise ConfigError(f"services.{name}", "a service needs a command (the hub runs it) or an "
                                                  "api_token (it runs elsewhere and uses that token)")


def check_branding(config):
    branding = config["branding"]
    if branding["logo"] and not os.path.isfile(branding["logo"]):
        raise ConfigError("branding.logo", f"the file {branding['logo']} does not exist")
    if branding["templates"] and not os.path.isdir(branding["templates"]):
        raise ConfigError("branding.templates", f"the folder {branding['templates']} does not exist")


def check_auth(config):
    """The chosen authenticator's cross-key rules (e.g. LDAP needs a server and a way to form DNs)."""
    cls = backends.registered(backends.AUTHENTICATORS)[backends.authenticator_types()[config["auth"]["type"]]]
    problem = cls.check_settings(section_settings(config, cls))
    if problem:
        raise ConfigError(f"auth.{cls.section}.{problem[0]}", problem[1])
    check_callback_url(config, cls)


def section_settings(config, cls):
    """An authenticator's section of config.yaml merged over its defaults."""
    return {**cls.DEFAULTS, **(config["auth"].get(cls.section) or {})}


def check_callback_url(config, cls):
    """An OAuth callback URL set by hand is a page of this hub, so it lies under base_url."""
    callback = (section_settings(config, cls) or {}).get("oauth_callback_url") if cls.section else None
    if callback and not callback_fits(callback, config["base_url"]):
        raise ConfigError(f"auth.{cls.section}.oauth_callback_url", callback_advice(callback, config["base_url"]))


def callback_fits(callback, base_url):
    return urlsplit(callback).path.startswith(base_url + "hub/")


def callback_under(callback, base_url):
    """`callback` (a URL) moved to the hub's callback page under `base_url`, same origin."""
    parts = urlsplit(callback)
    return parts._replace(path=base_url + "hub/oauth_callback").geturl()


def callback_advice(callback, base_url):
    return (f"{callback} is not under base_url {base_url} (the hub's pages are under {base_url}hub/): "
            f"set it to {callback_under(callback, base_url)} (and register that URL with the "
            f"provider), or set base_url back")


def callbacks_moved_with_base_url(data, old_base, new_base):
    """When base_url changes from `old_base` to `new_base`, the OAuth callback URLs under
    auth.<section>.oauth_callback_url that are the hub's page under the old one move with it
    (changed in the mapping `data` in place). Returns [(key, old url, new url)]."""
    moved = []
    for section, settings in (data.get("auth") or {}).items():
        callback = settings.get("oauth_callback_url") if isinstance(settings, dict) else None
        if (isinstance(callback, str) and callback
                and urlsplit(callback).path == old_base + "hub/oauth_callback" and old_base != new_base):
            settings["oauth_callback_url"] = callback_under(callback, new_base)
            moved.append((f"auth.{section}.oauth_callback_url", callback, settings["oauth_callback_url"]))
    return moved


def check_https(config):
    """A usable certificate source; the message says which key is missing."""
    https = config["https"]
    tls, le = https["tls"], https["letsencrypt"]
    if bool(tls["cert"]) != bool(tls["key"]):
        have, missing = ("cert", "key") if tls["cert"] else ("key", "cert")
        raise ConfigError(
            f"https.tls.{missing}",
            f"missing: https.tls.{have} is set, so set https.tls.{missing} too "
            f"(tljh-config set https.tls.{missing} <file>), or unset https.tls.{have}",
        )
    if tls["cert"]:
        for key in ("cert", "key"):
            if not os.path.isfile(tls[key]):
                raise ConfigError(f"https.tls.{key}", f"the file {tls[key]} does not exist")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(tls["cert"], tls["key"])
        except (ssl.SSLError, OSError) as e:
            raise ConfigError("https.tls", f"the certificate and key do not load together: {e}") from None
    if le["email"] and not le["domains"]:
        raise ConfigError(
            "https.letsencrypt.domains",
            "missing: https.letsencrypt.email is set, so add a domain "
            "(tljh-config add-item https.letsencrypt.domains <domain>)",
        )
    if le["domains"] and not le["email"]:
        raise ConfigError(
            "https.letsencrypt.email",
            "missing: https.letsencrypt.domains is set, so set an email "
            "(tljh-config set https.letsencrypt.email <address>)",
        )
    if le["acme_ca_file"] and not os.path.isfile(le["acme_ca_file"]):
        raise ConfigError("https.letsencrypt.acme_ca_file", f"the file {le['acme_ca_file']} does not exist")
    if le["dns_provider"] and not le["email"]:
        raise ConfigError("https.letsencrypt.dns_provider", "needs https.letsencrypt.email and .domains")
    if https["enabled"]:
        if not tls["cert"] and not le["email"]:
            raise ConfigError(
                "https.enabled",
                "missing: HTTPS needs a certificate: set https.tls.cert and https.tls.key, "
                "or https.letsencrypt.email and https.letsencrypt.domains",
            )


def read_text(path):
    """The text of config file `path` (None when it is missing); an unreadable or non-UTF-8
    file is a ConfigError saying so, never a traceback."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(None, f"{path} cannot be read: {e.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(None, f"{path} is not UTF-8 text (line {line}, byte {e.start}): "
                                f"fix or re-save it as UTF-8") from None


def load_yaml(path):
    """The raw mapping in `path` ({} when the file is missing or empty)."""
    text = read_text(path)
    if text is None:
        return {}
    try:
        data = YAML(typ="safe").load(text)
    except Exception as e:
        raise ConfigError(None, f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(None, f"{path} must hold a mapping of keys")
    return data


def load(path, bad_names=None):
    """The effective configuration: `path` merged over DEFAULTS, validated and cross-checked.

    A bad user or group name raises ConfigError, unless `bad_names` is a list: then the names
    are dropped and their problems appended to it (the daemon's start: it logs them)."""
    config = merge(DEFAULTS, load_yaml(path))
    if bad_names is not None:
        bad_names.extend(config_names.drop_bad_names(config))
    validate(config, plugin_keys(os.path.dirname(path)))
    check(config)
    config["auth"]["type"] = backends.authenticator_types()[config["auth"]["type"]]
    return config
