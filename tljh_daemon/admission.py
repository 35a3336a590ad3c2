"""Admission control for server starts.

Starting a server costs ~4.5 CPU-seconds. When a whole class starts at once,
running every start in parallel makes *everyone* wait (fair sharing) and can
push starts past their timeouts. Instead, about as many servers start at once
as there are cores; the rest wait in arrival order and see their place in line
on the progress page. Nobody fails just because the machine is busy.
"""

import asyncio
from contextlib import asynccontextmanager


class Admission:
    def __init__(self, slots):
        self.slots = max(1, slots)
        self.active = 0
        self.waiting = []  # [(future, progress)] in arrival order

    @asynccontextmanager
    async def slot(self, progress):
        await self._acquire(progress)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, progress):
        if self.active < self.slots and not self.waiting:
            self.active += 1
            return
        entry = (asyncio.get_running_loop().create_future(), progress)
        self.waiting.append(entry)
        await self._announce()
        try:
            await entry[0]
        except asyncio.CancelledError:
            if entry in self.waiting:
                self.waiting.remove(entry)
                await self._announce()
            elif entry[0].done() and not entry[0].cancelled():
                self._release()  # the slot was handed over just as we were cancelled
            raise

    def _release(self):
        while self.waiting:
            future, _ = self.waiting.pop(0)
            if not future.done():
                future.set_result(None)  # hand the slot straight to the next in line
                asyncio.get_running_loop().create_task(self._announce())
                return
        self.active -= 1

    async def _announce(self):
        for position, (_, progress) in enumerate(list(self.waiting), start=1):
            ahead = "1 server is" if position == 1 else f"{position} servers are"
            await progress.emit(5, f"The machine is busy: {ahead} ahead of yours in line", queue_position=position)
