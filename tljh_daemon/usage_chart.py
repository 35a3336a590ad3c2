"""Usage charts as server-rendered SVG (templates/usage_charts.html draws them): no script
library and no CDN. This module turns history samples into coordinates and words; a chart
is read by screen readers as one image with a text summary (label, peak, latest).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from .server_store import describe
from .usage_history import FINE_SECONDS

MIB = 1024 * 1024


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    t: float  # seconds since the epoch
    value: float
    fmt: Callable[[float], str]

    @property
    def text(self):
        """e.g. "08:15 UTC: 97 %" (made only for the points a page shows one by one)."""
        return f"{clock(self.t)}: {self.fmt(self.value)}"


@dataclass(frozen=True)
class Chart:
    label: str  # e.g. "CPU, last hour"
    summary: str  # e.g. "peak 97 % at 08:15 UTC, latest 3 %"
    width: int
    height: int
    points: list[Point] = field(default_factory=list)
    scatter: bool = False  # points only (spawns), no line
    kind: str = ""  # a CSS class: cpu, memory, servers, spawns
    top: str = ""  # the y axis' top, e.g. "100 %"
    since: str = ""  # the x axis' start, e.g. "60 min ago"

    @property
    def line(self):
        """The points of its polyline (whole units in a small chart: its pixels)."""
        decimals = 0 if self.width <= 150 else 1
        return " ".join(f"{p.x:.{decimals}f},{p.y:.{decimals}f}" for p in self.points)

    @property
    def peak(self):
        return max(self.points, key=lambda p: p.value, default=None)


def clock(t):
    return time.strftime("%H:%M UTC", time.gmtime(t))


def percent(value):
    return f"{value:.0f} %"


def memory(value):
    return f"{value / MIB / 1024:.1f} GiB" if value >= 1024 * MIB else f"{value / MIB:.0f} MiB"


def seconds(value):
    return f"{value:.1f} s"


def count(value):
    return f"{value:.0f}"


def chart(samples, key, *, label, fmt, period, now=None, top=None, width=300, height=60, kind="", scatter=False,
          empty="no data yet"):
    """A chart of `samples[i][key]` over the last `period` seconds; the y axis runs from 0 to
    `top` (or the peak). Samples are dicts with `t`, as usage_history returns them."""
    now = time.time() if now is None else now
    start = now - period
    values = [s[key] for s in samples]
    top = max(top or 0, *values, 1e-9) if values else (top or 1)
    pad = 2
    points = [
        Point(x=pad + (width - 2 * pad) * min(max((s["t"] - start) / period, 0), 1),
              y=pad + (height - 2 * pad) * (1 - s[key] / top), t=s["t"], value=s[key], fmt=fmt)
        for s in samples
    ]
    if points:
        peak = max(points, key=lambda p: p.value)
        summary = f"peak {fmt(peak.value)} at {clock(peak.t)}, latest {fmt(points[-1].value)}"
    else:
        summary = empty
    return Chart(label=label, summary=summary, width=width, height=height, points=points, kind=kind,
                 scatter=scatter, top=fmt(top), since=f"{period // 3600} h ago" if period > 3600 else
                 f"{period // 60} min ago")


def period_words(period):
    return "last hour" if period == 3600 else f"last {period // 3600} hours" if period % 3600 == 0 \
        else f"last {period // 60} minutes"


def server_charts(samples, period=FINE_SECONDS, now=None, width=300, height=60):
    """CPU (peak in each bucket, % of one core) and memory of one user's server."""
    words = period_words(period)
    return [
        chart(samples, "cpu_percent_max", label=f"CPU, {words}", fmt=percent, period=period, now=now, top=100,
              width=width, height=height, kind="cpu"),
        chart(samples, "memory_bytes", label=f"Memory, {words}", fmt=memory, period=period, now=now,
              width=width, height=height, kind="memory"),
    ]


def machine_charts(usage, period, now=None):
    """The machine's CPU, memory, running servers and spawn durations (usage_history.machine)."""
    words = period_words(period)
    samples = usage["samples"]
    total = max((s["memory_total"] for s in samples), default=0)
    return [
        chart(samples, "cpu_percent_max", label=f"Machine CPU (all cores), {words}", fmt=percent, period=period,
              now=now, top=100, kind="cpu"),
        chart(samples, "memory_bytes", label=f"Machine memory in use (of {memory(total)}), {words}", fmt=memory,
              period=period, now=now, top=total, kind="memory"),
        chart(samples, "servers", label=f"Servers running, {words}", fmt=count, period=period, now=now, kind="servers"),
        chart(usage["spawns"], "seconds", label=f"Spawn durations, {words}", fmt=seconds, period=period, now=now,
              kind="spawns", scatter=True, empty="no spawns"),
    ]


def home_charts(history, name, servers, now=None):
    """The home page's charts: each of the user's `servers` ([(server name, label, running)],
    the default one's name '') over the last hour, as [{"server", "label", "charts"}]; none for
    a server that has not run in that hour. One query for them all."""
    keys = {server: describe(name, server) for server, _, _ in servers}
    samples = history.servers(list(keys.values()), FINE_SECONDS, 60, now)
    return [{"server": server, "label": label, "charts": server_charts(samples[keys[server]], now=now)}
            for server, label, running in servers if samples[keys[server]] or running]


def sparklines(history, names, now=None):
    """{name: (cpu chart, memory chart)} of the last hour, for the admin panel's rows shown
    (one query for the page, whatever the number of users)."""
    return {name: server_charts(samples, now=now, width=120, height=28)
            for name, samples in history.servers(names, FINE_SECONDS, 30, now).items() if samples}


USAGE_PERIODS = {"1h": 3600, "24h": 24 * 3600}  # the admin panel's ?usage= for its machine charts


def admin_charts(history, names, query, now=None):
    """The admin panel's charts: a sparkline per user shown, the machine over the period
    `query["usage"]` names (1h or 24h), and links to each period that keep the rest of `query`."""
    period = min(USAGE_PERIODS.get(query.get("usage", ""), 3600), int(history.retention))
    links = [(words, seconds == period, "?" + urlencode({**query, "usage": key}) + "#machine-usage")
             for key, seconds, words in (("1h", 3600, "Last hour"), ("24h", 24 * 3600, "Last 24 hours"))
             if seconds <= history.retention]
    return {"sparklines": sparklines(history, names, now),
            "machine_charts": machine_charts(history.machine(period, 120, now), period, now),
            "usage_links": links}
