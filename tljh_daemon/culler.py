"""Built-in idle culling, configured by TLJH's `services.cull.*` keys.

Activity comes from the single-user servers' own reports (POST .../activity),
so a browser tab left open on an idle notebook does not keep a server alive
unless the server itself reports activity.

Temporary users (workshop accounts) are removed, with their Unix account and files, when
their server is culled, or once they have been idle as long with no server running.
"""

import asyncio
import logging
from datetime import timedelta

from . import timeutil
from .server_state import ACTIVE, ServerState, sql_list
from .settings import CullSettings
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Culler:
    def __init__(self, hub, settings: CullSettings):
        self.hub = hub
        self.settings = settings
        self._task: asyncio.Task | None = None

    def start(self):
        if self.settings.enabled:
            self._task = asyncio.create_task(self._loop())

    async def close(self):
        await cancel_and_wait(self._task)

    async def _loop(self):
        while True:
            await asyncio.sleep(self.settings.every)
            try:
                await self.cull_once()
            except Exception:
                log.exception("Idle culling failed")

    def _due(self, row, now):
        """Why this server should be culled, or None."""
        cull = self.settings
        last = row["last_activity"] or row["started"]
        if last and now - timeutil.parse(last) > timedelta(seconds=cull.timeout):
            return f"inactive for more than {cull.timeout}s"
        if cull.max_age and row["started"] and now - timeutil.parse(row["started"]) > timedelta(seconds=cull.max_age):
            return f"older than {cull.max_age}s"
        return None

    async def _idle_temporary_users(self, now):
        """Temporary users with no running server, idle (or never active) for longer than the timeout."""
        timeout = timedelta(seconds=self.settings.timeout)
        rows = await self.hub.db.all(
            "SELECT u.name, u.created, u.last_activity FROM users u WHERE u.temporary=1 AND NOT EXISTS "
            f"(SELECT 1 FROM servers s WHERE s.user=u.name AND s.state IN ({sql_list(ACTIVE)}))"
        )
        return [(r["name"], None, f"temporary, idle with no server for more than {self.settings.timeout}s", False,
                 True) for r in rows if now - timeutil.parse(r["last_activity"] or r["created"]) > timeout]

    async def cull_once(self):
        hub = self.hub
        now = timeutil.now()
        rows = await hub.db.all(
            "SELECT s.*, u.admin, u.temporary FROM servers s JOIN users u ON u.name = s.user WHERE s.state=?",
            (ServerState.RUNNING,),
        )
        due = []
        for row in rows:
            if row["admin"] and self.settings.exempt_admins:
                continue
            reason = self._due(row, now)
            if reason:
                due.append((row["user"], row["name"], reason, bool(row["admin"]), bool(row["temporary"])))
        due += await self._idle_temporary_users(now)
        limit = asyncio.Semaphore(self.settings.concurrency)

        async def cull(name, server, reason, admin, temporary):
            async with limit:
                if server:  # a named server: stopped, or deleted (remove_named_servers); its user stays
                    log.info("Culling the server %s/%s: %s", name, server, reason)
                    if self.settings.remove_named_servers:
                        await hub.servers.remove(name, server)
                    else:
                        await hub.servers.stop(name, server)
                    return
                if server is not None:
                    log.info("Culling the server of %s: %s", name, reason)
                    await hub.servers.stop(name)
                if temporary:
                    await remove_temporary_user(hub, name)
                elif self.settings.users and not admin:
                    await hub.db.execute("DELETE FROM users WHERE name=?", (name,))
                    log.info("Culled user %s", name)

        await asyncio.gather(*(cull(*item) for item in due))
        return [item[0] for item in due]


async def remove_temporary_user(hub, name):
    """Remove a temporary user: the hub user (sessions and tokens go with it), then its Unix
    account and home. The row goes first, so nobody can log in or spawn while the account is
    removed; a failing userdel is logged (the name is random and never handed out again)."""
    await hub.db.execute("DELETE FROM users WHERE name=? AND temporary=1", (name,))
    try:
        await hub.remove_account(hub.authenticator.system_username(name))
    except Exception as e:
        log.error("Could not remove the Unix account of temporary user %s: %s", name, e)
    log.info("Removed temporary user %s", name)
