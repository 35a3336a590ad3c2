"""`tljh-config`: show and change config.yaml with TLJH's verbs, then reload.

Every change is validated against the schema before the file is written (the
message names the key and what is allowed), written atomically under a lock,
and keeps comments and key order.
"""

import json
import os
import signal
import sys

import click
import psutil

from . import config as config_mod
from . import cgroups, collaboration, configfile, environments, limit_changes, pidfile, service, systemd
from .files import write_atomically
from .paths import Paths
from .paths import default_prefix as install_prefix


def default_prefix():
    """The prefix this tljh-config was installed into (<prefix>/hub/bin/tljh-config)."""
    if os.environ.get("TLJH_INSTALL_PREFIX"):
        return os.environ["TLJH_INSTALL_PREFIX"]
    candidate = os.path.dirname(sys.prefix)
    if os.path.isdir(os.path.join(candidate, "config")):
        return candidate
    return install_prefix()


def parse_value(text):
    """TLJH's parsing: true/false, integers, floats, none; anything else is a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _walk(data, key, create):
    """The mapping holding the last part of a dotted key, and that part."""
    parts = key.split(".")
    if not all(parts):
        raise click.ClickException(f"{key!r} is not a valid key")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            if not create:
                return None, parts[-1]
            child = node[part] = {}
        if not isinstance(child, dict):
            raise click.ClickException(f"{'.'.join(parts[:i + 1])} is not a mapping")
        node = child
    return node, parts[-1]


def _prune_empty(data, key):
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent, _ = _walk(data, ".".join(parts[:depth]), create=False)
        child = parent.get(parts[depth - 1]) if parent is not None else None
        if isinstance(child, dict) and not child:
            del parent[parts[depth - 1]]


class Context:
    def __init__(self, prefix):
        self.paths = Paths(os.path.abspath(prefix))

    def edit(self):
        return configfile.editing(self.paths.config_file)


pass_ctx = click.make_pass_decorator(Context)


@click.group()
@click.option("--prefix", default=default_prefix, show_default="the install's prefix",
              help="Install prefix holding config/config.yaml.")
@click.pass_context
def main(ctx, prefix):
    """Show and change the configuration of The Littlest JupyterHub."""
    require_root()
    ctx.obj = Context(prefix)


def require_root():
    """config.yaml holds secrets and is root's (mode 0600); say so instead of a permission error."""
    if os.geteuid() != 0:
        raise click.ClickException("tljh-config needs root: run it with sudo")


# Keys that name a file: `set` checks that this one file exists (the pairing is checked at reload).
FILE_KEYS = ("https.tls.cert", "https.tls.key", "https.letsencrypt.acme_ca_file", "https.letsencrypt.dns_env_file")


def _run_edit(ctx, change):
    try:
        with ctx.edit() as data:
            change(data)
    except config_mod.ConfigError as e:
        raise click.ClickException(f"{e}. {ctx.paths.config_file} was not changed.") from None


@main.command()
@pass_ctx
def show(ctx):
    """Print config.yaml, with passwords and secrets masked."""
    try:
        text = config_mod.read_text(ctx.paths.config_file)
        if text is not None:
            click.echo(configfile.masked(text), nl=False)
    except config_mod.ConfigError as e:
        raise click.ClickException(f"{ctx.paths.config_file}: {e}") from None


@main.command()
@click.argument("key")
@pass_ctx
def get(ctx, key):
    """Print the value of KEY (from config.yaml, else its default)."""
    try:
        data = config_mod.load(ctx.paths.config_file)
    except config_mod.ConfigError as e:
        raise click.ClickException(str(e)) from None
    parent, last = _walk(data, key, create=False)
    if parent is None or last not in parent:
        raise click.ClickException(f"{key} is not set and has no default")
    value = parent[last]
    click.echo(value if isinstance(value, str) else json.dumps(value))


# Values may start with "-" (`set http.port -1`): take them as values, not as options.
VALUE_COMMAND = {"context_settings": {"ignore_unknown_options": True}}


