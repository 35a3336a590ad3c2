"""Waiting for a condition with a deadline (never a fixed sleep): the e2e tests' one poll loop."""

import time


def wait_for(condition, what, timeout=60, interval=0.2):
    """Poll `condition` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
