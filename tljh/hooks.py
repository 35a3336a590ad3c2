"""TLJH's plugin module path; the hooks themselves live in tljh_daemon.hookspecs."""

from tljh_daemon.hookspecs import hookimpl, hookspec  # noqa: F401