@main.command("set", **VALUE_COMMAND)
@click.argument("key")
@click.argument("value")
@pass_ctx
def set_(ctx, key, value):
    """Set KEY to VALUE (true/false, numbers and none are parsed)."""
    parsed = parse_value(value)
    if key in FILE_KEYS and parsed and not os.path.isfile(str(parsed)):
        raise click.ClickException(f"config key {key!r}: the file {value} does not exist. "
                                   f"{ctx.paths.config_file} was not changed.")

    moved = []

    def change(data):
        old_base = data.get("base_url") or config_mod.DEFAULTS["base_url"]
        parent, last = _walk(data, key, create=True)
        parent[last] = parsed
        if key == "base_url" and isinstance(parsed, str):
            # The hub's OAuth callback page moves with base_url: keep the two in step.
            moved.extend(config_mod.callbacks_moved_with_base_url(data, old_base, parsed))
        elif key.startswith("auth.") and key.endswith(".oauth_callback_url") and parsed:
            base_url = data.get("base_url") or config_mod.DEFAULTS["base_url"]
            if not config_mod.callback_fits(str(parsed), base_url):
                raise config_mod.ConfigError(key, config_mod.callback_advice(str(parsed), base_url))

    _run_edit(ctx, change)
    for moved_key, before, after in moved:
        click.echo(f"Also changed {moved_key} from {before} to {after} (the hub's callback page is under "
                   f"base_url): register the new URL with your OAuth provider.")
    if key.startswith("limits.") and parse_value(value) is not None:
        click.echo(limit_enforcement(ctx.paths, key))


def limit_enforcement(paths, key):
    """Whether this machine can enforce `key` (a limits.* key), in a sentence for the admin."""
    if config_mod.load_yaml(paths.config_file).get("spawner", {}).get("type") == "slurm":
        option = "--mem" if key.endswith(".memory") else "--cpus-per-task"
        return (f"{key} becomes each Slurm job's {option} (unless spawner.slurm sets it); "
                f"the cluster enforces it as its TaskPlugin is configured.")
    if systemd.booted():
        return f"{key} is enforced by systemd for each user server."
    groups = cgroups.Cgroups(cgroups.cgroup_tag(paths.prefix))
    if groups.available:
        return f"{key} is enforced with a cgroup (v{groups.version}) per user server."
    return f"Warning: {key} is NOT enforced on this machine ({groups.reason})."


@main.command()
@click.argument("key")
@pass_ctx
def unset(ctx, key):
    """Remove KEY (back to its default)."""
    def change(data):
        parent, last = _walk(data, key, create=False)
        if parent is None or last not in parent:
            raise click.ClickException(f"{key} is not set")
        del parent[last]
        _prune_empty(data, key)

    _run_edit(ctx, change)


@main.command("add-item", **VALUE_COMMAND)
@click.argument("key")
@click.argument("value")
@pass_ctx
def add_item(ctx, key, value):
    """Append VALUE to the list at KEY."""
    def change(data):
        parent, last = _walk(data, key, create=True)
        items = parent.setdefault(last, [])
        if not isinstance(items, list):
            raise click.ClickException(f"{key} is not a list")
        item = parse_value(value)
        if item not in items:
            items.append(item)

    _run_edit(ctx, change)


@main.command("remove-item", **VALUE_COMMAND)
@click.argument("key")
@click.argument("value")
@pass_ctx
def remove_item(ctx, key, value):
    """Remove VALUE from the list at KEY."""
    def change(data):
        parent, last = _walk(data, key, create=False)
        items = parent.get(last) if parent is not None else None
        item = parse_value(value)
        if not isinstance(items, list) or item not in items:
            raise click.ClickException(f"{value!r} is not in {key}")
        items.remove(item)

    _run_edit(ctx, change)
    if key == "users.admin":
        click.echo(f"At the next `tljh-config reload`, {value} is no longer an admin; a running server "
                   f"of theirs is then restarted without admin rights (sudo).")


@main.group()
def export():
    """Write this hub's settings in another product's format."""


@export.command("z2jh")
@click.option("-o", "--output", default="z2jh-values.yaml", show_default=True,
              help="The values file to write ('-' for standard output). It holds secrets: mode 0600.")
