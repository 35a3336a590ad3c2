"""Are the hub's ports free? Checked before anything starts (daemon start-up and the installer),
so a port held by another program is a clear error naming it, not a hub that seems to work while
the URL serves that other program."""

import contextlib
import os
import socket

import psutil

from .config import PORT_KEYS


def free_port():
    """A TCP port free on 127.0.0.1 right now (for a server, or a second install's internal ports)."""
    return free_ports(1)[0]


def free_ports(count):
    """`count` different TCP ports free on 127.0.0.1 right now: all are held while they are
    chosen, since two separate `free_port()` calls can return the same port."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


class PortInUse(Exception):
    """One or more configured ports are held by a program that is not part of this install."""


def configured_ports(config):
    """{port: key} of the ports this install listens on (HTTPS's only when enabled)."""
    ports = {}
    for key in PORT_KEYS:
        section, _, name = key.partition(".")
        if section == "https" and not config["https"]["enabled"]:
            continue
        ports[config[section][name]] = key
    return ports


def _listeners():
    """{port: pid or None} of every TCP socket listening on this machine (pid None: not ours to see)."""
    found = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            found.setdefault(conn.laddr.port, conn.pid)
    return found


def describe(pid):
    if pid is None:
        return "a process this user cannot see"
    try:
        proc = psutil.Process(pid)
        command = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return f"pid {pid}"
    if len(command) > 100:
        command = command[:97] + "..."
    return f"pid {pid} ({command})"


def is_ours(pid, paths, own_pids):
    """This install's own processes may hold its ports: the running daemon (an upgrade restarts it)
    and its Traefik, which is re-adopted across restarts (found by its static config file)."""
    if pid is None:
        return False
    if pid in own_pids or pid == os.getpid():
        return True
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    static_config = os.path.join(paths.traefik_dir, "traefik.yaml")
    return any(part.endswith(static_config) for part in cmdline)


def check_free(config, paths, own_pids=()):
    """Raise PortInUse naming each configured port held by another program, and that program."""
    listeners = _listeners()
    problems = []
    for port, key in configured_ports(config).items():
        if port in listeners and not is_ours(listeners[port], paths, set(own_pids)):
            problems.append(f"port {port} ({key}) is in use by {describe(listeners[port])}")
    if problems:
        raise PortInUse(
            "; ".join(problems)
            + ". Stop that program, or give this hub another port (tljh-config set <key> <port>)."
        )
