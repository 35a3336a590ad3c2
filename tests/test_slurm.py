"""Slurm mode end to end: a real one-node Slurm (slurmctld, slurmd, munged on loopback), one hub.

The tests run in order, like a morning on a small cluster: alice's server runs as a batch
job and computes through Traefik; bob's start queues behind it (the progress stream says
so, with the job id) and runs once alice stops; a hub restart re-adopts bob's running job;
a job cancelled with scancel is noticed on the admin panel and on bob's home page; a job
that fails (here: a per-group sbatch option it cannot live with) says so on the progress page.
"""

import json
import re
import shutil
import time

import pytest
import requests

from hubclient import HubClient
from hubprocess import needs_root
from slurmcluster import SlurmCluster
from waiting import wait_for

pytestmark = [
    needs_root,
    pytest.mark.skipif(not shutil.which("slurmctld") or not shutil.which("munged"),
                       reason="needs Debian's slurm-wlm and munge (scripts/test installs them)"),
]
PASSWORD = "cluster-password"


@pytest.fixture(scope="session")
def slurm():
    cluster = SlurmCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def names(run_id, unix_accounts):
    names = {role: f"{run_id}-s{role}" for role in ("alice", "bob", "carol")}
    unix_accounts.extend(f"jupyter-{n}" for n in names.values())
    return names


@pytest.fixture(scope="module")
def hub(make_hub, user_env, names, slurm, monkeypatch_module):
    monkeypatch_module.setenv("SLURM_CONF", slurm.conf)  # the daemon inherits it, as from its unit
    return make_hub({
        "auth": {"type": "dummy", "DummyAuthenticator": {"password": PASSWORD}},
        "users": {"admin": [names["alice"]]},
        "user_environment": {"path": user_env},
        "spawner": {"type": "slurm", "start_timeout": 120,
                    "slurm": {"bind_address": "127.0.0.1", "time": "30",
                              # members' jobs cannot open their output file, so they fail at launch
                              "groups": {"broken-jobs": {"options": ["--output=/proc/no-such-dir/job.log"]}}}},
    })


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def logged_in(hub, name):
    client = HubClient(hub.url)
    assert client.login(name, PASSWORD).status_code == 302
    return client


@pytest.fixture(scope="module")
def alice(hub, names):
    return logged_in(hub, names["alice"])


@pytest.fixture(scope="module")
def bob(hub, names):
    return logged_in(hub, names["bob"])


def first_event(client, name, predicate, timeout=120):
    """Read the progress stream (it replays from the start) until an event matches."""
    with client.get(client.url(f"/hub/api/users/{name}/server/progress"), stream=True, timeout=timeout) as r:
        r.raise_for_status()
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                if predicate(event):
                    return event
    raise AssertionError(f"the progress stream of {name} ended without the expected event")


def open_lab(client, name):
    """Through Traefik to the job's server (and the hub's OAuth), as a browser does."""
    lab = client.get(client.url(f"/user/{name}/lab"))
    assert lab.status_code == 200 and lab.url == client.url(f"/user/{name}/lab"), lab.url


def job_of(slurm, account):
    return [(job, state) for job, state, user in slurm.jobs() if user == account]


def test_server_runs_as_a_batch_job_and_computes_through_traefik(hub, slurm, alice, names):
    name = names["alice"]
    events = alice.spawn(name)
    assert events[-1].get("ready") is True, (events, hub.log()[-3000:], slurm.logs())
    submitted = next(e for e in events if e["message"].startswith("Submitted Slurm job"))
    job_id = str(submitted["job_id"])
    assert (job_id, "RUNNING") in job_of(slurm, f"jupyter-{name}")  # submitted as the user
    open_lab(alice, name)
    kernel = alice.start_kernel(name)
    assert alice.execute(name, kernel, "6*7") == "42"
    assert alice.execute(name, kernel, "__import__('os').environ['SLURM_JOB_ID']") == repr(job_id)


