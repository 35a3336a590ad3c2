"""Starting, watching and stopping user servers, and keeping their routes in step.

A server row moves through the states of `ServerState`; `start` refuses what cannot start
(busy, or too many spawns at once), for the REST API and the browser alike. Spawn progress is kept in
memory and streamed to the browser; everything else is in the database, so a
restarted daemon re-adopts running servers instead of killing them.
"""

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from urllib.parse import quote
from typing import Optional

import aiohttp

from . import (accounts, collaboration, environments, groups, hub_contract, limit_changes, profiles, scopes,
               shared_folders, storage, timeutil, tokens)
from .admission import Admission
from .ports import free_port
from .server_state import ACTIVE, DOWN, ServerState
from .server_store import ServerRecord, ServerStore, describe, spawner_key, valid_server_name
from .settings import ServerSettings
from .spawner import SpawnError, SpawnRequest
from .tasks import cancel_and_wait
from .urls import join, server_prefix, url_name

log = logging.getLogger(__name__)

DEFAULT_URLS = {"jupyterlab": "/lab", "classic": "/tree", "notebook": "/tree"}
# kernels.prewarm: asks the server's tljh_kernel_prewarm extension to fork its kernels.
KERNEL_PREWARM_ENV = "TLJH_KERNEL_PREWARM"


def target_url(host, port):
    """The URL Traefik forwards a server's requests to."""
    host = host or "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def target_of(row):
    return target_url(row.host, row.port)


CLIENT_ID_PREFIX = "jupyterhub-user-"


def client_id(user, server=""):
    """A server's OAuth client id, fully %-quoted as JupyterHub makes it: jupyterhub-singleuser
    names its cookies after it, and a cookie name cannot hold the `@` of e-mail-style names,
    which URL paths (url_name) keep."""
    return CLIENT_ID_PREFIX + quote(user) + (f"-{quote(server)}" if server else "")


class Progress:
    """Spawn progress events (JupyterHub's event-stream model), replayable from the start."""

    def __init__(self):
        self.events = []
        self.finished = False
        self._changed = asyncio.Condition()

    async def emit(self, progress, message, **extra):
        event = {"progress": progress, "message": message, **extra}
        async with self._changed:
            self.events.append(event)
            if extra.get("ready") or extra.get("failed"):
                self.finished = True
            self._changed.notify_all()

    async def events_after(self, index, timeout):
        """Events from `index` on, waiting up to `timeout` seconds for one to arrive."""
        async with self._changed:
            if index >= len(self.events) and not self.finished:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
            return self.events[index:]


class Phases:
    """How long each step of a spawn took, for the "ready" log line (where a slow start went)."""

    def __init__(self, started):
        self.last = started
        self.spent = []

    def mark(self, step):
        now = time.perf_counter()
        self.spent.append((step, now - self.last))
        self.last = now

    def __str__(self):
        return ", ".join(f"{step} {seconds:.2f}s" for step, seconds in self.spent)


class NamedServerRefused(Exception):
    """A named server that cannot be had (not enabled, a bad name, over the limit): a 400."""


class ServerBusy(Exception):
    """A start or stop is already under way (or the server already runs)."""


class NoSuchServer(Exception):
    """The user has no server of that name: a 404."""


class ServerNameTaken(Exception):
    """A rename to a name another of the user's servers has: a 409."""


class SpawnLimitReached(Exception):
    """spawner.concurrent_spawn_limit servers are pending: the client should retry later."""

    retry_range = (5, 15)  # seconds; randomized so refused clients do not come back together

    def __init__(self, limit):
        super().__init__(f"Too many users trying to start right now ({limit} at once); try again soon")
        self.retry_after = random.randint(*self.retry_range)


