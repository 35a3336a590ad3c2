"""Where things live under an install prefix (TLJH's layout: hub, user, config, state)."""

import os
from dataclasses import dataclass


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
