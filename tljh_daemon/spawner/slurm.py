"""Slurm mode (`spawner.type: slurm`): each server is a batch job submitted as its user.

`sbatch` runs as the user (setpriv), with the job script on stdin and the spawn
environment (token included) exported to the job, so the token never appears on a
command line. In the job, slurm_wrapper.py picks a free port, reports it to the hub
(POST /hub/api/batchspawner, as JupyterHub's batchspawner does) and becomes
jupyterhub-singleuser; the hub takes the node from Slurm. The job id is the server's
state ({"job_id": n}, stored by the hub), so a restarted daemon re-adopts it.

Every Slurm command is an asyncio subprocess with a timeout: a slow controller never
blocks the event loop. One `squeue`, asking only about the hub's own jobs, answers all
questions for about a second.
"""

import asyncio
import logging
import os
import shlex
import shutil
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote

from . import slurm_wrapper
from .base import Capabilities, Spawner, SpawnError
from . import slurm_settings
from .slurm_settings import job_settings, sbatch_options

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
          "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
HOW_JOBS_END = {
    "COMPLETED": "ended",
    "CANCELLED": "was cancelled (scancel)",
    "FAILED": "failed",
    "TIMEOUT": "reached its time limit (spawner.slurm.time)",
    "NODE_FAIL": "ended because its node failed",
    "PREEMPTED": "was preempted by another job",
    "OUT_OF_MEMORY": "ran out of memory (spawner.slurm.memory)",
    "BOOT_FAIL": "could not boot its node",
    "DEADLINE": "missed its deadline",
}


class SlurmError(Exception):
    """A Slurm command failed (the controller may be down)."""


@dataclass(frozen=True)
class Job:
    id: int
    state: str
    reason: str
    node: str

    @property
    def ended(self):
        return self.state not in ACTIVE


def describe_end(job_id, job):
    """How a job ended, in a sentence for the progress page and the admin panel."""
    if job is None:
        return f"the Slurm job {job_id} is gone (it ended and Slurm no longer lists it)"
    how = HOW_JOBS_END.get(job.state, f"ended ({job.state})")
    reason = f" ({job.reason})" if job.reason not in ("", "None") and job.state != "CANCELLED" else ""
    return f"the Slurm job {job_id} {how}{reason}"


async def run(*cmd, input=None, env=None, cwd=None, timeout=COMMAND_TIMEOUT):
    """(returncode, stdout, stderr) of a command, never blocking the event loop."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd)
    except OSError as e:
        raise SlurmError(f"could not run {cmd[0]}: {e.strerror or e}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(input.encode() if input is not None else None), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SlurmError(f"{cmd[0]} did not answer within {timeout}s") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def batch_script(request):
    """The job script: the wrapper, fed to the user environment's Python on stdin."""
    python = os.path.join(os.path.dirname(request.cmd[0]), "python")
    with open(slurm_wrapper.__file__) as f:
        wrapper = f.read()
    return (
        "#!/bin/bash\n"
        f"# The Jupyter server of {request.username}, submitted by the hub (tljh-daemon).\n"
        f"exec {shlex.quote(python)} - {' '.join(map(shlex.quote, request.cmd))} <<'TLJH_WRAPPER_END'\n"
        f"{wrapper}\nTLJH_WRAPPER_END\n"
    )


