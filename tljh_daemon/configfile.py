"""Editing config.yaml safely: round-trip (comments and key order survive), validated
before writing, written atomically, under an exclusive lock against other writers."""

import fcntl
import io
import os
import re
import time
from contextlib import contextmanager

from ruamel.yaml import YAML

from . import config as config_mod
from .files import write_atomically


def _yaml():
    yaml = YAML()  # round-trip mode
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def plain(data):
    """Round-trip containers as plain dicts and lists (for validation)."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


SECRET_KEY = re.compile(r"(password|secret|api_token)", re.IGNORECASE)
MASK = "********"


def masked(text):
    """config.yaml's text with the values of secret-looking keys (…password, …secret) masked;
    comments and layout are kept."""
    try:
        data = _yaml().load(text)
    except Exception as e:  # ruamel raises many kinds; nothing can be masked in a broken file
        raise config_mod.ConfigError(None, f"not shown: the file is not valid YAML, so its secrets "
                                           f"cannot be masked: {e}") from None
    if not isinstance(data, dict):
        return text

    def walk(node):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value)
            elif SECRET_KEY.search(str(key)) and value not in (None, ""):
                node[key] = MASK

    walk(data)
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    return buffer.getvalue()


class Locked(Exception):
    """Another writer held config.yaml's lock for longer than the caller would wait."""


@contextmanager
def locked(path, timeout=None):
    """Hold config.yaml's lock (the one tljh-config, the installer and plugins take); with
    `timeout` (seconds), raise Locked instead of waiting longer for another writer."""
    with os.fdopen(os.open(path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as lock:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Locked(f"another writer (tljh-config or the installer) holds {path}.lock; "
                                 f"{path} was not changed") from None
                time.sleep(0.05)
        yield


@contextmanager
def editing(path, lock_timeout=None):
    """Yield the config as a round-trip mapping; on clean exit, validate and save it.

    A ConfigError leaves the file untouched. With `lock_timeout` (seconds), raise Locked
    instead of waiting longer for another writer.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with locked(path, lock_timeout):
        data, original = None, None
        original = config_mod.read_text(path)
        if original is not None:
            try:
                data = _yaml().load(original)
            except Exception as e:  # ruamel raises many kinds; any means "fix the file by hand"
                raise config_mod.ConfigError(None, f"{path} is not valid YAML: {e}") from None
        if data is None:
            data = _yaml().load("{}\n")
        if not isinstance(data, dict):
            raise config_mod.ConfigError(None, f"{path} must hold a mapping of keys")
        yield data
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, plain(data)),
                            config_mod.plugin_keys(os.path.dirname(path)))
        buffer = io.StringIO()
        _yaml().dump(data, buffer)
        if buffer.getvalue() == original or (original is None and not data):
            return
        write_atomically(path, buffer.getvalue())
