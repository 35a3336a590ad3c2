"""`python -m tljh_installer`: the steps after bootstrap.py made the hub environment."""

import argparse
import contextlib
import os
import sys
import time

from tljh_daemon import config as config_mod
from tljh_daemon import collaboration, configfile, install_marker, jupyterhub_config, links, ports, roles, service, systemd
from tljh_daemon import plugins as plugin_loading
from tljh_daemon.paths import Paths, default_prefix

from . import environments, migrate, plugins, steps, systemd_units
from .progress import Steps, setup_logging
from .progress_page import ProgressPage


def parse_admin(value):
    name, sep, password = value.partition(":")
    if not name:
        raise argparse.ArgumentTypeError("--admin needs a name (name or name:password)")
    return name.strip().lower(), (password if sep else None)


def parser():
    p = argparse.ArgumentParser(prog="tljh_installer", description="Install or upgrade the hub.")
    p.add_argument("--prefix", default=default_prefix())
    p.add_argument("--admin", action="append", default=[], type=parse_admin,
                   help="name[:password]; repeatable; each is added to users.admin")
    p.add_argument("--http-port", type=int, help="port Traefik serves HTTP on (http.port, default 80)")
    p.add_argument("--hub-port", type=int,
                   help="loopback port of the hub daemon, internal (hub.port, default 15001)")
    p.add_argument("--traefik-api-port", type=int,
                   help="loopback port of Traefik's API, internal (traefik_api.port, default 8099)")
    p.add_argument("--user-requirements-txt-url", help="requirements.txt to install into the user environment")
    p.add_argument("--show-progress-page", action="store_true",
                   help="serve a page with the install's step names on the HTTP port until the hub starts")
    p.add_argument("--machine-wide-links", action="store_true",
                   help=f"link tljh-config into {links.BIN_DIR} and put the user environment on login "
                        f"shells' PATH although the prefix is not {links.DEFAULT_PREFIX} (the default "
                        f"prefix always does)")
    p.add_argument("--plugin", action="extend", nargs="+", default=[], metavar="SPEC",
                   help="pip spec(s) of plugins to install into the hub environment "
                        "(--plugin a b, or --plugin a --plugin b)")
    return p


def _prepare(args, paths, progress, passwords, skipped, keep_user_env=False):
    """Everything before the hub starts; returns the plugin manager. What a failing plugin
    could not do is added to `skipped` (plugins.Skipped); the install goes on."""
    with progress.step("Installing plugins"):
        plugins.install(args.plugin)
        # TLJH's tljh.config reads the prefix from here when a plugin imports it.
        os.environ["TLJH_INSTALL_PREFIX"] = paths.prefix
        manager = plugin_loading.load()
        for name, _ in manager.list_name_plugin():
            print(f"    plugin: {name} (package {manager.packages.get(name, '?')})")
        skipped.add(manager.failures)
    with progress.step("Installing apt packages from plugins"):
        plugins.install_apt_packages(plugins.collected(manager, "tljh_extra_apt_packages", skipped))
    with progress.step("Installing hub packages from plugins"):
        plugins.install_hub_packages(plugins.collected(manager, "tljh_extra_hub_pip_packages", skipped))
    with progress.step("Setting up groups and admin sudo rights"):
        steps.ensure_groups()
        steps.ensure_sudoers(paths)
        print(f"    {steps.ensure_user_env_on_path(paths, machine_wide=args.machine_wide_links)}")
        print(f"    {links.link_tljh_config(paths, args.machine_wide_links)}")
    with progress.step("Setting admin passwords"):
        steps.preset_admin_passwords(paths, passwords)
        steps.secure_private_dirs(paths)
    with progress.step("Building the user environment"):
        extra_packages = [*plugins.collected(manager, "tljh_extra_user_pip_packages", skipped),
                          *collaboration.installer_packages(config_mod.load(paths.config_file))]
        steps.build_user_env(paths, extra_packages, requirements_url=args.user_requirements_txt_url,
                             keep=keep_user_env)
        conda = plugins.collected(manager, "tljh_extra_user_conda_packages", skipped)
        if conda:
            print(f"    warning: the user environment has no conda; not installed: {', '.join(conda)}")
        channels = plugins.collected(manager, "tljh_extra_user_conda_channels", skipped)
        if channels:
            print(f"    warning: the user environment has no conda; channels not used: {', '.join(channels)}")
        steps.tighten_lock_files(paths)
    with progress.step("Building the environments (environments.*)"):
        for line in environments.build_all(paths, config_mod.load(paths.config_file)["environments"]):
            print(f"    {line}")
    with progress.step("Applying plugin configuration"):
        with configfile.editing(paths.config_file) as config:
            owned = plugins.config_post_install(manager, config, paths.config_dir, skipped)
        for key, plugin in sorted(owned.items()):
            print(f"    config key {key} belongs to plugin {plugin}")
        extra = jupyterhub_config.load(config_mod.load(paths.config_file), paths.config_dir, manager)
        skipped.add(extra.errors)
        if extra.warning():
            print(f"    warning: {extra.warning()}")
        unreachable = roles.unreachable_services(extra.config)
        if unreachable:
            print(f"    note: {roles.access_note(unreachable)}")
    return manager


