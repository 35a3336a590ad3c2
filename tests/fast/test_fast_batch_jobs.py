"""Servers that run elsewhere (Slurm): the batchspawner port report, the node address kept
across restarts, per-group job settings, and how ended jobs are described."""

import asyncio
import logging
import re
import time

import pytest

from fakes import FakeSpawner
from tljh_daemon.spawner import Capabilities, slurm, slurm_settings


class BatchFakeSpawner(FakeSpawner):
    """Like a batch job: its server says where it listens (POST /hub/api/batchspawner)."""

    capabilities = Capabilities(admission=False)

    def __init__(self):
        super().__init__()
        self.ports = {}  # user -> future of the port their server reports

    async def start(self, request):
        self.ports[request.user] = asyncio.get_running_loop().create_future()
        return await super().start(request)

    def port_reported(self, user, port):
        future = self.ports.get(user)
        if future is None or future.done():
            return False
        future.set_result(port)
        return True

    async def progress(self, request, state):
        yield {"progress": 35, "message": "queued: waiting for resources (job 7)", "job_id": 7}
        port = await self.ports[request.user]
        yield {"phase": "batch queue", "host": "127.0.0.1", "port": port}


async def report(hub, token, body):
    async with hub.api("POST", "/batchspawner", token, json=body) as resp:
        return resp.status, await resp.json()


async def test_a_batch_server_reports_its_port_with_its_own_token(start_hub, caplog):
    caplog.set_level(logging.INFO, logger="tljh_daemon")
    hub = await start_hub(spawner=BatchFakeSpawner())
    token = hub.token("ann")
    async with hub.api("POST", "/users/ann/server", token) as resp:
        assert resp.status == 202
    await hub.wait_for(lambda: hub.spawner.requests, "the job to be submitted")
    submitted = time.perf_counter()
    request = hub.spawner.requests[-1]
    server_token = request.env["JUPYTERHUB_API_TOKEN"]

    assert (await report(hub, token, {"port": request.port}))[0] == 403  # a user's own token is not enough
    assert (await report(hub, server_token, {"port": "8888"}))[0] == 400
    assert (await report(hub, server_token, {"port": 70000}))[0] == 400
    assert (await hub.hub.servers.state("ann")) == "pending"
    status, body = await report(hub, server_token, {"port": request.port})
    assert status == 201, body
    await hub.wait_for_state("ann", "running")
    waited = time.perf_counter() - submitted
    assert hub.proxy.routes["/user/ann/"] == f"http://127.0.0.1:{request.port}"
    # The ready line says where the time went: the batch system's queue, as the spawner measured
    # it (no admission "queue" step: batch spawners do not use the hub's admission queue).
    ready = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Server for ann is ready"))
    queued = float(re.search(r", launch [0-9.]+s, batch queue ([0-9.]+)s, answer", ready).group(1))
    assert queued <= waited + 0.005, ready
    assert (await report(hub, server_token, {"port": request.port}))[0] == 400  # nothing waits any more

    async with hub.api("GET", "/users/ann/server/progress", token) as resp:
        text = await resp.text()
    assert "queued: waiting for resources (job 7)" in text

    again = await start_hub(spawner=hub.spawner, prefix=hub.prefix)  # a daemon restart
    assert (await again.hub.servers.state("ann")) == "running"
    assert again.proxy.routes["/user/ann/"] == f"http://127.0.0.1:{request.port}"


async def test_stopping_a_queued_job_cancels_it(start_hub):
    hub = await start_hub(spawner=BatchFakeSpawner())
    token = hub.token("bo")
    async with hub.api("POST", "/users/bo/server", token) as resp:
        assert resp.status == 202
    await hub.wait_for(lambda: hub.spawner.requests, "the job to be submitted")
    async with hub.api("DELETE", "/users/bo/server", token) as resp:
        assert resp.status in (202, 204)
    await hub.wait_for_state("bo", "cancelled")
    assert hub.spawner.stopped == ["bo"]  # the queued job is cancelled


