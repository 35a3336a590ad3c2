"""ISO 8601 UTC timestamps as JupyterHub writes them (`2026-01-01T00:00:00.000000Z`)."""

from datetime import datetime, timezone


def now():
    return datetime.now(timezone.utc)


def isoformat(dt):
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text):
    """Parse an ISO 8601 timestamp; naive values are taken as UTC. ValueError if bad."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def from_timestamp(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc)


def ago(dt, now_=None):
    """How long ago `dt` was, for people: "just now", "3 min ago", "5 h ago", "2 days ago",
    or the date after a month."""
    seconds = ((now_ or now()) - dt).total_seconds()
    if seconds < 60:
        return "just now"  # also a little in the future (clock skew between processes)
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days < 31:
        return "1 day ago" if days == 1 else f"{days} days ago"
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d")


def exact(dt):
    """The full time in UTC, for a tooltip: `2026-01-01 09:30:00 UTC`."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
