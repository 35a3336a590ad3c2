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