def main(argv=None):
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("tljh_installer: error: must run as root")
    paths = Paths(os.path.abspath(args.prefix))
    why_not = install_marker.refusal(paths.prefix)
    if why_not:
        sys.exit(f"tljh_installer: error: --prefix {paths.prefix} is {why_not}; choose a directory of its own")
    os.makedirs(paths.prefix, exist_ok=True)
    install_marker.write(paths.prefix)  # what `tljh-daemon stop` and `uninstall` look for
    log_path = setup_logging(paths.prefix)
    progress = Steps()
    admins = [name for name, _ in args.admin]
    passwords = {name: pw for name, pw in args.admin if pw}
    skipped = plugins.Skipped()
    try:
        if systemd.booted():
            service.check_units_prefix(paths)  # before changing anything
        takeover = []
        if migrate.pending(paths):
            with progress.step("Taking over The Littlest JupyterHub: config, users, groups, user environment"):
                takeover = migrate.take_over(paths)
                takeover.append(migrate.user_env_line(paths))
        with progress.step("Writing the configuration"):
            steps.configure(paths, admins, args.http_port, hub_port=args.hub_port,
                            traefik_api_port=args.traefik_api_port)
            config = config_mod.load(paths.config_file)
        with progress.step("Checking that the hub's ports are free"):
            # Before anything is installed or started; this install's own daemon and Traefik
            # (an upgrade) may hold them.
            ports.check_free(config, paths, own_pids=[service.running_daemon_pid(paths)])
        page = contextlib.ExitStack()
        if args.show_progress_page:
            try:
                page.enter_context(ProgressPage(progress, config["http"]["address"], config["http"]["port"]))
            except OSError as e:  # e.g. a re-run: Traefik already serves the hub there
                print(f"    no progress page: port {config['http']['port']} is in use ({e.strerror})")
        with page:
            manager = _prepare(args, paths, progress, passwords, skipped,
                               keep_user_env=bool(takeover) and migrate.keeps_user_env(paths))
        if systemd.booted():
            with progress.step("Starting the hub (systemd units)"):
                systemd_units.restart_systemd_mode(paths)
                service.wait_for_hub(paths)
        else:
            with progress.step("Starting the hub (process mode: systemd is not PID 1)"):
                proc, daemon_log = service.restart_process_mode(paths)
                service.wait_for_hub(paths, proc=proc, log_path=daemon_log)
        with progress.step("Running plugin post-install hooks"):
            plugins.call_each(manager, "tljh_post_install", skipped)
        if takeover:
            record = migrate.record(paths, takeover)
    except (RuntimeError, config_mod.ConfigError, ports.PortInUse, OSError) as e:
        sys.exit(f"tljh_installer: error: {e}\nFull log: {log_path}")
    url = service.hub_url(paths)
    print(f"\nThe hub is at {url}/")
    print(f"Log in as an admin ({', '.join(admins) or 'see users.admin in the config'}).")
    if systemd.booted():
        print("The hub runs as the systemd units tljh-daemon and tljh-traefik:\n"
              "  status:  systemctl status tljh-daemon\n"
              f"  logs:    journalctl -u tljh-daemon   (a user's server: {logs_command(paths)})\n"
              "  restart: systemctl restart tljh-daemon   (user servers keep running)")
    else:
        print(f"Process mode (systemd is not PID 1): the hub runs in the background, logging to {daemon_log}.\n"
              f"  a user's server log: {logs_command(paths)}\n"
              f"  stop it:  {os.path.dirname(sys.executable)}/tljh-daemon stop --prefix {paths.prefix}\n"
              f"  start it: sudo python3 bootstrap.py --prefix {paths.prefix}   (or re-run the installer)")
    print(f"Uninstall: sudo {os.path.dirname(sys.executable)}/tljh-daemon uninstall --prefix {paths.prefix}"
          "   (keeps homes and accounts)")
    if takeover:
        print("\nTaken over from The Littlest JupyterHub:\n" + "".join(f"  - {line}\n" for line in takeover)
              + f"  (also written to {record})")
    if skipped.messages:
        print("\nSkipped because a plugin failed (fix or uninstall it with "
              f"{os.path.dirname(sys.executable)}/pip uninstall <package>, then re-run the installer):\n"
              + "".join(f"  - {message}\n" for message in skipped.messages))
    print(f"Installer log: {log_path}")
    print(f"Done in {whole_install_time(progress):.1f}s.")


def logs_command(paths):
    """How to see a user's server output (tljh-daemon logs: the journal's scope or service
    under systemd, the log file in process mode)."""
    daemon = os.path.join(os.path.dirname(sys.executable), "tljh-daemon")
    default = paths.prefix == links.DEFAULT_PREFIX
    return f"sudo {daemon} logs <name>" + ("" if default else f" --prefix {paths.prefix}")


def whole_install_time(progress):
    """From bootstrap.py's start when it handed over to us, else the installer's own steps."""
    try:
        return time.time() - float(os.environ["TLJH_BOOTSTRAP_STARTED"])
    except (KeyError, ValueError):
        return progress.total
