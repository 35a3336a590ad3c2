"""The JupyterHub-compatible REST API under /hub/api."""
