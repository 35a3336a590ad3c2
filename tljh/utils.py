"""TLJH's `tljh.utils` for plugins: running commands the way the installer does, the plugin
manager, loose version parsing."""

import logging
import re
import subprocess

log = logging.getLogger("tljh")


def run_subprocess(cmd, *args, **kwargs):
    """Run `cmd` with its output captured: logged at debug level when it succeeds; logged as an
    error, then raised as subprocess.CalledProcessError (output attached), when it fails.
    Other arguments go to subprocess.run (`input=`, `env=`, `cwd=` ...)."""
    shown = " ".join(str(part) for part in cmd)
    log.debug("Running %s", shown)
    proc = subprocess.run(cmd, *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    output = proc.stdout.decode(errors="replace") if isinstance(proc.stdout, bytes) else (proc.stdout or "")
    if proc.returncode != 0:
        log.error("Ran %s with exit code %s", shown, proc.returncode)
        log.error("%s", output)
        raise subprocess.CalledProcessError(proc.returncode, cmd, output=proc.stdout)
    log.debug("Ran %s with exit code 0", shown)
    log.debug("%s", output)


def get_plugin_manager():
    """Every installed plugin of the `tljh` entry point group (one that cannot be loaded is
    named in the log and skipped)."""
    from tljh_daemon import plugins

    return plugins.load()


def parse_version(version_string):
    """A tuple of every number in `version_string` ("1.2rc3" -> (1, 2, 3)); never fails."""
    return tuple(int(part) for part in re.findall(r"\d+", version_string))
