"""Admission control: fresh starts take a whole slot, pre-warmed (light) ones a share of one;
starts are let in in arrival order, none overtakes the first in line."""

import asyncio

from tljh_daemon.admission import Admission


class Progress:
    def __init__(self):
        self.positions = []

    async def emit(self, progress, message, **extra):
        self.positions.append(extra.get("queue_position"))


async def hold(admission, light, entered, release):
    async with admission.slot(Progress(), light=light):
        entered.set()
        await release.wait()


async def started(events):
    await asyncio.sleep(0.05)  # let every task that can get in do so
    return [e.is_set() for e in events]


async def test_light_starts_share_a_slot_and_a_fresh_one_waits_for_a_whole_one():
    admission = Admission(1, light_per_slot=2)
    release = [asyncio.Event() for _ in range(4)]
    entered = [asyncio.Event() for _ in range(4)]
    kinds = [True, True, False, True]  # light, light, fresh, light (arriving in this order)
    tasks = []
    for kind, e, r in zip(kinds, entered, release):
        tasks.append(asyncio.create_task(hold(admission, kind, e, r)))
        await asyncio.sleep(0.01)
    assert await started(entered) == [True, True, False, False]  # two light starts fill the slot
    release[0].set()
    # Half a slot is free: not enough for the fresh start, and the light one behind it must not overtake.
    assert await started(entered) == [True, True, False, False]
    release[1].set()
    assert await started(entered) == [True, True, True, False]
    release[2].set()
    assert await started(entered) == [True, True, True, True]
    release[3].set()
    await asyncio.gather(*tasks)
    assert admission.used == 0 and admission.waiting == []


async def test_a_cancelled_waiter_lets_those_behind_it_in():
    admission = Admission(1, light_per_slot=2)
    release = [asyncio.Event() for _ in range(3)]
    entered = [asyncio.Event() for _ in range(3)]
    first = asyncio.create_task(hold(admission, True, entered[0], release[0]))
    await asyncio.sleep(0.01)
    fresh = asyncio.create_task(hold(admission, False, entered[1], release[1]))
    await asyncio.sleep(0.01)
    light = asyncio.create_task(hold(admission, True, entered[2], release[2]))
    assert await started(entered) == [True, False, False]
    fresh.cancel()
    assert await started(entered) == [True, False, True]
    for r in release:
        r.set()
    await asyncio.gather(first, light)
    assert admission.used == 0