@pass_ctx
def export_z2jh(ctx, output):
    """A Helm values file for the Zero to JupyterHub chart; prints what could not be mapped."""
    from . import z2jh

    try:
        config = config_mod.load(ctx.paths.config_file)
    except config_mod.ConfigError as e:
        raise click.ClickException(str(e)) from None
    from . import jupyterhub_config
    from . import plugins as plugin_loading

    os.environ.setdefault("TLJH_INSTALL_PREFIX", ctx.paths.prefix)  # for plugins' tljh.config
    plugins = plugin_loading.load()
    # What the running hub applies: config.yaml, then plugins and jupyterhub_config.d over it.
    extra = jupyterhub_config.load(config, ctx.paths.config_dir, plugins)
    user_env = extra.config["user_environment"]["path"] or ctx.paths.user_env
    packages = z2jh.user_packages(user_env)
    result = z2jh.Export(config, groups=z2jh.hub_groups(ctx.paths.database), user_packages=packages,
                         extra=extra, plugin_keys=config_mod.plugin_keys(ctx.paths.config_dir),
                         plugins=[(name, plugins.packages.get(name, "?")) for name, _ in plugins.list_name_plugin()])
    text = z2jh.dump(result.values, z2jh.image_note(packages) if packages else None)
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_atomically(os.path.abspath(output), text, mode=0o600)
        click.echo(f"Wrote {output} (mode 0600: it holds this hub's secrets).", err=True)
    if result.unmapped:
        click.echo("Not mapped (set these by hand on Kubernetes):", err=True)
        for key, reason in result.unmapped:
            click.echo(f"  {key}: {reason}", err=True)


@main.command()
@click.argument("what", type=click.Choice(["hub", "proxy"]), default="hub")
@pass_ctx
def reload(ctx, what):
    """Apply config changes: restart the hub (user servers keep running) or the proxy.

    The settings that tie keys together (e.g. a certificate with its key) are checked
    first; if they do not fit, nothing is applied and the running hub is left as it was."""
    try:
        config = config_mod.load(ctx.paths.config_file)
    except config_mod.ConfigError as e:
        raise click.ClickException(
            f"not reloading the {what}: {e}. Nothing was applied; the running hub is unchanged.") from None
    if what == "proxy":
        _reload_proxy(ctx.paths)
    else:
        _reload_hub(ctx.paths)
    click.echo(f"Reloaded the {what}.")
    if what == "hub":
        kept = limit_changes.running_with_other_limits(ctx.paths.database, config)
        if kept:
            click.echo(f"Running servers keep the limits they started with until their next start: "
                       f"{', '.join(kept)}. New limits.* apply to servers started from now on; stop and "
                       f"start these (admin panel) to apply them now.")
        unbuilt = environments.not_built(ctx.paths, config["environments"])
        if unbuilt:
            click.echo(f"Not built yet: environments {', '.join(unbuilt)}. The installer builds them: run it "
                       f"again as you installed (see docs/howto-environments.md).")
        note = collaboration.missing_note(config, ctx.paths.user_env)
        if note:
            click.echo(note)


def _reload_hub(paths):
    if service.daemon_unit_installed():
        _systemctl("restart", service.DAEMON_UNIT)
        return
    proc, log_path = service.restart_process_mode(paths)
    try:
        service.wait_for_hub(paths, proc=proc, log_path=log_path)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None


def _reload_proxy(paths):
    """The daemon owns Traefik's configuration: ask it (SIGHUP) to re-read and apply it."""
    if service.daemon_unit_installed():
        _systemctl("kill", "--kill-who=main", "--signal=HUP", service.DAEMON_UNIT)
        return
    proc, _ = pidfile.identify(paths)
    try:
        if proc is None:
            raise psutil.NoSuchProcess(0)
        proc.send_signal(signal.SIGHUP)
    except psutil.Error:
        raise click.ClickException("the hub is not running; start it first") from None


def _systemctl(*args):
    try:
        systemd.run_systemctl(*args)
    except systemd.SystemdError as e:
        raise click.ClickException(str(e)) from None


if __name__ == "__main__":
    main()
