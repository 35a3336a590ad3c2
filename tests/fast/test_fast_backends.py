"""Backends found through entry points: the built-in ones, and a plugin's with its own schema,
state, progress events and capabilities."""

import asyncio
import json
import subprocess
import sys

import psutil
import pytest

from tljh_daemon import backends
from tljh_daemon import config as config_mod
from tljh_daemon import settings
from tljh_daemon.paths import Paths
from tljh_daemon.spawner import Capabilities, ProcessId, Spawner
from tljh_daemon.spawner.process import process_for


def test_the_built_in_backends_are_registered_as_entry_points():
    assert set(backends.registered(backends.SPAWNERS)) >= {"local", "slurm"}
    assert set(backends.registered(backends.AUTHENTICATORS)) >= {
        "dummy", "firstuse", "generic", "github", "google", "ldap", "native", "pam", "tmp"}
    for name, cls in backends.registered(backends.AUTHENTICATORS).items():
        assert cls.short_name == name


class ToySpawner(Spawner):
    """What a plugin ships: each server is a child process (a plain HTTP server, which answers
    the readiness check with 404), its state the process's PID and start time."""

    section = "toy"
    SCHEMA = {"type": "object", "additionalProperties": False, "properties": {"size": {"type": "integer"}}}
    capabilities = Capabilities(limits_note="not enforced: toy servers", start_message="Starting a toy server")
    size = 1

    @classmethod
    def build(cls, settings, paths, mode):
        spawner = cls()
        spawner.size = settings.spawner.sections["toy"]["size"]
        return spawner

    def __init__(self):
        self.children = {}  # pid -> Popen (reaped when it ends)

    async def start(self, request):
        # A toy: starting a process blocks the loop for milliseconds.
        child = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(request.port)],  # noqa: ASYNC220
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.children[child.pid] = child
        return {"pid": child.pid, "create_time": psutil.Process(child.pid).create_time(), "size": self.size}

    async def progress(self, request, state):
        yield {"progress": 40, "message": f"A toy server of size {state['size']} is starting", "size": state["size"]}
        yield {"phase": "toy warm-up"}

    async def poll(self, user, state):
        child = self.children.get(state["pid"])
        if child is not None and child.poll() is not None:
            return f"the toy server exited with status {child.returncode}"
        return None if process_for(ProcessId.from_state(state)) else "the toy server is gone"

    async def stop(self, user, state, timeout):
        proc = process_for(ProcessId.from_state(state))
        if proc is not None:
            proc.kill()
        child = self.children.pop(state["pid"], None)
        if child is not None:
            await asyncio.to_thread(child.wait)

    async def close(self):
        for child in self.children.values():
            child.kill()
            child.wait()


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


async def test_a_plugin_spawner_runs_a_server_with_its_own_state_and_progress(start_hub, caplog):
    caplog.set_level("INFO", logger="tljh_daemon")
    spawner = ToySpawner()
    hub = await start_hub(spawner=spawner)
    token = hub.token("toy")
    await hub.start_server("toy", token)
    state = (await hub.hub.servers.row("toy")).spawner_state
    assert state["size"] == 1 and psutil.Process(state["pid"]).create_time() == state["create_time"]
    async with hub.api("GET", "/users/toy/server/progress", token) as resp:
        events = [json.loads(line[len("data:"):]) for line in (await resp.text()).splitlines()
                  if line.startswith("data:")]
    messages = [e["message"] for e in events]
    assert messages.index("Starting a toy server") < messages.index("A toy server of size 1 is starting")
    assert next(e for e in events if e["message"].startswith("A toy")).get("size") == 1  # extras pass on
    ready = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Server for toy is ready"))
    assert f"(pid {state['pid']}, size 1)" in ready and ", toy warm-up " in ready, ready
    # The usage sampler finds the process through the spawner (the base class reads pid + start time).
    await hub.hub.usage.sample_once()
    assert hub.hub.usage.latest["toy"].memory_bytes > 0

    again = await start_hub(spawner=spawner, prefix=hub.prefix)  # a daemon restart: re-adopted
    assert await again.hub.servers.state("toy") == "running" and "/user/toy/" in again.proxy.routes
    async with again.api("DELETE", "/users/toy/server", token) as resp:
        assert resp.status in (202, 204)
    await again.wait_for_state("toy", "stopped")
    assert not psutil.pid_exists(state["pid"])
