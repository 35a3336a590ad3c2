"""Building user environments in tests: the interpreter every Unix user can run."""

import os
import shutil


def python_for_users():
    """The python3 a user environment is made with: one every Unix user can execute."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no python3 found")
