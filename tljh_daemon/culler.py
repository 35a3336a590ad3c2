"""Built-in idle culling, configured by TLJH's `services.cull.*` keys.

Activity comes from the single-user servers' own reports (POST .../activity),
so a browser tab left open on an idle notebook does not keep a server alive
unless the server itself reports activity.
"""

import asyncio
import logging
from datetime import timedelta

from . import timeutil
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Culler:
    def __init__(self, hub, settings):
        self.hub = hub
        self.settings = settings
        self._task = None

    def start(self):
        if self.settings["enabled"]:
            self._task = asyncio.create_task(self._loop())

    async def close(self):
        await cancel_and_wait(self._task)

    async def _loop(self):
        while True:
            await asyncio.sleep(self.settings["every"])
            try:
                await self.cull_once()
            except Exception:
                log.exception("Idle culling failed")

    def _due(self, row, now):
        """Why this server should be culled, or None."""
        cull = self.settings
        last = row["last_activity"] or row["started"]
        if last and now - timeutil.parse(last) > timedelta(seconds=cull["timeout"]):
            return f"inactive for more than {cull['timeout']}s"
        if cull["max_age"] and row["started"] and now - timeutil.parse(row["started"]) > timedelta(seconds=cull["max_age"]):
            return f"older than {cull['max_age']}s"
        return None

    async def cull_once(self):
        hub = self.hub
        now = timeutil.now()
        rows = hub.db.all(
            "SELECT s.*, u.admin FROM servers s JOIN users u ON u.name = s.user WHERE s.state='running'"
        )
        due = []
        for row in rows:
            if row["admin"] and self.settings["exempt_admins"]:
                continue
            reason = self._due(row, now)
            if reason:
                due.append((row["user"], reason, bool(row["admin"])))
        limit = asyncio.Semaphore(self.settings["concurrency"])

        async def cull(name, reason, admin):
            async with limit:
                log.info("Culling the server of %s: %s", name, reason)
                await hub.servers.stop(name)
                if self.settings["users"] and not admin:
                    hub.db.execute("DELETE FROM users WHERE name=?", (name,))
                    log.info("Culled user %s", name)

        await asyncio.gather(*(cull(*item) for item in due))
        return [name for name, _, _ in due]
