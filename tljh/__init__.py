"""Compatibility with TLJH plugins: they import `tljh.hooks.hookimpl`."""
