"""Ending background tasks cleanly."""

import asyncio


async def cancel_and_wait(*tasks):
    """Cancel `tasks` (None is skipped) and wait until each has finished, its cleanup included."""
    pending = [task for task in tasks if task is not None and not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
