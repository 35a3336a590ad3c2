"""Spawner backends: how a user's jupyterhub-singleuser process is run and watched."""

from .base import Capabilities, ProcessId, SpawnRequest, Spawner, SpawnError, State
from .process import ProcessSpawner

__all__ = ["Capabilities", "ProcessId", "SpawnRequest", "Spawner", "SpawnError", "State", "ProcessSpawner"]
