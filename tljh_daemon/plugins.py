"""Loading plugins and calling their hooks so that one broken plugin never stops the rest.

A plugin whose module fails to import (a missing `tljh.*` name, a syntax error, a missing
dependency) or whose hook implementations pluggy refuses is named with its package and
skipped; the hub and the installer go on with the others. A hook that raises is reported the
same way by `call_each`, and that plugin's answer is left out.
"""

import importlib.metadata
import logging

import pluggy

from . import hookspecs

log = logging.getLogger(__name__)

GROUP = "tljh"


class Plugins(pluggy.PluginManager):
    """A pluggy manager that remembers which package each plugin came from, and which plugins
    could not be loaded (`failures`: one message each)."""

    def __init__(self):
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.packages = {}  # plugin name -> distribution name
        self.failures = []

    def describe(self, name):
        """'name' (package dist) for messages."""
        package = self.packages.get(name)
        return f"{name!r} (package {package})" if package else repr(name)

    def load_entry_points(self):
        tried = set()  # a distribution found twice on the path is tried (and reported) once
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != GROUP or ep.name in tried or self.get_plugin(ep.name) or self.is_blocked(ep.name):
                    continue
                tried.add(ep.name)
                package = dist.metadata["Name"] or "?"
                self.packages[ep.name] = package
                try:
                    plugin = ep.load()
                    self.register(plugin, name=ep.name)
                except (Exception, SystemExit) as e:  # sys.exit() in a plugin must not stop us either
                    self._forget(ep.name)
                    message = (f"plugin {self.describe(ep.name)} could not be loaded and is skipped: "
                               f"{type(e).__name__}: {e}")
                    self.failures.append(message)
                    log.error("%s", message)
        return self

    def _forget(self, name):
        plugin = self.get_plugin(name)
        if plugin is not None:
            self.unregister(plugin, name=name)

    def call_each(self, hook, **kwargs):
        """([(plugin name, result)], [failure message]) of every implementation of `hook`, one
        plugin at a time: one that raises is named, logged and left out (pluggy's own call would
        stop at the first exception and not say whose it was)."""
        results, failures = [], []
        for impl in getattr(self.hook, hook).get_hookimpls():
            try:
                results.append((impl.plugin_name, impl.function(**kwargs)))
            except (Exception, SystemExit) as e:  # sys.exit() in a plugin must not stop the hub
                message = (f"plugin {self.describe(impl.plugin_name)} failed in {hook} and is skipped: "
                           f"{type(e).__name__}: {e}")
                log.error("%s", message)
                failures.append(message)
        return results, failures


def load():
    """Every installed plugin of the `tljh` entry point group that can be loaded."""
    return Plugins().load_entry_points()
