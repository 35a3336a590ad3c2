"""Writing private files safely: atomically, and secrets created once with mode 0600."""

import os
import tempfile


def write_atomically(path, text, mode=0o600, tmp_dir=None):
    """Write `text` to a temp file, then rename it over `path`: readers never see half a file.

    `tmp_dir` (same filesystem) keeps the temp file out of a watched directory.
    """
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_or_create_secret(path, make):
    """The bytes in `path`; on first use, `make()` them and store them readable by root only."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        secret = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret
