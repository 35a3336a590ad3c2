"""JupyterHub-style configuration from TLJH plugins and `jupyterhub_config.d/*.py`.

TLJH plugins' `tljh_custom_jupyterhub_config(c)` hook and the `*.py` files in the config
directory's `jupyterhub_config.d` folder (TLJH's escape hatch) set traitlets on a
`Config` object, as in a `jupyterhub_config.py`. We are not JupyterHub: the settings that
have a meaning here are translated onto our configuration; every other one is named in
a single warning, so nothing is silently ignored. As in TLJH, they override config.yaml.
"""

import copy
import glob
import logging
import os
import re
import runpy
from dataclasses import dataclass, field

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from . import roles as roles_mod
from . import scopes

log = logging.getLogger(__name__)

CONFIG_D = "jupyterhub_config.d"
SPAWNER_CLASSES = {"Spawner", "LocalProcessSpawner", "SystemdSpawner", "UserCreatingSpawner"}
# Authenticator settings apply whichever class the file names (TLJH's own or JupyterHub's).
AUTHENTICATOR_SUFFIX = "Authenticator"
MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?[KMGT]?")  # limits.memory's form (JupyterHub's too)
SERVICE_KEYS = {"name", "command", "environment", "url", "admin", "display", "user", "api_token", "cwd",
                "oauth_client_allowed_scopes", "oauth_roles"}
ROLE_KEYS = {"name", "description", "scopes", "services", "users", "groups"}


@dataclass
class Extra:
    """What the Config asked for, in our terms."""

    config: dict  # the effective configuration with the overrides applied
    spawner: dict = field(default_factory=dict)  # default_url, environment, cmd, args, notebook_dir
    template_paths: list = field(default_factory=list)
    template_vars: dict = field(default_factory=dict)
    load_groups: dict = field(default_factory=dict)  # {group: [user, ...]}
    roles: list = field(default_factory=list)  # JupyterHub.load_roles, applied once all is read
    applied: list = field(default_factory=list)  # what a role became, in config.yaml's terms
    not_applied: list = field(default_factory=list)  # "Class.trait" names
    errors: list = field(default_factory=list)  # failing plugins or files, with the reason

    def warning(self):
        if not self.not_applied:
            return None
        return ("These JupyterHub settings (from plugins or jupyterhub_config.d) have no meaning in "
                "this hub and were not applied: " + ", ".join(self.not_applied))


def gather(plugins, config_dir):
    """The Config that the plugins' hooks, then `jupyterhub_config.d/*.py` (in name order), build."""
    c = Config()
    errors = []
    if plugins is not None:
        _, failures = plugins.call_each("tljh_custom_jupyterhub_config", c=c)
        errors.extend(failures)
    for path in sorted(glob.glob(os.path.join(config_dir, CONFIG_D, "*.py"))):
        try:
            runpy.run_path(path, init_globals={"c": c, "get_config": lambda: c})
        except Exception as e:  # a broken file is skipped, never takes the hub down
            errors.append(f"{path} failed: {type(e).__name__}: {e}")
    return c, errors


def apply(c, config):
    """Translate the Config `c` onto a copy of our `config`."""
    extra = Extra(config=copy.deepcopy(config))
    for section, traits in c.items():
        if not isinstance(traits, Config):
            extra.not_applied.append(section)
            continue
        for trait, value in traits.items():
            name = f"{section}.{trait}"
            if isinstance(value, LazyConfigValue):  # c.X.y.update(...) / .append(...) on an unset trait
                value = _resolve(trait, value)
            if section in SPAWNER_CLASSES:
                handled = _spawner(extra, trait, value)
            elif section.endswith(AUTHENTICATOR_SUFFIX):
                handled = _authenticator(extra, trait, value)
            elif section == "JupyterHub":
                handled = _jupyterhub(extra, trait, value, name)
            else:
                handled = False
            if not handled:
                extra.not_applied.append(name)
    _roles(extra)  # after JupyterHub.services, whatever order the file set them in
    for line in extra.applied:
        log.info("Applied %s", line)
    return extra


CONTAINERS = {"environment": dict, "template_vars": dict, "load_groups": dict, "admin_users": set,
              "allowed_users": set}  # the rest of the traits we apply that hold containers are lists


def _resolve(trait, lazy):
    """The value a lazy container edit (c.X.y.update/append/add on an unset trait) stands for."""
    try:
        return lazy.get_value(CONTAINERS.get(trait, list)())
    except (TypeError, AttributeError, ValueError):
        return lazy


def _spawner(extra, trait, value):
    limits = extra.config["limits"]
    if trait == "mem_limit" and isinstance(value, (int, str)) and MEMORY.fullmatch(str(value).upper()):
        limits["memory"] = str(value).upper()
    elif trait == "cpu_limit" and isinstance(value, (int, float)) and value > 0:
        limits["cpu"] = float(value)
    elif trait == "mem_guarantee" and isinstance(value, (int, str)) and MEMORY.fullmatch(str(value).upper()):
        extra.spawner[trait] = str(value).upper()  # told to the server (MEM_GUARANTEE), as JupyterHub does
    elif trait == "cpu_guarantee" and isinstance(value, (int, float)) and value > 0:
        extra.spawner[trait] = float(value)
    elif trait == "environment" and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        extra.spawner.setdefault("environment", {}).update(value)
    elif trait in ("cmd", "args") and isinstance(value, (list, str)):
        extra.spawner[trait] = [value] if isinstance(value, str) else [str(v) for v in value]
    elif trait in ("default_url", "notebook_dir") and isinstance(value, str):
        extra.spawner[trait] = value
    else:
        return False
    return True


