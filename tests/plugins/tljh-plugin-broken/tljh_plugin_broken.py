"""Test plugin that fails at import: the hub and the installer must name it and go on."""

from tljh.hooks import hookimpl
from tljh.no_such_module import something  # noqa: F401


@hookimpl
def tljh_post_install():
    raise AssertionError("never loaded")
