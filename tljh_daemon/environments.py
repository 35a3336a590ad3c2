"""Several environments (`environments.<name>`): where each lives, its kernelspec, and what a
server started from one needs.

The installer builds each environment with uv at `<prefix>/envs/<name>` (or adopts an existing
one named by `path`, e.g. a conda environment) and writes its kernelspec into the install's
Jupyter data directory, `<prefix>/share/jupyter/kernels/<name>`. Every server finds those
kernelspecs through `JUPYTER_PATH` (`spawn_environment`), whichever environment the server
itself runs from. The daemon never builds anything; this module only computes paths.
"""

import os
import re
from dataclasses import dataclass

# A kernelspec name, a directory name and one part of a dotted tljh-config key: lowercase (as
# jupyter_client lowercases kernel names), no dots.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# python3 is the user environment's own kernel; a kernelspec of that name would hide it.
RESERVED = ("python3",)
# Written into each kernelspec's metadata: the installer removes only kernelspecs it wrote; and
# the kernel pre-warm provisioner (tljh_kernel_prewarm) forks kernels of environments that have it.
METADATA_KEY = "tljh_environment"
PREWARM_KEY = "tljh_prewarm"


class EnvironmentProblem(Exception):
    """An environment that is not configured or cannot run what was asked of it."""


def envs_dir(paths):
    return os.path.join(paths.prefix, "envs")


def jupyter_data_dir(paths):
    """The install's Jupyter data directory, on every server's JUPYTER_PATH."""
    return os.path.join(paths.prefix, "share", "jupyter")


def kernels_dir(paths):
    return os.path.join(jupyter_data_dir(paths), "kernels")


def env_dir(paths, name, spec):
    """Where environment `name` lives: its `path` (adopted as it is), else <prefix>/envs/<name>."""
    return (spec or {}).get("path") or os.path.join(envs_dir(paths), name)


def is_adopted(spec):
    return bool((spec or {}).get("path"))


def python_version(spec):
    """The Python version asked for, as text (None: the interpreter the user environment uses).
    A number (YAML and tljh-config read 3.12 as one) is taken when it reads back unambiguously."""
    value = (spec or {}).get("python")
    if value is None or isinstance(value, str):
        return value
    text = repr(value)
    if isinstance(value, bool) or not re.match(r"^3\.[0-9]+$", text) or text == "3.1":
        raise ValueError(f"{value!r} is not a Python 3 version as written; quote it, e.g. '3.10' or '3.12'")
    return text


def display_name(name, spec):
    return f"Python ({(spec or {}).get('display_name') or name})"


def kernelspec(name, spec, python, prewarm=False):
    """kernel.json of environment `name` whose interpreter is `python`; `prewarm`: the environment
    holds tljh-kernel-prewarm, so its kernels can be forked from a zygote of its own."""
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name(name, spec),
        "language": "python",
        "metadata": {METADATA_KEY: name, PREWARM_KEY: prewarm, "debugger": True},
    }


def not_built(paths, environments):
    """The configured environments the installer has not built (or adopted) yet: no kernelspec."""
    return [name for name in sorted(environments or {})
            if not os.path.isfile(os.path.join(kernels_dir(paths), name, "kernel.json"))]


def spawn_environment(paths):
    """What every server's environment gets so it lists the environments' kernels: JUPYTER_PATH
    naming the install's data directory, when the installer wrote kernelspecs there."""
    try:
        has_kernels = bool(os.listdir(kernels_dir(paths)))
    except OSError:
        has_kernels = False
    return {"JUPYTER_PATH": jupyter_data_dir(paths)} if has_kernels else {}


@dataclass(frozen=True)
class ServerFrom:
    """How to run a server from an environment (for a profile's `environment`)."""

    prefix: str  # the environment's directory
    singleuser: str  # its jupyterhub-singleuser
    path: str  # the server's PATH: the environment's bin first


def server_from(paths, environments, name, default_env):
    """Where a server runs from when a profile names environment `name` (None or "" means the
    default user environment, `default_env`). `environments` is the `environments` config
    section. Raises EnvironmentProblem naming the key when the environment is unknown or has no
    `jupyterhub-singleuser` (add `jupyterhub` and `jupyterlab` to its packages)."""
    if not name:
        prefix = default_env
    elif name not in (environments or {}):
        known = ", ".join(sorted(environments or {})) or "none"
        raise EnvironmentProblem(f"environment {name!r} is not configured (environments.*: {known})")
    else:
        prefix = env_dir(paths, name, environments[name])
    singleuser = os.path.join(prefix, "bin", "jupyterhub-singleuser")
    if not os.access(singleuser, os.X_OK):
        key = f"environments.{name}.packages" if name else "user_environment.path"
        raise EnvironmentProblem(f"{prefix} has no jupyterhub-singleuser to run a server from "
                                f"(add jupyterhub and jupyterlab to {key})")
    return ServerFrom(prefix, singleuser, f"{os.path.join(prefix, 'bin')}:/usr/local/bin:/usr/bin:/bin")
