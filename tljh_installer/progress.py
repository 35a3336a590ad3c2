"""Step names and elapsed times on the terminal; the full log in <prefix>/installer.log (0600)."""

import logging
import os
import re
import sys
import time
from contextlib import contextmanager

log = logging.getLogger("tljh_installer")

SECRET = re.compile(r"(--admin\s+[^:\s]+:)\S+|(password\s*[=:]\s*)\S+", re.IGNORECASE)


class RedactingFormatter(logging.Formatter):
    def format(self, record):
        return SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", super().format(record))


def setup_logging(prefix):
    path = os.path.join(prefix, "installer.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(path, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a"))
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


class Steps:
    def __init__(self):
        self.started = time.monotonic()
        self.done = []
        self.current = None

    @contextmanager
    def step(self, name):
        print(f"==> {name} ...", flush=True)
        log.info("step: %s", name)
        start = time.monotonic()
        self.current = name
        try:
            yield
        except Exception:
            log.exception("step failed: %s", name)
            print(f"    failed after {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)
            raise
        elapsed = time.monotonic() - start
        self.done.append((name, elapsed))
        self.current = None
        print(f"    done in {elapsed:.1f}s", flush=True)

    @property
    def total(self):
        return time.monotonic() - self.started
