"""TLJH's `tljh.conda` for plugins.

This hub's user environment is a Python virtual environment built with uv, not conda. pip
packages work as in TLJH (`ensure_pip_packages`, `ensure_pip_requirements`); what needs conda
raises CondaUnavailable, naming the plugin module that asked, instead of half-working.
"""

import contextlib
import hashlib
import json
import os
import subprocess
import sys

from . import utils


class CondaUnavailable(RuntimeError):
    """A plugin asked for conda, which this hub does not have."""


def _caller():
    """The module outside `tljh` that called into this one (the plugin), for messages."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "?")
        if module != "tljh" and not module.startswith("tljh."):
            return module
        frame = frame.f_back
    return "?"


def _unavailable(what):
    return CondaUnavailable(
        f"{what}, called from {_caller()}: this hub's user environment has no conda (it is a "
        f"Python virtual environment built with uv). Ask for pip packages instead "
        f"(tljh_extra_user_pip_packages, or tljh.conda.ensure_pip_packages)")


def sha256_file(fname):
    """The hex sha256 of the file `fname`."""
    digest = hashlib.sha256()
    with open(fname, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def get_conda_package_versions(prefix):
    """{package: version} from `conda list --json` in `prefix`; {} where there is no conda
    (here: always, unless the prefix is a conda environment someone made)."""
    try:
        out = subprocess.check_output([os.path.join(prefix, "bin", "conda"), "list", "--json"], text=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {}
    return {package["name"]: package["version"] for package in json.loads(out)}


def fix_permissions(prefix):
    """Everything in `prefix` owned by the current user and group, nothing world-writable."""
    utils.run_subprocess(["chown", "-R", f"{os.getuid()}:{os.getgid()}", prefix])
    utils.run_subprocess(["chmod", "-R", "o-w", prefix])


def _pip(prefix):
    return [os.path.join(os.path.abspath(prefix), "bin", "python"), "-m", "pip", "install"]


def ensure_pip_packages(prefix, packages, upgrade=False):
    """pip-install `packages` into the environment at `prefix` (e.g. tljh.config.USER_ENV_PREFIX)."""
    utils.run_subprocess(_pip(prefix) + (["--upgrade"] if upgrade else []) + list(packages))
    fix_permissions(prefix)


def ensure_pip_requirements(prefix, requirements_path, upgrade=False):
    """pip-install a requirements file (a path or a URL) into the environment at `prefix`."""
    utils.run_subprocess(_pip(prefix) + (["--upgrade"] if upgrade else []) + ["--requirement", requirements_path])
    fix_permissions(prefix)


def ensure_conda_packages(prefix, packages, channels=("conda-forge",), force_reinstall=False):
    raise _unavailable(f"tljh.conda.ensure_conda_packages({list(packages)!r})")


@contextlib.contextmanager
def download_miniconda_installer(installer_url, sha256sum):
    raise _unavailable("tljh.conda.download_miniconda_installer")
    yield  # pragma: no cover  (a generator, as TLJH's context manager is)


def install_miniconda(installer_path, prefix):
    raise _unavailable("tljh.conda.install_miniconda")
