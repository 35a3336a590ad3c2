"""Spawner backends: how a user's jupyterhub-singleuser process is run and watched."""

from .base import ServerHandle, SpawnRequest, Spawner, SpawnError
from .process import ProcessSpawner

__all__ = ["ServerHandle", "SpawnRequest", "Spawner", "SpawnError", "ProcessSpawner"]
