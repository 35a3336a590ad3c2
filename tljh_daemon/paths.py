"""Where things live under an install prefix (TLJH's layout: hub, user, config, state)."""

import os
from dataclasses import dataclass

DEFAULT_PREFIX = "/opt/tljh"


#: files an install writes outside its prefix (the installer writes them, uninstall removes them)
SUDOERS_FILE = "/etc/sudoers.d/jupyterhub-admins"  # machine-wide: the default install's
PROFILE_DIR = "/etc/profile.d"


def default_prefix():
    """The install prefix: $TLJH_INSTALL_PREFIX (set in the daemon's unit), else /opt/tljh as in TLJH."""
    return os.environ.get("TLJH_INSTALL_PREFIX") or DEFAULT_PREFIX


@dataclass(frozen=True)
class Paths:
    prefix: str

    @property
    def hub_env(self):
        return os.path.join(self.prefix, "hub")

    @property
    def user_env(self):
        return os.path.join(self.prefix, "user")

    @property
    def config_dir(self):
        return os.path.join(self.prefix, "config")

    @property
    def config_file(self):
        return os.path.join(self.config_dir, "config.yaml")

    @property
    def state_dir(self):
        return os.path.join(self.prefix, "state")

    @property
    def database(self):
        return os.path.join(self.state_dir, "tljh.sqlite")

    @property
    def usage_database(self):
        """The usage history (usage_history.py): apart from the hub's state, and disposable."""
        return os.path.join(self.state_dir, "usage.sqlite")

    @property
    def cookie_secret(self):
        return os.path.join(self.state_dir, "cookie_secret")

    @property
    def logs_dir(self):
        return os.path.join(self.state_dir, "logs")

    @property
    def traefik_dir(self):
        return os.path.join(self.state_dir, "traefik")

    @property
    def traefik_rules_dir(self):
        return os.path.join(self.traefik_dir, "rules")

    def ensure(self):
        """Create the private directories the daemon writes to (root-only)."""
        for path in (self.state_dir, self.logs_dir, self.traefik_dir, self.traefik_rules_dir):
            os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(self.state_dir, 0o700)


def profile_script(paths, profile_dir=PROFILE_DIR):
    """The /etc/profile.d script of this install (one per prefix, so test installs beside the
    default one never touch its file)."""
    from .cgroups import cgroup_tag

    name = "tljh-user-env.sh" if paths.prefix == DEFAULT_PREFIX else f"tljh-user-env-{cgroup_tag(paths.prefix)}.sh"
    return os.path.join(profile_dir, name)