def test_second_user_queues_then_starts_when_the_first_stops(hub, slurm, alice, bob, names):
    r = bob.get(bob.url(f"/hub/spawn/{names['bob']}"), allow_redirects=False)
    assert r.status_code == 302
    queued = first_event(bob, names["bob"], lambda e: "queued" in e["message"] or e.get("failed") or e.get("ready"))
    seen_queued = time.monotonic()
    assert queued["message"].startswith(f"queued: waiting for resources (Slurm job {queued['job_id']}"), queued
    page = bob.get(bob.url(f"/hub/spawn-pending/{names['bob']}"))
    assert page.status_code == 200 and "/server/progress" in page.text  # the page streams these events

    stop_asked = time.monotonic()
    assert alice.stop(names["alice"]).status_code == 302
    events = bob.progress_events(names["bob"])
    assert events[-1].get("ready") is True, (events, hub.log()[-3000:])
    # The ready line measures the job's time in Slurm's queue: at least from when we saw it queued
    # until alice's job was asked to end.
    ready = [line for line in hub.log().splitlines() if f"Server for {names['bob']} is ready" in line][-1]
    in_queue = float(re.search(r"slurm queue ([0-9.]+)s", ready).group(1))
    assert in_queue >= stop_asked - seen_queued, ready
    assert alice.get(alice.url("/hub/api/user")).json()["server"] is None
    open_lab(bob, names["bob"])
    kernel = bob.start_kernel(names["bob"])
    assert bob.execute(names["bob"], kernel, "6*7") == "42"


def test_hub_restart_readopts_the_running_job(hub, slurm, bob, names):
    name = names["bob"]
    (job_id, state), = [j for j in job_of(slurm, f"jupyter-{name}") if j[1] == "RUNNING"]
    hub.kill()
    hub.start()
    assert bob.get(bob.url(f"/user/{name}/api/status")).status_code == 200  # routed again at start-up
    assert bob.get(bob.url("/hub/api/user")).json()["server"] == f"/user/{name}/"
    assert (job_id, "RUNNING") in job_of(slurm, f"jupyter-{name}")
    assert "Re-adopted the running server of " + name in hub.log()


def test_a_cancelled_job_is_noticed(hub, slurm, alice, bob, names):
    name = names["bob"]
    (job_id, _), = [j for j in job_of(slurm, f"jupyter-{name}") if j[1] == "RUNNING"]
    slurm.run("scancel", job_id)
    expected = f"the Slurm job {job_id} was cancelled (scancel)"
    admin_page = wait_for(lambda: (lambda t: expected in t and t)(alice.get(alice.url("/hub/admin")).text),
                          "the admin panel to show the cancelled job", 60)
    row = re.search(rf'<tr data-user="{re.escape(name)}" data-state="(\w+)"', admin_page)
    assert row.group(1) == "stopped"
    assert expected in bob.get(bob.url("/hub/home")).text
    assert requests.get(hub.url + f"/user/{name}/api/status", allow_redirects=False).status_code != 200


def test_a_job_cancelled_while_queued_fails_the_start_with_that_reason(hub, slurm, alice, bob, names):
    # alice holds the node; bob's job waits, and an admin cancels it in the queue.
    assert alice.spawn(names["alice"])[-1].get("ready") is True
    bob.get(bob.url(f"/hub/spawn/{names['bob']}"), allow_redirects=False)
    queued = first_event(bob, names["bob"], lambda e: "queued" in e["message"] or e.get("failed") or e.get("ready"))
    slurm.run("scancel", str(queued["job_id"]))
    failed = first_event(bob, names["bob"], lambda e: e.get("failed") or e.get("ready"))
    assert failed.get("failed") and f"the Slurm job {queued['job_id']} was cancelled" in failed["message"]
    assert alice.stop(names["alice"]).status_code == 302


def test_a_failing_job_ends_the_start_with_slurms_reason(hub, slurm, alice, names):
    carol = logged_in(hub, names["carol"])
    xsrf = next(c.value for c in alice.cookies if c.name == "_xsrf" and c.path == "/hub/")
    r = alice.post(alice.url("/hub/api/groups/broken-jobs"), json={"users": [names["carol"]]},
                   headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    events = carol.spawn(names["carol"])
    assert events[-1].get("failed"), events
    job_id = next(e["job_id"] for e in events if "job_id" in e)
    assert f"the Slurm job {job_id} failed" in events[-1]["message"], events[-1]
    assert f"the Slurm job {job_id} failed" in carol.get(carol.url("/hub/home")).text
