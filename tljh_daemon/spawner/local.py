"""`spawner.type: local`: servers on this machine, a systemd unit each or child processes."""

import os

from ..cgroups import Cgroups, cgroup_tag
from .prewarm import Launcher
from .process import ProcessSpawner
from .systemd import SystemdSpawner


class LocalSpawners:
    """The entry point of `local`: SystemdSpawner in systemd mode, else ProcessSpawner."""

    section = None

    @staticmethod
    def build(settings, paths, mode):
        launcher = None
        if settings.spawner.prewarm:
            launcher = Launcher(settings.server.user_env, paths.state_dir,
                                os.path.join(paths.logs_dir, "launcher.log"))
        if mode == "systemd":
            return SystemdSpawner(os.path.join(paths.state_dir, "spawn"), settings.server.stop_timeout,
                                  launcher=launcher)
        return ProcessSpawner(Cgroups(cgroup_tag(paths.prefix)), launcher=launcher)
