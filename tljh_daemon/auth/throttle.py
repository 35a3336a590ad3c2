"""Slowing down password guessing, per name and per client address.

A failure makes the next attempt for that name wait (the 3rd failure on: 1 s, 2, 4 ... 16 s).
That alone is a per-request sleep, so parallel guesses all waited the same few seconds and
were checked together; so attempts for one name also run one at a time (each waits its turn,
then its delay), and attempts from one address at most `address_concurrency` at a time, with
their own failure count (more free failures: a class behind one NAT address mistypes too).
Beyond `max_waiting` queued attempts for a name (or `address_max_waiting` for an address),
one is refused without checking the password.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


class FailedLoginThrottle:
    """Failures per key and the delay they earn: after `free_failures`, 1 s doubling to `max_delay`."""

    max_delay = 16
    forget_after = 15 * 60

    def __init__(self, free_failures=2, unit=1.0):
        self.free_failures = free_failures
        self.unit = unit  # seconds per step (tests shrink it)
        self._failures = {}

    def delay(self, key):
        count, last = self._failures.get(key, (0, 0))
        if time.monotonic() - last > self.forget_after:
            self._failures.pop(key, None)
            return 0
        extra = count - self.free_failures
        return 0 if extra < 0 else min(2**extra, self.max_delay) * self.unit

    max_keys = 10_000  # beyond this many remembered keys, the forgotten ones are dropped

    def failed(self, key):
        count, _ = self._failures.get(key, (0, 0))
        now = time.monotonic()
        self._failures[key] = (count + 1, now)
        if len(self._failures) > self.max_keys:  # guesses at random names cannot grow this forever
            self._failures = {k: v for k, v in self._failures.items() if now - v[1] <= self.forget_after}

    def succeeded(self, key):
        self._failures.pop(key, None)


class TooManyAttempts(Exception):
    pass


class LoginThrottle:
    max_waiting = 5  # attempts waiting for one name
    address_concurrency = 4
    address_max_waiting = 50  # a class behind one NAT address logs in at once

    def __init__(self, unit=1.0):
        self.names = FailedLoginThrottle(2, unit)
        self.addresses = FailedLoginThrottle(10, unit)
        self._queues = {}  # ("name" | "address", key) -> [semaphore, attempts holding or waiting]

    def delay(self, name, address=""):
        return max(self.names.delay(name), self.addresses.delay(address) if address else 0)

    @asynccontextmanager
    async def _turn(self, key, size, max_waiting):
        entry = self._queues.get(key)
        if entry is None:
            entry = self._queues[key] = [asyncio.Semaphore(size), 0]
        if entry[1] >= size + max_waiting:
            raise TooManyAttempts(key[0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._queues[key]

    @asynccontextmanager
    async def attempt(self, name, address=""):
        """Wait for this attempt's turn and its delay; raise TooManyAttempts when too many wait."""
        async with self._turn(("name", name), 1, self.max_waiting):
            async with self._turn(("address", address), self.address_concurrency, self.address_max_waiting):
                delay = self.delay(name, address)
                if delay:
                    log.warning("Slowing down login for %s from %s by %ss after failed attempts",
                                name, address or "?", delay)
                    await asyncio.sleep(delay)
                yield

    def failed(self, name, address=""):
        self.names.failed(name)
        if address:
            self.addresses.failed(address)

    def succeeded(self, name):
        self.names.succeeded(name)
