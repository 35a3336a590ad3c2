"""tljh_daemon: a single-machine JupyterHub hub written on aiohttp."""

__version__ = "0.1.0"