class SlurmSpawner(Spawner):
    capabilities = Capabilities(
        limits=frozenset({"memory", "cpu"}),
        limits_note="Slurm (--mem and --cpus-per-task of each job; enforced as the cluster is configured)",
        admission=False,  # the cluster's scheduler decides when jobs run
        start_message="Submitting the Slurm job",
    )
    snapshot_max_age = 1.0  # seconds one squeue answer is reused
    poll_interval = 1.0  # seconds between looks at a starting job
    section = "slurm"  # spawner.slurm.* of config.yaml
    SCHEMA = slurm_settings.SCHEMA

    @classmethod
    def build(cls, settings, paths, mode):
        return cls(settings.spawner.slurm, settings.server.start_timeout)

    def __init__(self, settings, start_timeout, environ=os.environ):
        self.settings = settings
        self.start_timeout = start_timeout
        self.slurm_conf = environ.get("SLURM_CONF")
        # Found on the hub's PATH now: the spawn environment puts the user environment first.
        self.commands = {name: shutil.which(name) or name for name in ("setpriv", "sbatch", "squeue", "scancel")}
        self._snapshot: tuple[float, frozenset, dict] = (float("-inf"), frozenset(), {})  # (when, ids asked about, {id: Job})
        self._wanted = set()  # ids to ask about along with the next caller's
        self._lock = asyncio.Lock()
        self._ports = {}  # user -> future of the port their starting job's server reports

    def _env(self, extra=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(extra or {})}
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    async def jobs(self, ids, fresh=False):
        """{job id: Job} for those of `ids` (and other recently asked-about jobs) that Slurm still
        lists (ended ones stay listed for MinJobAge). One answer serves everyone for a second;
        only the hub's jobs are asked about, so a busy cluster's queue costs nothing here."""
        ids = {int(i) for i in ids}
        async with self._lock:
            taken, asked, jobs = self._snapshot
            if not fresh and ids <= asked and time.monotonic() - taken < self.snapshot_max_age:
                return jobs
            wanted = ids | self._wanted
            if not wanted:
                return {}
            code, out, err = await run(self.commands["squeue"], "--states=all", "--noheader", "--format=%i|%T|%r|%B",
                                       "--jobs=" + ",".join(map(str, sorted(wanted))), env=self._env())
            # squeue refuses a list in which no job is known any more; that just means "none".
            if code != 0 and "Invalid job id" not in err:
                raise SlurmError(f"squeue failed: {err.strip() or out.strip()}")
            jobs = {}
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 4 and parts[0].isdigit():
                    jobs[int(parts[0])] = Job(int(parts[0]), parts[1], parts[2], parts[3])
            self._wanted = set(jobs)  # those Slurm still knows; callers name theirs again
            self._snapshot = (time.monotonic(), frozenset(wanted), jobs)
            return jobs

    def log_path(self, request):
        """The job's output: in the user's home (the job runs as the user, on another node)."""
        return os.path.join(request.home, ".jupyterhub-slurm.log")

    async def start(self, request):
        settings = job_settings(self.settings, request.limits, request.groups, request.profile)
        env = dict(request.env)
        api_url = self.settings.get("hub_api_url")
        if api_url:
            env["JUPYTERHUB_API_URL"] = api_url
            env["JUPYTERHUB_ACTIVITY_URL"] = f"{api_url}/users/{quote(request.user, safe='@~')}/activity"
        env["TLJH_SLURM_BIND_ADDRESS"] = self.settings.get("bind_address") or "0.0.0.0"
        request.log_path = self.log_path(request)
        cmd = [
            self.commands["setpriv"], f"--reuid={request.uid}", f"--regid={request.gid}", "--init-groups",
            self.commands["sbatch"], "--parsable", f"--job-name=jupyterhub-{request.username}",
            f"--chdir={request.home}", f"--output={request.log_path.replace('%', '%%')}", "--open-mode=append",
            "--export=ALL", *sbatch_options(settings),
        ]
        # Its server may report its port as soon as the job runs (before progress() even looks).
        reported = self._ports[request.user] = asyncio.get_running_loop().create_future()
        try:
            code, out, err = await run(*cmd, input=batch_script(request), env=self._env(env), cwd=request.home)
            if code != 0:
                raise SpawnError(f"sbatch refused the job: {err.strip() or out.strip()}")
        except (SlurmError, SpawnError) as e:
            if self._ports.get(request.user) is reported:
                del self._ports[request.user]
            raise SpawnError(str(e)) from None
        job_id = int(out.strip().split(";")[0])
        log.info("Submitted Slurm job %s for %s (%s)", job_id, request.user, " ".join(sbatch_options(settings)))
        self._snapshot = (float("-inf"), frozenset(), {})
        return {"job_id": job_id}

    def process_of(self, state):
        return None  # a job's processes run on a node; its usage is the cluster's to report

    def port_reported(self, user, port):
        future = self._ports.get(user)
        if future is None or future.done():
            return False
        future.set_result(port)
        return True

    async def progress(self, request, state):
        """Show the queue state until the job runs and its server reported a port; then where
        it answers (the node's address and that port)."""
        reported = self._ports.setdefault(request.user, asyncio.get_running_loop().create_future())
        try:
            async for event in self._progress(request, state["job_id"], reported):
                yield event
        finally:
            if self._ports.get(request.user) is reported:
                del self._ports[request.user]

    async def _progress(self, request, job_id, reported):
        loop = asyncio.get_running_loop()
        yield {"progress": 32, "message": f"Submitted Slurm job {job_id}", "job_id": job_id}
        queue_timeout = self.settings.get("queue_timeout") or 0
        queued_since, running_since, shown = loop.time(), None, None
        while True:
            try:
                job = (await self.jobs([job_id])).get(job_id)
            except SlurmError as e:
                log.warning("%s", e)
                job = Job(job_id, "UNKNOWN", str(e), "")
            if job is None or (job.ended and job.state != "UNKNOWN"):
                tail = await self.output_tail(request.user, {"job_id": job_id}, request.log_path)
                last = ("Last output: " + " | ".join(tail)) if tail else ""
                raise SpawnError(f"{describe_end(job_id, job)}. {last}".strip())
            if job.state == "PENDING":
                message = f"queued: waiting for resources (Slurm job {job_id}, reason: {job.reason})"
                if queue_timeout and loop.time() - queued_since > queue_timeout:
                    raise SpawnError(f"the Slurm job {job_id} waited more than {queue_timeout:g}s in the "
                                     f"queue (spawner.slurm.queue_timeout); it was cancelled")
            elif job.state == "RUNNING":
                if running_since is None:
                    running_since = loop.time()
                    yield {"phase": "slurm queue"}  # submitted until Slurm ran the job
                message = f"Slurm job {job_id} is running on {job.node}; waiting for the server's port"
                if reported.done():
                    host = await self._address(job.node)
                    # "job start": the job's server up to its port report
                    yield {"phase": "job start", "host": host, "port": reported.result()}
                    return
                if loop.time() - running_since > self.start_timeout:
                    raise SpawnError(f"the server in Slurm job {job_id} did not report its port within "
                                     f"{self.start_timeout}s (spawner.start_timeout)")
            else:
                message = f"Slurm job {job_id}: {job.state.lower()}"
            if message != shown:
                yield {"progress": 35 if job.state == "PENDING" else 40, "message": message,
                       "job_id": job_id, "job_state": job.state}
                shown = message
            await asyncio.wait([reported], timeout=self.poll_interval)

    async def _address(self, node):
        """The node's IPv4 address as this machine resolves it (Traefik gets an address, not a name)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(node, None, family=socket.AF_INET)
        except OSError as e:
            raise SpawnError(f"the Slurm node {node!r} does not resolve on the hub's machine: {e}") from None
        return infos[0][4][0]

    async def poll(self, user, state):
        return (await self.poll_all([(user, state)]))[user]

    async def poll_all(self, servers):
        """None for jobs still running. When Slurm cannot be asked, servers count as running:
        a controller restart must not take everyone's servers down with it."""
        if not servers:
            return {}
        try:
            jobs = await self.jobs([_job_id(state) for _, state in servers if _job_id(state) is not None])
        except SlurmError as e:
            log.warning("Cannot check Slurm jobs: %s", e)
            return {user: None for user, _ in servers}
        result: dict[str, str | None] = {}
        for user, state in servers:
            job_id = _job_id(state)
            if job_id is None:  # a state another backend wrote (spawner.type changed)
                result[user] = "no Slurm job is recorded for this server"
                continue
            job = jobs.get(job_id)
            result[user] = None if job is not None and not job.ended else describe_end(job_id, job)
        return result

    async def stop(self, user, state, timeout):
        """scancel the job, then wait for Slurm to see it gone."""
        self._ports.pop(user, None)
        job_id = _job_id(state)
        if job_id is None:
            return
        try:
            code, out, err = await run(self.commands["scancel"], str(job_id), env=self._env())
            if code != 0:
                log.warning("scancel %s failed: %s", job_id, err.strip() or out.strip())
        except SlurmError as e:
            log.warning("%s", e)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + 5
        while loop.time() < deadline:
            try:
                job = (await self.jobs([job_id], fresh=True)).get(job_id)
            except SlurmError:
                job = None
            if job is None or (job.ended and job.state != "COMPLETING"):
                return
            await asyncio.sleep(0.5)
        log.warning("Slurm job %s of %s is still ending after %ss", job_id, user, timeout + 5)


def _job_id(state):
    """The job id in a state this backend wrote, else None."""
    return int(state["job_id"]) if state and state.get("job_id") is not None else None
