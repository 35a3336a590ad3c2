"""`tljh-daemon`: run the hub, or stop everything it started (process mode)."""

import asyncio
import logging
import os
import signal
import sys
import time

import click
import psutil

from . import config as config_mod
from . import install_marker, pidfile, ports, service, systemd
from .paths import Paths, default_prefix

prefix_option = click.option(
    "--prefix", default=default_prefix(), show_default=True, help="Install prefix (holds config/ and state/)."
)


@click.group()
def main():
    """The Littlest JupyterHub's hub daemon."""


def _load_config(paths, bad_names=None):
    try:
        return config_mod.load(paths.config_file, bad_names)
    except config_mod.ConfigError as e:
        raise click.ClickException(f"{paths.config_file}: {e}") from None


@main.command()
@prefix_option
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--mode", type=click.Choice(["auto", "systemd", "process"]), default="auto", show_default=True,
              help="systemd: servers are transient units, Traefik is a unit. process: child processes. "
                   "auto: systemd when it is PID 1.")
def run(prefix, log_level, mode):
    """Run the hub in the foreground."""
    from .app import make_app
    from .hub import HUB

    logging.basicConfig(
        level=log_level.upper(),
        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s",
        stream=sys.stderr,
    )
    if os.geteuid() != 0:
        logging.warning("Not running as root: servers can only be started for the current user")
    paths = Paths(os.path.abspath(prefix))
    bad_names = []
    config = _load_config(paths, bad_names)
    for key, _, reason in bad_names:  # an invalid name must not keep the hub down (Restart=always)
        logging.error("Ignoring config key %s: %s (fix it with tljh-config)", key, reason)
    why_not = install_marker.refusal(paths.prefix)
    if why_not:
        raise click.ClickException(f"not starting: {paths.prefix} is {why_not}")
    in_state_dir(paths)
    try:
        lock = pidfile.acquire(paths)
    except pidfile.AlreadyRunning as e:
        raise click.ClickException(str(e)) from None
    install_marker.write(paths.prefix)  # `stop` and `uninstall` act only where it is
    try:
        ports.check_free(config, paths)  # before Traefik or anything else starts
    except ports.PortInUse as e:
        raise click.ClickException(f"not starting: {e}") from None
    if mode == "auto":
        mode = "systemd" if systemd.booted() else "process"
    app = make_app(config, paths, mode)
    asyncio.run(_serve(app, app[HUB].settings.hub_port))
    pidfile.release(paths, lock)


def in_state_dir(paths):
    """Run where TLJH runs its hub: in <prefix>/state (plugins write relative paths there), with
    $TLJH_INSTALL_PREFIX naming the prefix (TLJH's tljh.config reads it when a plugin imports it)."""
    paths.ensure()
    os.chdir(paths.state_dir)
    os.environ["TLJH_INSTALL_PREFIX"] = paths.prefix


async def _serve(app, port):
    """Start the app, listen, and only then tell systemd we are ready; stop on SIGTERM/SIGINT."""
    from aiohttp import web

    from .handlers.middleware import AccessLogger

    # auto_decompress=False: aiohttp would inflate a compressed body on the event loop as it
    # arrives, even one no handler reads (a gzip bomb); such bodies are refused instead
    # (middleware.no_encoded_bodies).
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False, auto_decompress=False)
    await runner.setup()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    watchdog = None
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        watchdog = await systemd.notify_ready_and_keep_watchdog()
        await stopping.wait()
    finally:
        if watchdog:
            watchdog.cancel()
        await runner.cleanup()


@main.command()
@prefix_option
@click.option("--servers/--keep-servers", default=True, show_default=True,
              help="Also stop the user servers.")
def stop(prefix, servers):
    """Stop the daemon, Traefik and (by default) every user server."""
    try:
        install_marker.check(prefix)
    except install_marker.NotAnInstall as e:
        raise click.ClickException(str(e)) from None
    if systemd.booted() and service.units_prefix() == os.path.abspath(prefix):
        _stop_units(servers)
        return
    from .proxy.supervisor import TraefikSupervisor
    from .proxy.traefik import TraefikProxy
    from .settings import ProxySettings

    paths = Paths(os.path.abspath(prefix))
    _stop_daemon(paths)
    # Stopping must work even when config.yaml has become invalid (e.g. a certificate
    # file it names was removed): Traefik is found by its pid file, not by the config.
    try:
        config = config_mod.merge(config_mod.DEFAULTS, config_mod.load_yaml(paths.config_file))
    except config_mod.ConfigError:
        config = config_mod.DEFAULTS
    if TraefikSupervisor(TraefikProxy(paths, ProxySettings(), "traefik")).stop():  # needs only the pid file
        click.echo("Stopped Traefik")
    else:
        click.echo("Traefik was not running")
    if servers and os.path.exists(paths.database):
        _stop_servers(paths, config["spawner"]["stop_timeout"])
    from .links import remove_links_into

    for removed in remove_links_into(paths):
        click.echo(f"Removed {removed} (it pointed into this install, which is not the default one)")


