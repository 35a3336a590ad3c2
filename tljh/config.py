"""TLJH's `tljh.config` for plugins: where the install lives, and reading and changing
config.yaml as `tljh-config` does.

The paths follow $TLJH_INSTALL_PREFIX, which the hub and the installer set to their prefix
before loading plugins. Changes are always validated (keys a plugin owns are accepted, see
docs/plugins.md) and written atomically under config.yaml's lock; a refused change raises
ValueError naming the key and leaves the file as it was. Inside `tljh_config_post_install`,
change the `config` mapping you are given instead: the installer holds the lock then.
"""

import copy
import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import contextmanager

from tljh_daemon import config as _config
from tljh_daemon import config_cli as _config_cli
from tljh_daemon import configfile as _configfile

INSTALL_PREFIX = os.environ.get("TLJH_INSTALL_PREFIX", "/opt/tljh")
HUB_ENV_PREFIX = os.path.join(INSTALL_PREFIX, "hub")
USER_ENV_PREFIX = os.path.join(INSTALL_PREFIX, "user")
STATE_DIR = os.path.join(INSTALL_PREFIX, "state")
CONFIG_DIR = os.path.join(INSTALL_PREFIX, "config")
CONFIG_FILE = os.path.join(CONFIG_DIR, "config.yaml")

LOCK_TIMEOUT = 10  # seconds to wait for another writer before giving up


# -- pure helpers: each returns a changed copy ------------------------------------------------

def _parts(property_path):
    parts = property_path.split(".")
    if not all(parts):
        raise ValueError(f"{property_path!r} is not a valid key")
    return parts


def set_item_in_config(config, property_path, value):
    """A copy of `config` with the dotted key set to `value`; missing (or non-mapping) parents
    become mappings."""
    result = copy.deepcopy(dict(config))
    *parents, last = _parts(property_path)
    node = result
    for part in parents:
        if not isinstance(node.get(part), Mapping):
            node[part] = {}
        node = node[part]
    node[last] = value
    return result


def _parent(config, property_path):
    *parents, last = _parts(property_path)
    node = config
    for part in parents:
        node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            raise ValueError(f"{property_path} is not set")
    return node, last


def unset_item_from_config(config, property_path):
    """A copy of `config` without the dotted key; parents left empty go too. ValueError if unset."""
    result = copy.deepcopy(dict(config))
    node, last = _parent(result, property_path)
    if last not in node:
        raise ValueError(f"{property_path} is not set")
    del node[last]
    parts = _parts(property_path)
    for depth in range(len(parts) - 1, 0, -1):
        holder, key = _parent(result, ".".join(parts[:depth]))
        if holder.get(key) == {}:
            del holder[key]
    return result


def add_item_to_config(config, property_path, value):
    """A copy of `config` with `value` appended to the list at the dotted key (made if missing)."""
    result = copy.deepcopy(dict(config))
    try:
        node, last = _parent(result, property_path)
    except ValueError:
        result = set_item_in_config(result, property_path, [])
        node, last = _parent(result, property_path)
    items = node.setdefault(last, [])
    if not isinstance(items, list):
        raise ValueError(f"{property_path} is not a list")
    items.append(value)
    return result


def remove_item_from_config(config, property_path, value):
    """A copy of `config` with `value` removed from the list at the dotted key."""
    result = copy.deepcopy(dict(config))
    node, last = _parent(result, property_path)
    items = node.get(last)
    if not isinstance(items, list) or value not in items:
        raise ValueError(f"{value!r} is not in {property_path}")
    items.remove(value)
    return result


def parse_value(value_str):
    """tljh-config's parsing of a command-line value: true/false, none, numbers, else a string."""
    return _config_cli.parse_value(value_str)


def validate_config(config, validate=True):
    """Raise ValueError if `config` (a config.yaml mapping) is not valid. Always checked here:
    the hub does not start with an invalid config.yaml, so `validate=False` does not skip it."""
    try:
        _config.validate(_config.merge(_config.DEFAULTS, config), _config.plugin_keys(_config_dir()))
    except _config.ConfigError as e:
        raise ValueError(f"config.yaml: {e}") from None


# -- reading and changing config.yaml ---------------------------------------------------------

def _config_dir(config_path=None):
    return os.path.dirname(os.path.abspath(config_path or CONFIG_FILE))


@contextmanager
def config_file_lock(config_path, timeout=1):
    """Hold config.yaml's lock (the one tljh-config and the installer take) for `timeout` s at most."""
    try:
        with _configfile.locked(config_path, timeout):
            yield
    except _configfile.Locked:
        raise TimeoutError(f"another writer holds the lock {config_path}.lock") from None


def get_current_config(config_path):
    """config.yaml's contents as plain dicts and lists ({} when there is no file)."""
    if not os.path.exists(config_path):
        return {}
    try:
        return _config.load_yaml(config_path)
    except _config.ConfigError as e:
        raise ValueError(str(e)) from None


def show_config(config_path):
    """Print config.yaml, secrets masked (as `tljh-config show`)."""
    if os.path.exists(config_path):
        with open(config_path) as f:
            sys.stdout.write(_configfile.masked(f.read()))


def _edit(config_path, change):
    try:
        with _configfile.editing(config_path, lock_timeout=LOCK_TIMEOUT) as data:
            change(data)
    except _configfile.Locked as e:
        raise RuntimeError(f"{e}. In tljh_config_post_install, change the config mapping the hook "
                           f"is given instead.") from None
    except _config.ConfigError as e:
        raise ValueError(f"{e}. {config_path} was not changed.") from None


def _apply_copy(data, changed):
    for key in list(data):
        if key not in changed:
            del data[key]
    for key, value in changed.items():
        if data.get(key) != value:
            data[key] = value


def set_config_value(config_path, key_path, value, validate=True):
    """Set the dotted key in config.yaml to `value` (validated; see validate_config)."""
    _edit(config_path, lambda data: _apply_copy(data, set_item_in_config(data, key_path, value)))


def unset_config_value(config_path, key_path, validate=True):
    _edit(config_path, lambda data: _apply_copy(data, unset_item_from_config(data, key_path)))


def add_config_value(config_path, key_path, value, validate=True):
    _edit(config_path, lambda data: _apply_copy(data, add_item_to_config(data, key_path, value)))


def remove_config_value(config_path, key_path, value, validate=True):
    _edit(config_path, lambda data: _apply_copy(data, remove_item_from_config(data, key_path, value)))


# -- the running hub --------------------------------------------------------------------------

def _tljh_config():
    installed = os.path.join(HUB_ENV_PREFIX, "bin", "tljh-config")
    if os.path.exists(installed):
        return installed
    return os.path.join(os.path.dirname(sys.executable), "tljh-config")


def check_hub_ready():
    """True when the hub answers /hub/api through the proxy."""
    from tljh_daemon import service
    from tljh_daemon.paths import Paths

    import urllib.request

    try:
        with urllib.request.urlopen(service.hub_url(Paths(INSTALL_PREFIX)) + "/hub/api", timeout=5) as r:
            return r.status == 200
    except Exception as e:
        print(f"Hub not ready: {e}")
        return False


def reload_component(component):
    """Apply config.yaml: `tljh-config reload hub` or `... reload proxy`."""
    if component not in ("hub", "proxy"):
        raise ValueError(f"component must be 'hub' or 'proxy', not {component!r}")
    subprocess.run([_tljh_config(), "--prefix", INSTALL_PREFIX, "reload", component], check=True)


def main(argv=None):
    """`tljh-config` itself."""
    return _config_cli.main(args=argv, prog_name="tljh-config")
