"""Usage over time with real servers: a CPU-heavy cell shows up in the history, on the user's
home page chart and in the admin panel (headless Chromium)."""

import os
import time

import pytest

from a11y import PHONE, assert_accessible, assert_no_horizontal_overflow, console_errors
from hubclient import HubClient
from hubprocess import needs_root
from labpage import logged_in_page
from waiting import wait_for

pytestmark = [
    needs_root,
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed"),
]

# Four CPU-seconds, however busy the machine is; its value is the CPU % (of one core) the
# kernel got meanwhile (on a 2-core machine shared with other tests, as little as ~20 %).
CPU_HEAVY_CELL = """import time
wall, cpu = time.monotonic(), time.process_time()
while time.process_time() - cpu < 4: pass
round(400 / (time.monotonic() - wall))"""


@pytest.fixture(scope="module")
def hub(make_hub, user_env, run_id, unix_accounts):
    hub = make_hub({"auth": {"type": "dummy", "DummyAuthenticator": {"password": "pw"}},
                    "users": {"admin": [f"{run_id}-meter"]}, "user_environment": {"path": user_env},
                    "usage": {"interval": 1}})
    hub.admin, hub.user = f"{run_id}-meter", f"{run_id}-cruncher"
    unix_accounts.extend([f"jupyter-{hub.admin}", f"jupyter-{hub.user}"])
    return hub


def peak_of(page, selector):
    """The largest data-value of the points `selector` matches (None when there are none)."""
    return page.eval_on_selector_all(
        selector, "els => els.length ? Math.max(...els.map(e => parseFloat(e.dataset.value))) : null")


def test_a_cpu_heavy_cell_shows_in_the_charts(browser, hub):
    client = HubClient(hub.url)
    assert client.login(hub.user, "pw").status_code == 302
    assert client.spawn(hub.user)[-1].get("ready")
    client.get(client.url(f"/user/{hub.user}/lab"))  # the OAuth login into the server
    kernel = client.start_kernel(hub.user)
    # The home page, open while the cell runs, refreshes its charts by itself (usage.js swaps
    # in the fresh page's charts: the marked figure goes).
    page = logged_in_page(browser, hub, hub.user)
    errors = console_errors(page)
    page.evaluate("document.querySelector('#usage-cpu').dataset.old = 'yes'")
    page.locator("#usage-cpu:not([data-old])").wait_for(timeout=30_000)
    cell_start = time.time()
    got = int(client.execute(hub.user, kernel, CPU_HEAVY_CELL, timeout=300))
    # A 1 s sample within the cell's seconds sees about what the kernel got on average.
    busy = got / 2
    assert busy >= 5, f"the kernel got {got} % of a core: the machine is too busy for this test"

    def busy_sample():
        """The peak of the samples (1 s buckets) taken since the cell started, once it is high."""
        r = client.get(client.url(f"/hub/api/users/{hub.user}/usage?period=300&points=300"))
        r.raise_for_status()
        peak = max((p["cpu_percent_max"] for p in r.json()["samples"] if p["t"] >= cell_start - 1), default=0)
        return peak if peak >= busy else None
    peak = wait_for(busy_sample, f"a sample of the busy kernel (>= {busy} % CPU)", 60)

    # The user's home page: the CPU chart (a point a minute) gets a point for the cell's minute
    # at least as high as that sample, and says so in words.
    page.wait_for_function(
        """([start, peak]) => [...document.querySelectorAll("#usage-cpu circle.point")]
            .some(e => +e.dataset.t + 60 > start && +e.dataset.value >= peak)""",
        arg=[cell_start, peak - 0.1], timeout=30_000)
    assert not errors, errors
    assert peak_of(page, "#usage-memory circle.point") > 20 * 2**20
    svg = page.locator("#usage-cpu svg")
    assert svg.get_attribute("role") == "img"
    assert "peak" in page.locator("#usage-cpu figcaption").inner_text()
    assert_accessible(page)
    # A phone-sized window: the charts shrink instead of scrolling sideways.
    page.set_viewport_size(PHONE)
    assert_no_horizontal_overflow(page)
    page.close()

    # The admin panel: the user's row has a sparkline with the busy peak; the machine charts
    # show the running server and its spawn.
    page = logged_in_page(browser, hub, hub.admin)
    page.goto(f"{hub.url}/hub/admin?search={hub.user}")
    assert peak_of(page, f'tr[data-user="{hub.user}"] svg.sparkline circle.peak.series-cpu') >= busy
    assert peak_of(page, "#machine-servers circle.point") >= 1
    assert peak_of(page, "#machine-spawns circle.point") > 0
    assert page.locator("#machine-cpu svg[role=img]").count() == 1
    page.goto(f"{hub.url}/hub/admin?search={hub.user}&usage=24h")
    assert "Last 24 hours" in page.locator("#machine-usage [aria-current]").inner_text()
    # The charts' part of the panel (the rest of it is test_admin_panel's).
    assert_accessible(page, within=["#machine-usage", f'tr[data-user="{hub.user}"] td.usage'])
    page.close()
    assert client.stop(hub.user).status_code == 302
