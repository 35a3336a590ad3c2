"""Usage over time: the sampler's measurements, the bounded history, its API and charts."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import psutil
import pytest

from fakes import FakeSpawner
from tljh_daemon import timeutil
from tljh_daemon.spawner import ProcessId
from tljh_daemon.usage_history import MachineSample, ServerSample, UsageHistory
from tljh_daemon.usage_sampler import Target, TreeMeter

BUSY = "while True: pass"


@pytest.fixture
def processes():
    started = []

    def start(code, **kwargs):
        proc = subprocess.Popen([sys.executable, "-c", code], **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def target_of(user, proc):
    return Target(user, proc.pid, psutil.Process(proc.pid).create_time())


def feed(history, users, start, hours, step):
    """`hours` of synthetic rounds, one every `step` seconds, from `start`."""
    t = start
    while t < start + hours * 3600:
        history.record(t, [ServerSample(u, 50.0, 100 << 20) for u in users],
                       MachineSample(25.0, 1 << 30, 4 << 30, len(users)))
        t += step
    return t


def file_bytes(path):
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def test_history_keeps_an_hour_in_full_and_minutes_for_the_retention(tmp_path):
    history = UsageHistory(str(tmp_path / "usage.sqlite"), retention=24 * 3600)
    users = [f"u{i}" for i in range(10)]
    end = feed(history, users, 1_000_000_000, 48, 120)
    rows = history.rows()
    assert rows["server_fine"] in (10 * 30, 10 * 31)  # every round of the last hour (both ends)
    assert rows["machine_fine"] in (30, 31)
    # one row per user and minute with samples (every other minute here), for 24 hours
    assert 10 * (24 * 30 - 1) <= rows["server_minute"] <= 10 * (24 * 30 + 1)
    assert 24 * 30 - 1 <= rows["machine_minute"] <= 24 * 30 + 1
    day = history.servers(["u3"], 24 * 3600, 48, now=end)["u3"]
    assert 47 <= len(day) <= 49 and all(p["cpu_percent"] == 50.0 for p in day)
    # In memory: the last hour of each server, and no server that has not run for an hour.
    assert sorted(history._recent) == sorted(users) and all(len(d) <= 31 for d in history._recent.values())
    feed(history, ["newcomer"], end, 2, 120)
    assert list(history._recent) == ["newcomer"]


def test_history_is_bounded_on_disk_with_more_servers_than_it_was_sized_for(tmp_path):
    path = str(tmp_path / "usage.sqlite")
    history = UsageHistory(path, retention=24 * 3600, max_fine_rows=300, max_minute_rows=4_000)
    users = [f"u{i}" for i in range(20)]
    t = feed(history, users, 1_000_000_000, 12, 120)
    size_after_12h = file_bytes(path)
    t = feed(history, users, t, 36, 120)
    rows = history.rows()
    assert rows["server_fine"] == 300 and rows["server_minute"] == 4_000
    # Freed pages are reused: after 48 h the file is about the size it had at 12 h.
    assert file_bytes(path) < 1.5 * size_after_12h + (1 << 20)
    spawns = UsageHistory(str(tmp_path / "spawns.sqlite"), max_minute_rows=100)
    for i in range(300):  # a burst of spawns is capped too
        spawns.record_spawn("u1", 1.0, True, t=t + i / 1000)
    spawns.record(t + 60, [], None)
    assert spawns.rows()["spawns"] == 100


def test_a_damaged_or_outdated_history_starts_afresh(tmp_path):
    path = tmp_path / "usage.sqlite"
    path.write_bytes(b"not a database" * 100)
    history = UsageHistory(str(path))
    history.record(time.time(), [ServerSample("a", 1.0, 1)])
    assert history.rows()["server_fine"] == 1
    history.close()
    assert UsageHistory(str(path)).rows()["server_fine"] == 1  # kept across restarts


def test_tree_meter_counts_cpu_of_children_that_already_exited(processes):
    """A kernel that burns CPU and exits between two rounds still shows up (reaped time)."""
    parent = processes(
        "import subprocess, sys, time\n"
        "sys.stdin.readline()\n"
        "subprocess.run([sys.executable, '-c', 'import time\\nwhile time.process_time() < 0.5: pass'])\n"
        "print('done', flush=True)\n"
        "time.sleep(600)\n",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    idle = processes("import time; time.sleep(600)")
    meter = TreeMeter()
    targets = [target_of("parent", parent), target_of("idle", idle)]
    meter.measure(targets, time.time())
    before = time.time()
    parent.stdin.write("go\n")
    parent.stdin.flush()
    assert parent.stdout.readline().strip() == "done"
    now = time.time()
    samples = {s.user: s for s in meter.measure(targets, now)}
    # half a CPU-second of the exited child within the elapsed wall time
    assert samples["parent"].cpu_percent >= 0.5 * 100 / (now - before + 0.5)
    assert samples["idle"].cpu_percent < 20
    assert samples["idle"].memory_bytes > 1 << 20
    # Memory is PSS: at most the resident size (a shared page counts once among its sharers).
    assert samples["idle"].memory_bytes <= psutil.Process(idle.pid).memory_info().rss
    # A recycled PID (another start time) is not the server.
    assert meter.measure([Target("x", idle.pid, 12345.0)], time.time()) == []


async def test_sampler_records_a_busy_server_and_the_live_numbers_show_it(start_hub, processes):
    hub = await start_hub()
    token = hub.token("busy")
    await hub.start_server("busy", token)
    # The fake server's process is a real busy one, so the real sampler measures it.
    proc = processes(BUSY)
    state = ProcessId(proc.pid, psutil.Process(proc.pid).create_time()).state()
    hub.db.execute("UPDATE servers SET spawner_state=? WHERE user='busy'", (json.dumps(state),))
    hub.spawner.running["busy"] = (state, hub.spawner.running["busy"][1])
    sampler = hub.hub.usage
    # Busy is at least 10 % of a core (an idle process shows 0; on a machine shared with other
    # tests a busy loop got as little as 26 %).
    deadline = time.monotonic() + 20
    while (sampler.latest.get("busy") is None or sampler.latest["busy"].cpu_percent < 10) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        await sampler.sample_once()
    assert sampler.latest["busy"].cpu_percent >= 10
    async with hub.api("GET", "/users/busy/usage", token) as r:
        assert r.status == 200
        body = await r.json()
    assert body["name"] == "busy" and max(p["cpu_percent_max"] for p in body["samples"]) >= 10
    hub.add_user("boss", admin=True)
    admin = await hub.browser("boss")
    async with admin.request("GET", "/hub/admin/usage") as r:
        live = await r.json()
    assert live["busy"]["cpu_percent"] >= 10 and live["busy"]["memory_bytes"] > 0
    # The home page's chart has the busy sample as a point; so has the admin row's sparkline.
    browser = await hub.browser("busy")
    async with browser.request("GET", "/hub/home") as r:
        html = await r.text()
    assert 'id="usage-cpu"' in html and 'role="img"' in html
    values = [float(v) for v in _data_values(html, 'id="usage-cpu"')]
    assert max(values) >= 10
    async with admin.request("GET", "/hub/admin") as r:
        html = await r.text()
    assert 'class="sparkline"' in html and "machine-servers" in html
    assert 'id="machine-cpu"' in html


def _data_values(html, marker):
    """The data-value attributes of the figure that starts at `marker`."""
    figure = html[html.index(marker):]
    figure = figure[:figure.index("</figure>")]
    return [part.split('"')[1] for part in figure.split("data-value=")[1:]]


async def test_spawn_durations_are_recorded(start_hub):
    hub = await start_hub()
    await hub.start_server("quick", hub.token("quick"))
    spawns = hub.hub.usage.history.machine(3600, 60)["spawns"]
    assert [(s["user"], s["ok"]) for s in spawns] == [("quick", True)]
    boss = hub.token("boss", admin=True)
    async with hub.api("GET", "/usage?period=3600&points=10", boss) as r:
        assert r.status == 200
        body = await r.json()
    assert body["spawns"][0]["user"] == "quick" and body["samples"]  # the sampler's first round
    assert body["samples"][0]["memory_total"] > 0


async def test_usage_api_scopes_and_bad_arguments(hub):
    now = time.time()
    history = hub.hub.usage.history
    history.record(now - 30, [ServerSample("alice", 12.0, 5 << 20), ServerSample("bob", 90.0, 7 << 20)])
    alice, bob, boss = hub.token("alice"), hub.token("bob"), hub.token("boss", admin=True)
    async with hub.api("GET", "/users/alice/usage", alice) as r:
        assert r.status == 200
        assert [p["memory_bytes"] for p in (await r.json())["samples"]] == [5 << 20]
    async with hub.api("GET", "/users/alice/usage", bob) as r:
        assert r.status == 404  # bob may not even learn that alice exists
    async with hub.api("GET", "/users/bob/usage", boss) as r:
        assert r.status == 200 and (await r.json())["samples"][0]["cpu_percent"] == 90.0
    async with hub.api("GET", "/usage", alice) as r:
        assert r.status == 403
    async with hub.api("GET", "/users/nobody/usage", boss) as r:
        assert r.status == 404
    for query in ("period=abc", "period=10", f"period={48 * 3600}", "points=0", "points=100000", "points=1.5"):
        async with hub.api("GET", f"/users/alice/usage?{query}", alice) as r:
            assert r.status == 400, query
            body = await r.json()
            assert body["status"] == 400 and body["message"]


async def test_a_named_servers_usage_has_its_own_charts_and_api(start_hub):
    hub = await start_hub({"named_servers": {"enabled": True}})
    alice, bob = hub.token("alice"), hub.token("bob")
    async with hub.api("PUT", "/users/alice/servers/proj", alice, json={"display_name": "Project"}) as r:
        assert r.status == 201
    now = time.time()
    hub.hub.usage.history.record(now - 30, [ServerSample("alice", 12.0, 5 << 20),
                                            ServerSample("alice/proj", 80.0, 9 << 20)])
    async with hub.api("GET", "/users/alice/usage?server=proj", alice) as r:
        body = await r.json()
    assert body["server"] == "proj" and [p["memory_bytes"] for p in body["samples"]] == [9 << 20]
    async with hub.api("GET", "/users/alice/usage", alice) as r:
        assert [p["memory_bytes"] for p in (await r.json())["samples"]] == [5 << 20]
    async with hub.api("GET", "/users/alice/usage?server=nope", alice) as r:
        assert r.status == 404
    async with hub.api("GET", "/users/alice/usage?server=proj", bob) as r:
        assert r.status == 404
    browser = await hub.browser("alice")
    async with browser.request("GET", "/hub/home") as r:
        html = await r.text()
    assert "Your servers' usage" in html and "<h3>Your default server</h3>" in html and "<h3>Project</h3>" in html
    assert max(float(v) for v in _data_values(html, 'id="usage-proj-cpu"')) == 80.0
    assert max(float(v) for v in _data_values(html, 'id="usage-cpu"')) == 12.0


async def test_usage_settings_are_validated_and_used(start_hub):
    from tljh_daemon import config as config_mod
    with pytest.raises(config_mod.ConfigError, match="usage"):
        config_mod.validate(config_mod.merge(config_mod.DEFAULTS, {"usage": {"interval": 0}}))
    hub = await start_hub({"usage": {"interval": 2, "retention_hours": 2}})
    assert hub.hub.usage.interval == 2 and hub.hub.usage.history.retention == 7200
    async with hub.api("GET", f"/usage?period={3 * 3600}", hub.token("boss", admin=True)) as r:
        assert r.status == 400


async def test_usage_of_batch_jobs_is_not_measured_here(start_hub):
    """A Slurm job id is not a local process: the sampler must not measure whatever has that PID."""
    hub = await start_hub(spawner=FakeSpawner())
    await hub.start_server("remote", hub.token("remote"))
    state = ProcessId(os.getpid(), psutil.Process().create_time()).state()
    hub.db.execute("UPDATE servers SET spawner_state=? WHERE user='remote'", (json.dumps(state),))
    await hub.hub.usage.sample_once()
    assert "remote" in hub.hub.usage.latest  # a local process: measured
    hub.spawner.process_of = lambda state: None  # as SlurmSpawner says of its jobs
    await hub.hub.usage.sample_once()
    assert "remote" not in hub.hub.usage.latest


async def test_admin_panel_with_5000_users_100_running_and_a_day_of_history(hub):
    """Sparklines only for the rows shown (one query), machine charts downsampled: the page's
    size and time do not grow with the users or the history."""
    hub.add_user("boss", admin=True)
    now = time.time()
    stamp = timeutil.isoformat(timeutil.now())
    names = [f"user{i:04d}" for i in range(5000)]
    running = names[::50]
    with hub.db.transaction():
        hub.db.executemany("INSERT INTO users (name, admin, created) VALUES (?, 0, ?)", [(n, stamp) for n in names])
        hub.db.executemany("INSERT INTO servers (user, name, state, started) VALUES (?, '', 'running', ?)",
                                [(n, stamp) for n in running])
    history = hub.hub.usage.history
    history.conn.execute("PRAGMA synchronous=OFF")  # test speed only
    feed(history, running, now - 3600, 1, 10)  # the last hour of 100 servers, every 10 s
    for i in range(300):
        history.record_spawn(running[i % 100], 1 + i % 9, True, t=now - 3000 + i)
    boss = await hub.browser("boss")

    async def page(query):
        started = time.process_time()
        async with boss.request("GET", "/hub/admin" + query) as r:
            assert r.status == 200
            html = await r.text()
        return html, time.process_time() - started

    html, _ = await page("?state=ready&limit=200")
    assert html.count('class="sparkline"') == 100  # every running server shown has one
    html, cpu = await page("?state=ready")
    # measured: 131 kB (44 kB of it sparklines, 20 kB machine charts), ~90 ms of CPU on a busy machine
    assert html.count('class="sparkline"') == 50 and len(html) < 200_000, len(html)
    assert cpu < 1.0, cpu
    spawns = re.search(r'id="machine-spawns".*?</figure>', html, re.S).group(0)
    assert spawns.count("<circle") == 120  # the slowest 120 of the 300
    assert 'data-value="9.0"' in spawns
    # The period links keep the filter.
    assert 'href="?state=ready&amp;usage=24h#machine-usage"' in html