@main.command()
@prefix_option
@click.option("--remove-users", is_flag=True,
              help="Also delete the Unix accounts the hub made (jupyter-...) and their homes.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(prefix, remove_users, yes):
    """Remove this install: stop and delete units, the daemon, Traefik, user servers, sudoers
    entries, the tljh-config link and the prefix. Homes and accounts are kept unless asked."""
    from .uninstall import uninstall as run_uninstall

    paths = Paths(os.path.abspath(prefix))
    if os.geteuid() != 0:
        raise click.ClickException("must run as root")
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException("nothing removed: there is no terminal to confirm on; "
                                       "add --yes to uninstall without asking")
        what = " and every account the hub made, with its home" if remove_users else ""
        click.confirm(f"Remove the hub installed at {paths.prefix}{what}?", abort=True)
    try:
        report = run_uninstall(paths, remove_users=remove_users, echo=click.echo)
    except (RuntimeError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Uninstalled: {len(report.removed)} removed, {len(report.kept)} kept. "
               f"Install again with: sudo python3 bootstrap.py --prefix {paths.prefix} ...")


def _stop_daemon(paths):
    """SIGTERM the daemon only if state/daemon.pid still names it (a stale file may name a
    stranger); the daemon removes the file when it stops cleanly, a stale one is removed here."""
    proc, why_not = pidfile.identify(paths)
    if proc is None:
        if why_not is None:
            click.echo("tljh-daemon was not running")
        elif pidfile.remove_stale(paths):
            click.echo(f"Not signalling: {why_not}. {pidfile.path(paths)} was stale "
                       f"(left by a daemon that did not stop cleanly); removed it")
        else:
            click.echo(f"Not signalling: {why_not}. A tljh-daemon holds the lock on {pidfile.path(paths)}; "
                       f"left it alone")
        return
    proc.terminate()
    if not _wait_gone(proc, 10):
        raise click.ClickException(f"tljh-daemon (pid {proc.pid}) did not stop within 10s")
    pidfile.remove_stale(paths)  # in case it could not remove the file itself
    click.echo(f"Stopped tljh-daemon (pid {proc.pid})")


def _wait_gone(proc, timeout):
    """Until `proc` has exited (a zombie whose parent has not reaped it yet counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _stop_servers(paths, timeout):
    """Every server gets SIGTERM at once and `timeout` seconds (spawner.stop_timeout) to exit,
    then SIGKILL: stopping 16 servers takes about as long as stopping one."""
    from .db import Database
    from .server_store import ServerStore, describe, spawner_key
    from .spawner import ProcessSpawner
    from .spawner.process import process_for

    db = Database(paths.database)
    store = ServerStore(db)
    spawner = ProcessSpawner()  # servers started by another process: found by pid and start time

    async def stop_all():
        rows = await store.with_spawner_state()
        alive = {(row.user, row.name) for row in rows if process_for(spawner.process_of(row.spawner_state))}
        await asyncio.gather(*(spawner.stop(spawner_key(row.user, row.name), row.spawner_state, timeout)
                               for row in rows))
        for row in rows:
            await store.down(row.user, message=row.message, name=row.name)
            if (row.user, row.name) in alive:  # say only what was really stopped
                click.echo(f"Stopped the server of {describe(row.user, row.name)}")
            else:
                click.echo(f"The server of {describe(row.user, row.name)} had already exited")

    try:
        asyncio.run(stop_all())
    finally:
        db.close()


def _stop_units(servers):
    """systemd mode: a SIGTERM would only get the daemon restarted (Restart=always); stop its units.
    The daemon forgets the stopped servers when it starts again."""
    try:
        units = service.stop_units(servers)
    except systemd.SystemdError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Stopped {', '.join(units)}; `systemctl start tljh-daemon` starts the hub again")


@main.command()
@prefix_option
@click.argument("name")
@click.option("-n", "--lines", type=click.IntRange(min=0), help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep showing new output.")
@click.option("--server", default="", help="A named server of the user (named_servers.enabled).")
def logs(prefix, name, lines, follow, server):
    """Show the output of user NAME's server: from the journal under systemd (its
    jupyter-<name> service or scope), from state/logs/ in process mode."""
    from . import server_logs
    from .users import InvalidName

    try:
        cmd = server_logs.command(Paths(os.path.abspath(prefix)), name, lines, follow, server)
    except (InvalidName, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