class ServerManager:
    poll_interval = 5.0
    ready_poll_interval = 0.02  # a refused loopback connect is cheap; a coarse poll adds latency

    def __init__(self, *, settings: ServerSettings, paths, db, spawner, proxy, authenticator, hub_api_url, http,
                 plugins, metrics, ensure_account=accounts.ensure_account, overrides=None,
                 record_spawn: Optional[Callable[[str, float, bool], None]] = None):
        self.settings = settings  # replaced (not changed) when a reload changes them
        # Spawner.* settings from plugins / jupyterhub_config.d (jupyterhub_config.Extra.spawner)
        self.overrides = overrides or {}
        self.paths = paths
        self.db = db
        self.store = ServerStore(db)  # the servers table: every change of a server's stored state
        self.spawner = spawner
        self.proxy = proxy
        self.authenticator = authenticator
        self.hub_api_url = hub_api_url
        self.http = http
        self.plugins = plugins
        self.metrics = metrics
        self.ensure_account = ensure_account
        self.record_spawn = record_spawn  # (user, seconds, ok) of each spawn that ended: the usage history
        self.server_token_scopes = scopes.server_token_scopes  # (name, server) -> what its token holds (roles)
        self.admission = Admission(settings.concurrent_starts)
        # keyed by (user, server name); the default server's name is ''
        self.progress: dict[tuple[str, str], Progress] = {}  # Progress of the latest spawn
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}  # running start/stop task
        self._watcher: Optional[asyncio.Task] = None
        self._oom_kills_seen: dict[tuple[str, str], int] = {}  # OOM kills already logged
        self._start_lock = asyncio.Lock()

    # -- queries ---------------------------------------------------------------

    async def row(self, user, server="") -> Optional[ServerRecord]:
        return await self.store.get(user, server)

    async def pending_count(self):
        return await self.store.count(ServerState.PENDING)

    async def state(self, user, server=""):
        return await self.store.state(user, server)

    # -- start -----------------------------------------------------------------

    async def start(self, user_row, user_options=None, server="", display_name=None):
        """Begin a spawn for `user_row` with `user_options` (a JSON object, e.g. {"profile":
        "big"}; None: the defaults) in the background; return its Progress.

        Raises profiles.ProfileRefused for options that cannot be had (unknown profile, or one
        outside the user's groups), ServerBusy when it runs or is starting or stopping,
        SpawnLimitReached when spawner.concurrent_spawn_limit servers are pending (JupyterHub's
        rule for both the REST API and the browser), NamedServerRefused for a named `server`
        that cannot be had (named_servers.*). Starts are checked one at a time (the
        lock), so two requests cannot both pass the checks while the database answers.
        A `display_name` (checked by the caller) replaces the stored one."""
        name = user_row["name"]
        user_groups = await self.db.run(groups.names_of_user, name)
        profile = profiles.choose(self.settings.profiles, user_options, user_groups)
        key = (name, server)
        async with self._start_lock:
            if server:
                await self.check_named(name, server)
            state = await self.state(name, server)
            if state == ServerState.RUNNING:
                raise ServerBusy(f"{describe(name, server)} is already running")
            if state in (ServerState.PENDING, ServerState.STOPPING):
                raise ServerBusy(f"{describe(name, server)} is {state}; try again when it is done")
            if key in self.tasks:
                raise ServerBusy("a start or stop of this server is already under way")
            limit = self.settings.concurrent_spawn_limit
            if limit and await self.pending_count() >= limit:
                raise SpawnLimitReached(limit)
            progress = Progress()
            self.progress[key] = progress
            await self.store.pending(name, started=timeutil.isoformat(timeutil.now()),
                                     user_options=json.dumps(profiles.user_options_of(profile)), name=server,
                                     display_name=display_name)
            self._run_task(key, self._spawn(user_row, progress, profile, user_groups, server))
        return progress

    async def check_named(self, name, server, adds=True):
        """JupyterHub's rules for starting the named server `server` of `name`: named servers
        are on; a new one needs a valid name and, when it `adds` one to the user's named servers
        (not a rename of one), room under named_servers.limit_per_user."""
        if not self.settings.named_servers:
            raise NamedServerRefused("Named servers are not enabled.")
        if await self.row(name, server) is not None:
            return  # an existing server may start whatever its name
        limit = self.settings.named_server_limit
        if adds and limit and len(await self.store.names(name)) >= limit:
            raise NamedServerRefused(f"User {name} already has the maximum of {limit} named servers."
                                     "  One must be deleted before a new server can be created")
        if not valid_server_name(server):
            raise NamedServerRefused(f"Invalid server_name: {server}")
        if await self.store.key_taken(spawner_key(name, server)):
            raise NamedServerRefused(f"Server name {server} is not available: its unit jupyter-{spawner_key(name, server)}"
                                     " would be another server's")

    async def create(self, user_row, server, user_options=None, display_name=None):
        """JupyterHub 6's PUT: make the named server `server` without starting it; False when it
        exists. Raises NamedServerRefused or profiles.ProfileRefused as `start` does."""
        name = user_row["name"]
        user_groups = await self.db.run(groups.names_of_user, name)
        profile = profiles.choose(self.settings.profiles, user_options, user_groups)
        async with self._start_lock:
            if await self.row(name, server) is not None:
                return False
            await self.check_named(name, server)
            await self.store.create(name, server, json.dumps(profiles.user_options_of(profile)), display_name)
            return True

    async def modify(self, user_row, server, new_name=None, display_name=None, user_options=None):
        """JupyterHub 6's PATCH: rename a stopped server, set its display name or the
        user_options its next start uses (None: unchanged). Raises NoSuchServer, ServerBusy
        (it is not stopped), ServerNameTaken, NamedServerRefused (named servers off, a bad new
        name; renaming the default server adds a named one, so the limit applies) and
        profiles.ProfileRefused as `start` does."""
        name = user_row["name"]
        options = None
        if user_options is not None:
            user_groups = await self.db.run(groups.names_of_user, name)
            options = json.dumps(profiles.user_options_of(
                profiles.choose(self.settings.profiles, user_options, user_groups)))
        renamed = new_name is not None and new_name != server
        if display_name is not None and not self.settings.named_servers:  # (a rename: check_named)
            raise NamedServerRefused("Named servers are not enabled.")
        async with self._start_lock:  # no start of this server (or of the new name) meanwhile
            row = await self.row(name, server)
            if row is None:
                raise NoSuchServer(f"{name} has no server named '{server}'")
            if row.state not in DOWN or (name, server) in self.tasks:
                raise ServerBusy(f"The server {describe(name, server)} is active. Please stop it before modifying it.")
            if renamed:
                if await self.row(name, new_name) is not None:
                    raise ServerNameTaken(f"{name} already has a server named '{new_name}'")
                await self.check_named(name, new_name, adds=server == "")
            await self.store.modify(name, server, new_name=new_name if renamed else None,
                                    display_name=display_name, user_options=options)
        if renamed:
            self.progress.pop((name, server), None)
            log.info("Renamed the server %s to %s", describe(name, server), describe(name, new_name))

    async def previous_options(self, name, server=""):
        """The user_options `name`'s server `server` last started with (None: none), for a start
        that names none: JupyterHub 6 uses them again."""
        record = await self.row(name, server)
        return (json.loads(record.user_options or "{}") or None) if record is not None else None

    def _revoke_server_token(self, db, name, server):
        """(On the database thread.) The API tokens of this one server (not the user's others)."""
        tokens.revoke(db, user=name, kind="server", client_id=client_id(name, server))

    def _new_server_token(self, db, name, server=""):
        """(On the database thread.) A fresh API token for `name`'s server, which is also the
        secret of its OAuth client."""
        self._revoke_server_token(db, name, server)
        api_token = tokens.create(db, name, "server", self.server_token_scopes(name, server),
                                  client_id=client_id(name, server))
        hub_contract.register_oauth_client(db, self._oauth_client(name, server), api_token)
        return api_token

    def _run_task(self, key, coro):
        task = asyncio.create_task(coro)
        self.tasks[key] = task
        task.add_done_callback(lambda t: self.tasks.pop(key, None) if self.tasks.get(key) is t else None)
        return task

    def _oauth_client(self, name, server=""):
        prefix = self.prefix(name, server)
        return hub_contract.OAuthClient(client_id(name, server), prefix, f"Server at {prefix}",
                                        scopes.access_scopes(name, server))

    def _environment(self, name, account, port, api_token, server=""):
        client = self._oauth_client(name, server)
        app = self.settings.default_app
        env_bin = os.path.join(self.user_env, "bin")
        return self._apply_overrides({
            "PATH": f"{env_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": account.pw_dir,
            "USER": account.pw_name,
            "LOGNAME": account.pw_name,
            "SHELL": account.pw_shell or "/bin/bash",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **hub_contract.hub_environment(self.hub_api_url, self.base_url, api_token),
            **hub_contract.oauth_environment(client, f"http://127.0.0.1:{port}{client.prefix}"),
            "JPY_API_TOKEN": api_token,
            "JUPYTERHUB_ACTIVITY_URL": f"{self.hub_api_url}/users/{url_name(name)}/activity",
            "JUPYTERHUB_USER": name,
            "JUPYTERHUB_SERVER_NAME": server,
            "JUPYTERHUB_DEFAULT_URL": DEFAULT_URLS[app],
            "JUPYTERHUB_ADMIN_ACCESS": "1",
            **self._public_urls(client.prefix),
            **environments.spawn_environment(self.paths),  # the kernels of environments.*
            # tljh_kernel_prewarm (in the user environment) forks this server's kernels; it takes
            # the variable out of the server's environment, so kernels never see it.
            **({KERNEL_PREWARM_ENV: "1"} if self.settings.kernel_prewarm else {}),
            **collaboration.spawn_environment(self.settings.collaboration, self.paths),  # collaboration.enabled
        })

    def _apply_overrides(self, env):
        """Spawner.environment and .default_url (jupyterhub_config); the hub's own JUPYTERHUB_*
        variables stay as they are, as in JupyterHub."""
        for key, value in self.overrides.get("environment", {}).items():
            if not key.startswith(("JUPYTERHUB_", "JPY_")):
                env[key] = value
        if "default_url" in self.overrides:
            env["JUPYTERHUB_DEFAULT_URL"] = self.overrides["default_url"]
        return env

    def _server_from(self, profile):
        """(jupyterhub-singleuser, PATH or None) to start with: the user environment's, or that
        of the environment the chosen profile names (started fresh: the pre-warm launcher
        serves the user environment only)."""
        if profile is not None and profile.environment:
            try:
                where = environments.server_from(self.paths, self.settings.environments, profile.environment,
                                                 self.user_env)
            except environments.EnvironmentProblem as e:
                raise SpawnError(f"profile {profile.slug!r}: {e}") from None
            return where.singleuser, where.path
        singleuser = os.path.join(self.user_env, "bin", "jupyterhub-singleuser")
        if not os.access(singleuser, os.X_OK):
            raise SpawnError(
                f"jupyterhub-singleuser was not found in the user environment "
                f"{self.user_env} (config key user_environment.path)"
            )
        return singleuser, None

    def _command(self, singleuser, name, account):
        """jupyterhub-singleuser, or Spawner.cmd (a bare name is looked up in the user environment
        first), then Spawner.args and Spawner.notebook_dir (`~` and {username} expanded)."""
        cmd = list(self.overrides.get("cmd") or [singleuser])
        if not os.path.isabs(cmd[0]):
            local = os.path.join(self.user_env, "bin", cmd[0])
            cmd[0] = local if os.access(local, os.X_OK) else (shutil.which(cmd[0]) or cmd[0])
        cmd += self.overrides.get("args", [])
        notebook_dir = self.overrides.get("notebook_dir")
        if notebook_dir:
            notebook_dir = notebook_dir.replace("{username}", account.pw_name).replace("{name}", name)
            if notebook_dir.startswith("~"):
                notebook_dir = account.pw_dir + notebook_dir[1:]
            cmd.append(f"--notebook-dir={notebook_dir}")
        return cmd

    def _public_urls(self, prefix):
        """With HTTPS on a known domain, servers learn their public URL (for links they print)."""
        origin = self.settings.public_origin
        if origin is None:
            return {}
        return {"JUPYTERHUB_PUBLIC_URL": origin + prefix, "JUPYTERHUB_PUBLIC_HUB_URL": origin + join(self.base_url, "/hub/")}

    @property
    def base_url(self):
        return self.settings.base_url

    def prefix(self, name, server=""):
        """The URL path of `name`'s server (under base_url), as routed by Traefik."""
        return server_prefix(name, server, base_url=self.base_url)

    def _extra_groups(self, name):
        """users.extra_user_groups: {group: [user, ...]} as in TLJH."""
        groups = self.settings.extra_user_groups
        return [group for group, members in groups.items() if name in members]

    @property
    def user_env(self):
        return self.settings.user_env

    async def _spawn(self, user_row, progress, profile=None, user_groups=(), server=""):
        name = user_row["name"]
        prefix = self.prefix(name, server)
        backend_key = spawner_key(name, server)
        state = None
        started = time.perf_counter()
        phases = Phases(started)
        try:
            await progress.emit(0, "Server requested")
            username = self.authenticator.system_username(name)
            await progress.emit(10, f"Preparing the Unix account {username}")
            try:
                account, created = await self.ensure_account(
                    username,
                    admin=bool(user_row["admin"]),
                    extra_groups=self._extra_groups(name),
                    create=self.authenticator.creates_accounts,
                )
            except accounts.AccountError as e:
                raise SpawnError(str(e)) from None
            if created:
                await asyncio.to_thread(self.plugins.call_each, "tljh_new_user_create", username=username)
            if self.settings.shared_folders:
                await asyncio.to_thread(shared_folders.link_into_home, self.settings.shared_folders, account)
            phases.mark("account")
            singleuser, path = self._server_from(profile)
            port = free_port()
            api_token = await self.db.run(self._new_server_token, name, server)
            env = self._environment(name, account, port, api_token, server)
            if path:
                env["PATH"] = path  # the profile's environment first
            cmd = self._command(singleuser, name, account)
            # limits.*, then limits.groups for the user's groups, then the profile's (profiles.py)
            configured = profiles.effective_limits(self.settings.limits, self.settings.group_limits,
                                                   user_groups, profile)
            limits = dict(configured)
            self.plugins.call_each("tljh_pre_spawn", user=name, env=env, limits=limits)  # one that raises: logged, skipped
            for key, value in hub_contract.limits_environment(limits, self.overrides).items():
                env.setdefault(key, value)  # the limits as started (after plugins); a plugin's own value stays
            request = SpawnRequest(
                user=backend_key,
                username=account.pw_name,
                uid=account.pw_uid,
                gid=account.pw_gid,
                home=account.pw_dir,
                admin=bool(user_row["admin"]),
                cmd=cmd,
                env=env,
                log_path=os.path.join(self.paths.logs_dir, f"{account.pw_name}{'-' + server if server else ''}.log"),
                limits=limits,
                port=port,
                groups=list(user_groups),
                profile=profile,
            )
            capabilities = self.spawner.capabilities
            slot = (self.admission.slot(progress, light=self.spawner.light_start(request))
                    if capabilities.admission else _no_slot())
            async with slot:
                if capabilities.admission:
                    phases.mark("queue")  # the hub's own admission queue
                await progress.emit(30, capabilities.start_message)
                state = await self.spawner.start(request)
                phases.mark("launch")
                await self.store.launched(name, state, port, limits=limit_changes.encode(configured), name=server)
                host, port = await self._follow_start(request, state, progress, phases)
                await progress.emit(50, "Waiting for the server to respond")
                # Traefik's reload overlaps the server's own start-up.
                target = target_url(host, port)
                route = asyncio.create_task(self.proxy.add_route(prefix, target))
                try:
                    await self._wait_ready(backend_key, state, f"{target}{prefix}api", request.log_path)
                except BaseException:
                    route.cancel()
                    raise
                phases.mark("answer")
                await progress.emit(90, f"Routing {prefix}")
                await route
                phases.mark("route")
            await self.store.running(name, host, port, last_activity=timeutil.isoformat(timeutil.now()), name=server)
            log.info("Server for %s is ready at %s (%s) in %.2fs (%s)", describe(name, server), prefix,
                     describe_state(state),
                     time.perf_counter() - started, phases)
            self._spawn_ended(name, time.perf_counter() - started, True)
            await progress.emit(
                100,
                f"Server ready at {prefix}",
                ready=True,
                html_message=f'Server ready at <a href="{prefix}">{prefix}</a>',
                url=prefix,
            )
        except asyncio.CancelledError:
            await self._cleanup_failed(name, server, state, "the start was cancelled", ServerState.CANCELLED)
            # Whoever watches the progress stream learns the outcome (and stops waiting).
            await progress.emit(100, "The start was cancelled", failed=True, cancelled=True)
            raise
        except Exception as e:
            if isinstance(e, (SpawnError, TimeoutError)):
                reason = str(e)
            elif storage.is_storage_fault(e):
                reason = f"the hub cannot save changes: {storage.reason_for(e)}"
            else:
                reason = f"{type(e).__name__}: {e}"
                log.exception("Spawn for %s failed unexpectedly", describe(name, server))
            log.warning("Spawn for %s failed: %s", describe(name, server), reason)
            await self._cleanup_failed(name, server, state, reason)
            self._spawn_ended(name, time.perf_counter() - started, False)
            await progress.emit(100, f"Spawn failed: {reason}", failed=True)

    async def _follow_start(self, request, state, progress, phases):
        """Relay the spawner's start-up events (Spawner.progress) to the progress stream and the
        ready line's phases; (host, port) where the server will answer."""
        host, port = None, request.port
        async with contextlib.aclosing(self.spawner.progress(request, state)) as events:
            async for event in events:
                if "phase" in event:
                    phases.mark(str(event["phase"]))
                if "message" in event:
                    extra = {k: v for k, v in event.items() if k not in _NOT_RELAYED}
                    await progress.emit(event.get("progress", 40), str(event["message"]), **extra)
                if "port" in event:
                    host, port = event.get("host"), int(event["port"])
                    break
        return host, port

    def _spawn_ended(self, name, seconds, ok):
        self.metrics.spawn_duration.labels("success" if ok else "failure").observe(seconds)
        if self.record_spawn is not None:
            self.record_spawn(name, seconds, ok)

    async def _cleanup_failed(self, name, server, spawner_state, reason, state=ServerState.FAILED):
        if spawner_state is not None:
            await self.spawner.stop(spawner_key(name, server), spawner_state, self.settings.stop_timeout)
        try:
            await self.proxy.delete_route(self.prefix(name, server), wait=False)
            await self.db.run(self._revoke_server_token, name, server)
            await self.store.down(name, state, message=reason, name=server)
        except Exception as e:
            if not storage.is_storage_fault(e):
                raise
            # The failure is still reported (progress); the row says pending until the next start.
            log.error("Could not record the failed spawn of %s: %s", describe(name, server), e)

    async def _wait_ready(self, key, state, url, log_path):
        loop = asyncio.get_running_loop()
        timeout = self.settings.start_timeout
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            ended = await self.spawner.poll(key, state)
            if ended:
                tail = await self.spawner.output_tail(key, state, log_path)
                last = ("Last output: " + " | ".join(tail)) if tail else ""
                raise SpawnError(f"{ended} before answering. {last}".strip())
            try:
                async with self.http.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status < 500:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            await asyncio.sleep(self.ready_poll_interval)
        raise SpawnError(f"the server did not answer within {timeout}s (spawner.start_timeout)")

    # -- stop ------------------------------------------------------------------

    def stop(self, name, server=""):
        """Stop `name`'s server in the background (cancelling a pending start)."""
        pending = self.tasks.get((name, server))
        return self._run_task((name, server), self._stop(name, pending, server))

    async def remove(self, name, server):
        """Stop a named server and delete its row (JupyterHub's DELETE with {"remove": true})."""
        await self.stop(name, server)
        await self.store.remove(name, server)
        self.progress.pop((name, server), None)
        log.info("Removed the server %s", describe(name, server))

    async def _stop(self, name, pending=None, server=""):
        if pending is not None and not pending.done():
            pending.cancel()
            try:
                await pending
            except (asyncio.CancelledError, Exception):
                pass
        row = await self.row(name, server)
        if row is None or row.state in DOWN:
            return
        await self.store.stopping(name, server)
        await self.db.run(self._revoke_server_token, name, server)
        # Browsers' OAuth tokens stay valid (as in JupyterHub): open tabs reconnect after a restart.
        await self.proxy.delete_route(self.prefix(name, server))
        if row.spawner_state is not None:
            await self.spawner.stop(spawner_key(name, server), row.spawner_state, self.settings.stop_timeout)
        await self.store.down(name, name=server)
        self.progress.pop((name, server), None)
        log.info("Stopped the server of %s", describe(name, server))

    async def restart(self, name, reason, server=""):
        """Stop `name`'s server and start it again (e.g. without the admin rights it started
        with: a process keeps its groups). 'restarted', or 'stopped' when it cannot start now."""
        await self.stop(name, server)
        row = await self.db.one("SELECT * FROM users WHERE name=?", (name,))
        if row is None:
            return "stopped"
        options = await self.previous_options(name, server)  # the same profile
        try:
            try:
                await self.start(row, options, server)
            except profiles.ProfileRefused:  # that profile is gone (or no longer open to the user)
                await self.start(row, None, server)
        except (ServerBusy, SpawnLimitReached, profiles.ProfileRefused, NamedServerRefused) as e:
            log.warning("Stopped the server of %s (%s) but could not start it again: %s",
                        describe(name, server), reason, e)
            return "stopped"
        log.info("Restarting the server of %s: %s", describe(name, server), reason)
        return "restarted"

    # -- restart recovery and watching -------------------------------------------

    async def reconcile(self):
        """After a (re)start: re-adopt live servers, forget dead ones, rewrite all routes."""
        routes = {}
        for row in await self.store.in_states(*ACTIVE):
            name, server, key = row.user, row.name, spawner_key(row.user, row.name)
            state = row.spawner_state  # what the spawner returned from start (None: nothing started)
            alive = state is not None and await self.spawner.poll(key, state) is None
            if alive and row.state == ServerState.RUNNING:
                routes[self.prefix(name, server)] = target_of(row)
                log.info("Re-adopted the running server of %s (%s)", describe(name, server), describe_state(state))
            elif alive:
                log.info("Stopping the server of %s left %s by the previous daemon", describe(name, server), row.state)
                await self.spawner.stop(key, state, self.settings.stop_timeout)
                await self._mark_gone(name, "the hub restarted while the server was starting", server)
            else:
                await self._mark_gone(name, "the server stopped while the hub was down", server)
        await self.proxy.set_routes(routes)
        for prefix in routes:
            await self.proxy.wait_for_route(prefix, present=True)

    async def _mark_gone(self, name, message, server=""):
        await self.db.run(self._revoke_server_token, name, server)
        await self.store.down(name, message=message, name=server)

    def start_watching(self):
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self):
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.check_running()
            except Exception:
                log.exception("Checking running servers failed")

    async def check_running(self):
        rows = await self.store.in_states(ServerState.RUNNING)
        keys = {spawner_key(row.user, row.name): (row.user, row.name) for row in rows
                if (row.user, row.name) not in self.tasks}
        servers = [(spawner_key(row.user, row.name), row.spawner_state) for row in rows
                   if (row.user, row.name) not in self.tasks]
        for key, ended in (await self.spawner.poll_all(servers)).items():
            name, server = keys[key]
            if ended and (name, server) not in self.tasks and await self.state(name, server) == ServerState.RUNNING:
                log.warning("The server of %s stopped on its own: %s", describe(name, server), ended)
                try:  # as on a stop: the server counts as gone once Traefik has dropped its route
                    await self.proxy.delete_route(self.prefix(name, server))
                except TimeoutError as e:
                    log.warning("%s", e)
                await self._mark_gone(name, ended, server)
            elif not ended:
                await self._report_oom_kills(name, server)

    async def _report_oom_kills(self, name, server=""):
        """Log when the kernel killed one of a server's processes (a kernel) for memory."""
        count = self.spawner.oom_kills(spawner_key(name, server))
        seen = self._oom_kills_seen.get((name, server), 0)
        if count and count > seen:
            row = await self.row(name, server)
            memory = json.loads(row.limits or "{}").get("memory") if row else None
            log.warning("The kernel killed %d process(es) of %s's server for going over its memory limit (%s)",
                        count - seen, describe(name, server), memory)
        self._oom_kills_seen[(name, server)] = count or 0

    def report_port(self, name, port, token_client_id=None):
        """A starting batch job's server says where it listens; False when no start awaits it.
        Which of the user's servers it is comes from its token's OAuth client id."""
        server = next((s for user, s in self.tasks if user == name and client_id(name, s) == token_client_id), "")
        return (name, server) in self.tasks and self.spawner.port_reported(spawner_key(name, server), port)

    async def close(self):
        """Stop watching and cancel starts and stops under way (a cancelled start cleans up)."""
        await cancel_and_wait(self._watcher, *self.tasks.values())


# Keys of a spawner's progress event that are the hub's, not passed on to the progress stream.
_NOT_RELAYED = {"progress", "message", "phase", "host", "port", "ready", "failed"}


def describe_state(state):
    """A spawner state for a log line: "pid 123", "job_id 45" (a local server's start time left out)."""
    return ", ".join(f"{key} {value}" for key, value in (state or {}).items() if key != "create_time")


@contextlib.asynccontextmanager
async def _no_slot():
    yield
