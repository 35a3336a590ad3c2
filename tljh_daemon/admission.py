"""Admission control for server starts.

Starting a fresh server costs ~4.5 CPU-seconds. When a whole class starts at once,
running every start in parallel makes *everyone* wait (fair sharing) and can
push starts past their timeouts. Instead, about as many servers start at once
as there are cores (`slots`); the rest wait in arrival order and see their place in line
on the progress page. Nobody fails just because the machine is busy.

A server forked by the pre-warm launcher costs ~0.3-0.6 CPU-seconds and part of its start is
waiting (for the hub's API, for Traefik), so such a *light* start takes only a share of a slot
(`LIGHT_PER_SLOT` of them fit in one): a 30-user class start on 2 cores measured 21 s with one
start per core and 12-17 s with two, while more at once made everyone slower again.
"""

import asyncio
from contextlib import asynccontextmanager

LIGHT_PER_SLOT = 2


class Admission:
    def __init__(self, slots, light_per_slot=LIGHT_PER_SLOT):
        self.slots = max(1, slots)
        self.light_per_slot = light_per_slot
        self.capacity = self.slots * light_per_slot  # in shares; a fresh start takes light_per_slot
        self.used = 0
        self.waiting = []  # [(future, progress, shares)] in arrival order

    @asynccontextmanager
    async def slot(self, progress, light=False):
        shares = 1 if light else self.light_per_slot
        await self._acquire(progress, shares)
        try:
            yield
        finally:
            self._release(shares)

    async def _acquire(self, progress, shares):
        if self.used + shares <= self.capacity and not self.waiting:
            self.used += shares
            return
        entry = (asyncio.get_running_loop().create_future(), progress, shares)
        self.waiting.append(entry)
        await self._announce()
        try:
            await entry[0]
        except asyncio.CancelledError:
            if entry in self.waiting:
                self.waiting.remove(entry)
                self._admit()  # those behind it may fit now
                await self._announce()
            elif entry[0].done() and not entry[0].cancelled():
                self._release(shares)  # admitted just as we were cancelled
            raise

    def _release(self, shares):
        self.used -= shares
        self._admit()

    def _admit(self):
        """Let in waiting starts in arrival order while the first in line fits (none overtakes it)."""
        admitted = False
        while self.waiting and self.used + self.waiting[0][2] <= self.capacity:
            future, _, shares = self.waiting.pop(0)
            if future.done():
                continue
            self.used += shares
            future.set_result(None)
            admitted = True
        if admitted:
            asyncio.get_running_loop().create_task(self._announce())

    async def _announce(self):
        for position, (_, progress, _) in enumerate(list(self.waiting), start=1):
            ahead = "1 server is" if position == 1 else f"{position} servers are"
            await progress.emit(5, f"The machine is busy: {ahead} ahead of yours in line", queue_position=position)
