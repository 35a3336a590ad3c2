"""Backends found through entry points: the built-in ones, and a plugin's with its own schema."""

import pytest

from tljh_daemon import backends
from tljh_daemon import config as config_mod
from tljh_daemon import settings
from tljh_daemon.paths import Paths
from tljh_daemon.spawner import Spawner


def test_the_built_in_backends_are_registered_as_entry_points():
    assert set(backends.registered(backends.SPAWNERS)) >= {"local", "slurm"}
    assert set(backends.registered(backends.AUTHENTICATORS)) >= {
        "dummy", "firstuse", "generic", "github", "google", "ldap", "native", "pam", "tmp"}
    for name, cls in backends.registered(backends.AUTHENTICATORS).items():
        assert cls.short_name == name


class ToySpawner(Spawner):
    section = "toy"
    SCHEMA = {"type": "object", "additionalProperties": False, "properties": {"size": {"type": "integer"}}}

    @classmethod
    def build(cls, settings, paths, mode):
        spawner = cls()
        spawner.size = settings.spawner.sections["toy"]["size"]
        return spawner


@pytest.fixture
def toy_registered(monkeypatch):
    found = {backends.SPAWNERS: {**backends.registered(backends.SPAWNERS), "toy": ToySpawner},
             backends.AUTHENTICATORS: backends.registered(backends.AUTHENTICATORS)}
    monkeypatch.setattr(backends, "registered", found.__getitem__)


def load(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return config_mod.load(str(path))


def test_an_unknown_spawner_type_names_the_key_and_the_registered_ones(tmp_path):
    with pytest.raises(config_mod.ConfigError) as e:
        load(tmp_path, "spawner:\n  type: toy\n")
    assert e.value.key == "spawner.type"
    assert "'toy' is not one of the registered spawners: local, slurm" in str(e.value)


def test_a_plugin_spawner_brings_its_schema_and_reads_its_section(tmp_path, toy_registered):
    with pytest.raises(config_mod.ConfigError) as e:
        load(tmp_path, "spawner:\n  type: toy\n  toy:\n    size: big\n")
    assert e.value.key == "spawner.toy.size"
    config = load(tmp_path, "spawner:\n  type: toy\n  toy:\n    size: 3\n")
    paths = Paths(str(tmp_path))
    hub_settings = settings.from_config(config, paths)
    spawner = backends.registered(backends.SPAWNERS)[hub_settings.spawner.type].build(hub_settings, paths, "process")
    assert isinstance(spawner, ToySpawner) and spawner.size == 3