def _authenticator(extra, trait, value):
    keys = {"admin_users": "admin", "allowed_users": "allowed"}
    if trait not in keys or not isinstance(value, (set, list, tuple)):
        return False
    names = extra.config["users"][keys[trait]]
    names.extend(str(n) for n in value if str(n) not in names)
    return True


def _jupyterhub(extra, trait, value, name):
    if trait == "template_paths" and isinstance(value, (list, tuple)):
        extra.template_paths.extend(str(p) for p in value)
    elif trait == "template_vars" and isinstance(value, dict):
        extra.template_vars.update(value)
    elif trait == "load_groups" and isinstance(value, dict):
        for group, members in value.items():
            if isinstance(members, dict):  # JupyterHub 5: {"users": [...], "properties": {...}}
                members = members.get("users", [])
            extra.load_groups[str(group)] = [str(m) for m in members]
    elif trait == "services" and isinstance(value, list):
        for service in value:
            _service(extra, service, name)
    elif trait == "load_roles" and isinstance(value, list):
        extra.roles.extend(value)
    else:
        return False
    return True


def _service(extra, service, name):
    label = f"{name}[{service.get('name', '?')!r}]" if isinstance(service, dict) else name
    if (not isinstance(service, dict) or not service.get("name")
            or not (service.get("command") or service.get("api_token"))):
        extra.not_applied.append(f"{label} (a service needs a name, and a command for the hub to run "
                                 f"or an api_token for a service that runs elsewhere)")
        return
    spec = {k: v for k, v in service.items() if k in SERVICE_KEYS and k != "name"}
    if isinstance(spec.get("command"), str):
        spec["command"] = [spec["command"]]
    spec.setdefault("environment", {})
    for key in sorted(set(service) - SERVICE_KEYS):
        extra.not_applied.append(f"{label}.{key}")
    extra.config["services"][service["name"]] = spec


def _roles(extra):
    """JupyterHub.load_roles, in config.yaml's terms: each role joins config's `roles` (replacing
    one of the same name), so its users, groups and services hold it (roles.py). A service's
    role scopes are also shown as services.<name>.scopes; the admin role's users become
    users.admin and its services admin services."""
    services = extra.config["services"]
    configured = {spec["name"]: spec for _, spec in roles_mod.entries(extra.config["roles"])}
    for role in extra.roles:
        if not isinstance(role, dict) or not isinstance(role.get("name"), str):
            extra.not_applied.append("JupyterHub.load_roles entry (a role needs a name)")
            continue
        label = f"JupyterHub.load_roles[{role['name']!r}]"
        if not roles_mod.NAME.match(role["name"]):
            extra.not_applied.append(f"{label} (not a role name: lowercase letters, digits, - _ ~ .)")
            continue
        role_scopes = [str(s) for s in role.get("scopes") or []]
        unknown = [s for s in role_scopes if not scopes.valid_in_role(s)]
        if unknown:
            extra.not_applied.append(f"{label} (unknown scopes: {', '.join(unknown)})")
            continue
        if role["name"] in ("admin", "token") and role_scopes:
            extra.not_applied.append(f"{label}.scopes (the {role['name']} role's scopes cannot be changed)")
            role_scopes = []
        members = []
        for member in role.get("services") or []:
            spec = services.get(member) if member != "cull" else None
            if not isinstance(spec, dict):
                extra.not_applied.append(f"{label}.services {member!r} (no such service in "
                                         f"JupyterHub.services or config.yaml's services)")
                continue
            members.append(str(member))
            if role["name"] == "admin":
                spec["admin"] = True
                extra.applied.append(f"{label} as services.{member}.admin: true")
                continue
            held = list(spec.get("scopes") or [])
            spec["scopes"] = held + [s for s in role_scopes if s not in held]
            extra.applied.append(f"{label} as services.{member}.scopes: {spec['scopes']}")
        users = [str(u) for u in role.get("users") or []]
        if users and role["name"] == "admin":
            admins = extra.config["users"]["admin"]
            admins.extend(u for u in users if u not in admins)
            extra.applied.append(f"{label} as users.admin: {admins}")
        groups = [str(g) for g in role.get("groups") or []]
        if groups and role["name"] == "admin":
            extra.not_applied.append(f"{label}.groups ({roles_mod.ADMIN_GROUPS})")
            groups = []
        configured[role["name"]] = {"name": role["name"], "description": str(role.get("description") or ""),
                                    "scopes": role_scopes, "users": users, "groups": groups, "services": members}
        if users or groups:
            extra.applied.append(f"{label} as roles: users {users}, groups {groups}")
        for key in sorted(set(role) - ROLE_KEYS):
            extra.not_applied.append(f"{label}.{key}")
    extra.config["roles"] = list(configured.values())


def load(config, config_dir, plugins):
    """The Extra for this hub; logs (once) what failed and what was not applied."""
    c, errors = gather(plugins, config_dir)
    extra = apply(c, config)
    extra.errors = errors
    for error in errors:
        log.error("Skipped: %s", error)
    if extra.warning():
        log.warning("%s", extra.warning())
    return extra
