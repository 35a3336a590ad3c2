"""Building `environments.<name>` (several environments beside the user environment).

Each is a venv made with uv at `<prefix>/envs/<name>` holding ipykernel and its `packages` and
`requirements` (and tljh-kernel-prewarm, so its kernels can be pre-warmed), upgraded at every run of
the installer (`uv pip install --upgrade`); or, with
`path`, an existing environment (e.g. a conda environment) adopted as it is. Each gets a
kernelspec in `<prefix>/share/jupyter/kernels/<name>` (see tljh_daemon/environments.py).
A kernelspec whose environment was removed from the config is removed; the environment's
directory is left for the admin to delete.
"""

import json
import os
import shutil
import subprocess

from tljh_daemon import environments as envs
from tljh_daemon.config import ConfigError
from tljh_daemon.files import write_atomically

from .steps import install_kernel_prewarm, python_for_users, run, uv


def build_all(paths, environments):
    """Build or upgrade every configured environment and write the kernelspecs; returns a line
    per environment (and per kernelspec removed) for the installer's output."""
    lines = []
    for name, spec in sorted(environments.items()):
        python = adopt(name, spec) if envs.is_adopted(spec) else build(paths, name, spec)
        # Built ones get the kernel pre-warm package; an adopted one is left as it is.
        write_kernelspec(paths, name, spec, python, prewarm=not envs.is_adopted(spec))
        how = "adopted as it is" if envs.is_adopted(spec) else "built with uv"
        lines.append(f"environment {name}: {envs.env_dir(paths, name, spec)} ({how}), kernel "
                     f"{envs.display_name(name, spec)!r}")
    lines += remove_stale_kernelspecs(paths, environments)
    if environments:
        run(["chmod", "-R", "a+rX", envs.jupyter_data_dir(paths)])
    return lines


def build(paths, name, spec):
    """The venv of environment `name`, made if missing (or if it runs another Python than
    `python` asks for), then ipykernel, its packages and requirements installed or upgraded."""
    prefix = envs.env_dir(paths, name, spec)
    python = os.path.join(prefix, "bin", "python")
    wanted = envs.python_version(spec)
    if wanted and os.path.exists(python) and not runs_python(prefix, wanted):
        shutil.rmtree(prefix)  # made again below with the Python asked for
    if not os.path.exists(python):
        os.makedirs(envs.envs_dir(paths), mode=0o755, exist_ok=True)
        env = dict(os.environ)
        # A Python uv downloads must be readable by every user, so it lives in the install.
        env["UV_PYTHON_INSTALL_DIR"] = os.path.join(envs.envs_dir(paths), ".python")
        run([uv(), "venv", "--seed", "--python", wanted or python_for_users(), prefix], env=env)
    requirements = spec.get("requirements")
    if requirements and not os.path.isfile(requirements):
        raise ConfigError(f"environments.{name}.requirements", f"the file {requirements} does not exist")
    cmd = [uv(), "pip", "install", "--upgrade", "--compile-bytecode", "--python", python,
           "ipykernel", *spec.get("packages", [])]
    if requirements:
        cmd += ["-r", requirements]
    run(cmd)
    install_kernel_prewarm([uv()], python)
    run(["chmod", "-R", "go-w,a+rX", prefix])
    lock = os.path.join(prefix, ".lock")  # as steps.tighten_lock_files: root's, read-only to others
    if os.path.isfile(lock) and not os.path.islink(lock):
        os.chmod(lock, 0o644)
    if os.path.isdir(os.path.join(envs.envs_dir(paths), ".python")):
        run(["chmod", "-R", "go-w,a+rX", os.path.join(envs.envs_dir(paths), ".python")])
    return python


def runs_python(prefix, wanted):
    """Was the venv at `prefix` made with Python `wanted` (e.g. 3.12 matches 3.12.3)?"""
    try:
        with open(os.path.join(prefix, "pyvenv.cfg")) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() in ("version_info", "version"):
                    return (value.strip() + ".").startswith(wanted + ".")
    except OSError:
        pass
    return False


def adopt(name, spec):
    """An existing environment, used as it is: it needs a Python with ipykernel."""
    if any(key in spec for key in ("packages", "requirements", "python")):
        raise ConfigError(f"environments.{name}.path", "an adopted environment is used as it is: leave out "
                                                       "packages, requirements and python (or leave out path)")
    python = os.path.join(spec["path"], "bin", "python")
    if not os.access(python, os.X_OK):
        raise ConfigError(f"environments.{name}.path", f"{python} does not exist")
    if subprocess.run([python, "-c", "import ipykernel"], capture_output=True).returncode != 0:
        raise ConfigError(f"environments.{name}.path", f"{spec['path']} has no ipykernel: install it there "
                                                       f"({os.path.join(spec['path'], 'bin', 'pip')} install ipykernel)")
    return python


def write_kernelspec(paths, name, spec, python, prewarm=False):
    directory = os.path.join(envs.kernels_dir(paths), name)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    write_atomically(os.path.join(directory, "kernel.json"),
                     json.dumps(envs.kernelspec(name, spec, python, prewarm), indent=1) + "\n", mode=0o644)


def remove_stale_kernelspecs(paths, environments):
    lines = []
    try:
        names = os.listdir(envs.kernels_dir(paths))
    except FileNotFoundError:
        return lines
    for name in sorted(set(names) - set(environments)):
        directory = os.path.join(envs.kernels_dir(paths), name)
        try:
            with open(os.path.join(directory, "kernel.json")) as f:
                ours = json.load(f).get("metadata", {}).get(envs.METADATA_KEY) == name
        except (OSError, ValueError, AttributeError):
            ours = False
        if ours:
            shutil.rmtree(directory)
            left = os.path.join(envs.envs_dir(paths), name)
            lines.append(f"environment {name} is no longer configured: its kernel was removed"
                         + (f" ({left} is kept; delete it when no one needs it)" if os.path.isdir(left) else ""))
    return lines
