"""Spawners and authenticators, found through entry points (built-in ones as well as plugins').

A package registers a backend under `tljh_daemon.spawners` or `tljh_daemon.authenticators`
(the entry point's name is the `spawner.type` / `auth.type` value). Loading is lazy, so
importing this module imports no backend, and config validation can ask for backends'
schemas without importing them at module level (no import circle).
"""

import logging
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points

log = logging.getLogger(__name__)

SPAWNERS = "tljh_daemon.spawners"
AUTHENTICATORS = "tljh_daemon.authenticators"


@cache
def registered(group):
    """{name: backend} of every entry point in `group` that loads; a broken one is logged and left out."""
    found = {}
    for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
        if ep.name in found:
            continue  # the same package seen twice on sys.path (an editable and a normal install)
        try:
            found[ep.name] = ep.load()
        except Exception as e:  # a plugin's failure must not stop the hub
            log.warning("%s backend %r (%s) could not be loaded and is skipped: %s: %s",
                        group, ep.name, ep.value, type(e).__name__, e)
    return found


def refresh():
    """Forget what was found (after installing a package into the running interpreter)."""
    registered.cache_clear()


def authenticator_types():
    """{every accepted auth.type value (short name or JupyterHub class name): short name}."""
    types = {}
    for name, cls in registered(AUTHENTICATORS).items():
        for alias in (name, *getattr(cls, "class_names", ())):
            types.setdefault(alias, name)
    return types


class Registered(Mapping):
    """A read-only, always current view of one group (e.g. `auth.REGISTRY`)."""

    def __init__(self, group):
        self.group = group

    def __getitem__(self, name):
        return registered(self.group)[name]

    def __iter__(self):
        return iter(registered(self.group))

    def __len__(self):
        return len(registered(self.group))


class AuthTypes(Mapping):
    """A read-only, always current view of authenticator_types()."""

    def __getitem__(self, name):
        return authenticator_types()[name]

    def __iter__(self):
        return iter(authenticator_types())

    def __len__(self):
        return len(authenticator_types())