def test_group_overrides_and_limits_make_the_sbatch_options():
    settings = {**slurm_settings.DEFAULTS, "partition": "cpu", "time": "8:00:00", "options": ["--qos=short"],
                "groups": {"gpu-users": {"partition": "gpu", "options": ["--gres=gpu:1"]},
                           "long": {"time": "2-0"}}}
    limits = {"memory": "1.5G", "cpu": 0.5}
    assert slurm_settings.sbatch_options(slurm_settings.job_settings(settings, limits, [])) == [
        "--partition=cpu", "--time=8:00:00", "--mem=1572864K", "--cpus-per-task=1", "--qos=short"]
    assert slurm_settings.sbatch_options(slurm_settings.job_settings(settings, {}, ["long", "gpu-users"])) == [
        "--partition=gpu", "--time=2-0", "--gres=gpu:1"]


def test_ended_jobs_are_described_for_people():
    job = lambda state, reason="None": slurm.Job(12, state, reason, "node1")  # noqa: E731
    assert slurm.describe_end(12, job("CANCELLED")) == "the Slurm job 12 was cancelled (scancel)"
    assert slurm.describe_end(12, job("TIMEOUT", "TimeLimit")) == \
        "the Slurm job 12 reached its time limit (spawner.slurm.time) (TimeLimit)"
    assert slurm.describe_end(12, job("FAILED", "NonZeroExitCode")) == "the Slurm job 12 failed (NonZeroExitCode)"
    assert "no longer lists it" in slurm.describe_end(12, None)
    assert not job("PENDING").ended and not job("COMPLETING").ended and job("FAILED").ended


def test_the_job_script_runs_the_wrapper_on_stdin(tmp_path):
    request = type("R", (), {"cmd": ["/opt/tljh/user/bin/jupyterhub-singleuser"], "username": "jupyter-ann"})
    script = slurm.batch_script(request)
    assert script.startswith("#!/bin/bash\n")
    assert "exec /opt/tljh/user/bin/python - /opt/tljh/user/bin/jupyterhub-singleuser <<'TLJH_WRAPPER_END'" in script
    assert "/batchspawner" in script and script.endswith("TLJH_WRAPPER_END\n")


def test_time_limits_take_minutes_as_a_number():
    from tljh_daemon import config as config_mod

    for good in (30, "30", "8:00:00", "1-0"):
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"spawner": {"slurm": {"time": good}}}))
    with pytest.raises(config_mod.ConfigError, match="spawner.slurm.time"):
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"spawner": {"slurm": {"time": "soon"}}}))


async def test_slurm_reads_only_its_own_state(monkeypatch):
    """A state another backend wrote (spawner.type changed under a running server) is no job:
    it counts as ended, and stopping it runs no Slurm command; a job has no local process."""
    async def no_command(*cmd, **kwargs):
        raise AssertionError(f"ran {cmd}")

    monkeypatch.setattr(slurm, "run", no_command)
    spawner = slurm.SlurmSpawner(dict(slurm_settings.DEFAULTS), 60, environ={})
    local = {"pid": 4242, "create_time": 1765043123.45}
    assert await spawner.poll_all([("ann", local)]) == {"ann": "no Slurm job is recorded for this server"}
    await spawner.stop("ann", local, 1)
    assert spawner.process_of({"job_id": 12}) is None
    assert spawner.port_reported("ann", 8000) is False  # no start of ann's waits for a port


async def test_a_named_batch_server_reports_its_port_with_its_token(start_hub):
    hub = await start_hub({"named_servers": {"enabled": True}}, spawner=BatchFakeSpawner())
    token = hub.token("ann")
    for path in ("/users/ann/server", "/users/ann/servers/gpu"):
        async with hub.api("POST", path, token) as resp:
            assert resp.status == 202
    await hub.wait_for(lambda: len(hub.spawner.requests) == 2, "both jobs to be submitted")
    named = next(r for r in hub.spawner.requests if r.user == "ann-gpu")
    status, body = await report(hub, named.env["JUPYTERHUB_API_TOKEN"], {"port": named.port})
    assert status == 201, body

    async def named_running():
        return await hub.hub.servers.state("ann", "gpu") == "running"

    await hub.wait_for(named_running, "the named job's server to run")
    assert hub.proxy.routes["/user/ann/gpu/"] == f"http://127.0.0.1:{named.port}"
    assert await hub.hub.servers.state("ann") == "pending"  # the default job still waits for its own
