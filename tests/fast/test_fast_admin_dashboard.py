"""The admin dashboard's server side: state filters, relative times, cancelled starts, and one
page of users (never all of them) with 5,000 users and 100 running servers."""

import re
from datetime import datetime, timedelta, timezone

from tljh_daemon import timeutil

PAGINATED = {"Accept": "application/jupyterhub-pagination+json"}


def rows(panel):
    """{name: row html} of the admin panel's user table."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<tr data-user="([^"]+)".*?</tr>', panel, re.S)}


async def panel(browser, query=""):
    async with browser.request("GET", "/hub/admin" + query) as r:
        assert r.status == 200, query
        return await r.text()


def test_relative_times_read_like_people_talk():
    now = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    ago = lambda **kw: timeutil.ago(now - timedelta(**kw), now)  # noqa: E731
    assert ago(seconds=5) == "just now" and ago(seconds=-30) == "just now"
    assert ago(minutes=3, seconds=20) == "3 min ago"
    assert ago(hours=5, minutes=59) == "5 h ago"
    assert ago(days=1, hours=2) == "1 day ago" and ago(days=12) == "12 days ago"
    assert ago(days=45) == "2025-11-26"
    assert timeutil.exact(now) == "2026-01-10 12:00:00 UTC"


async def test_last_activity_is_relative_with_the_exact_time_on_hover(hub):
    hub.add_user("boss", admin=True)
    hub.add_user("alice")
    three_min = timeutil.now() - timedelta(minutes=3, seconds=10)
    hub.db.execute("UPDATE users SET last_activity=? WHERE name='alice'", (timeutil.isoformat(three_min),))
    hub.db.execute("UPDATE users SET last_activity='not a time' WHERE name='boss'")  # never a 500
    row = rows(await panel(await hub.browser("boss")))["alice"]
    time = re.search(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', row)
    assert time.group(3) == "3 min ago"
    assert time.group(2) == timeutil.exact(three_min) and time.group(1) == timeutil.isoformat(three_min)


async def test_a_start_cancelled_by_an_admin_shows_as_cancelled(hub):
    hub.add_user("boss", admin=True)
    hub.add_user("alice")
    boss = await hub.browser("boss")
    hub.spawner.never_answer = True
    async with boss.api("POST", "/users/alice/server", json={}) as r:
        assert r.status == 202, await r.text()
    await hub.wait_for_state("alice", "pending")
    async with boss.api("DELETE", "/users/alice/server") as r:
        assert r.status in (202, 204)
    await hub.wait_for_state("alice", "cancelled")
    row = rows(await panel(boss))["alice"]
    assert 'data-state="cancelled"' in row and ">Cancelled<" in row and "Failed" not in row
    assert 'class="small start"' in row  # it can be started again
    assert "alice" in rows(await panel(boss, "?state=failed"))  # "failed or cancelled starts"
    assert "alice" not in rows(await panel(boss, "?state=active"))


async def test_state_filter_search_and_paging_with_5000_users_and_100_running(hub):
    """Each page holds one page of rows, counted and filtered in SQL (the page's size does not
    grow with the number of users); the REST API's state filter gives the same counts."""
    hub.add_user("boss", admin=True)
    now = timeutil.isoformat(timeutil.now())
    with hub.db.transaction():
        hub.db.executemany("INSERT INTO users (name, admin, created, last_activity) VALUES (?, 0, ?, ?)",
                                [(f"user{i:04d}", now, now) for i in range(5000)])
        hub.db.executemany("INSERT INTO servers (user, name, state, started) VALUES (?, '', 'running', ?)",
                                [(f"user{i:04d}", now) for i in range(0, 5000, 50)])
        hub.db.execute("INSERT INTO groups (name) VALUES ('everyone'), ('nobody')")
        hub.db.executemany("INSERT INTO group_members (group_name, user) VALUES ('everyone', ?)",
                                [(f"user{i:04d}",) for i in range(5000)])
    boss = await hub.browser("boss")

    everyone = await panel(boss)
    assert len(rows(everyone)) == 50 and "5001 users, showing 1–50." in everyone
    assert len(everyone) < 100_000, len(everyone)  # measured: 62 kB, ~10 ms (median of 10) on a 2-core machine
    groups = re.search(r'<ul id="groups">.*?</ul>', everyone, re.S).group(0)
    assert "(5000 members): user0000, user0001," in groups and "… and 4988 more" in groups
    assert "user0012" not in groups and "<strong>nobody</strong>: no members" in groups

    running = await panel(boss, "?state=ready&limit=60")
    assert "100 users, showing 1–60." in running
    assert all('data-state="running"' in row for row in rows(running).values()) and len(rows(running)) == 60
    next_url = re.search(r'href="([^"]+)" id="next-page"', running).group(1).replace("&amp;", "&")
    assert "state=ready" in next_url and "offset=60" in next_url
    last = await panel(boss, next_url)
    assert len(rows(last)) == 40 and 'id="next-page"' not in last and 'id="prev-page"' in last
    assert not set(rows(last)) & set(rows(running))

    stopped = await panel(boss, "?state=inactive&search=user00")
    assert "98 users" in stopped  # user0000..user0099 less user0000 and user0050
    assert "user0050" not in rows(stopped)
    assert "user0001" in rows(await panel(boss, "?state=bogus&search=user0001"))  # an unknown filter shows all
    # The live refresh asks for the rows it shows by name: filters do not hide a row whose state changed.
    assert set(rows(await panel(boss, "?state=ready&offset=70&user=user0001&user=user0050&user=nobody"))) == \
        {"user0001", "user0050"}

    async with boss.api("GET", "/users?state=ready&limit=10", headers=PAGINATED) as r:
        page = await r.json()
    assert page["_pagination"]["total"] == 100 and len(page["items"]) == 10
    async with boss.api("GET", "/users?state=inactive&name_filter=user00&limit=200", headers=PAGINATED) as r:
        assert (await r.json())["_pagination"]["total"] == 98
