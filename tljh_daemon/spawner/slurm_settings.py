"""The `spawner.slurm.*` keys: how a user's server is submitted as a Slurm batch job.

Kept apart from the spawner so config.py can import the schema without the spawner's
dependencies. Per-group overrides are merged over the top level for members of a hub group.
"""

import math
import re
from typing import Any

# Settings of one submission; `groups.<name>` may override each of them.
_job = {
    "partition": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9_.,-]+$"},
    # Slurm's time formats: 30 (minutes), 8:00:00, 1-0; `tljh-config set ... 30` gives an integer
    "time": {"type": ["string", "integer", "null"], "pattern": "^[0-9:-]+$", "minimum": 1},
    "memory": {"type": ["string", "null"], "pattern": r"^[0-9]+[KMGT]?$"},
    "cpus": {"type": ["integer", "null"], "minimum": 1},
    "options": {"type": "array", "items": {"type": "string", "pattern": "^-"}},
}

DEFAULTS: dict[str, Any] = {
    "partition": None,
    "time": None,
    "memory": None,
    "cpus": None,
    "options": [],
    "groups": {},
    "hub_api_url": None,
    "bind_address": "0.0.0.0",
    "queue_timeout": 0,
}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_job,
        "groups": {
            "type": "object",
            "additionalProperties": {"type": "object", "additionalProperties": False, "properties": _job},
        },
        "hub_api_url": {"type": ["string", "null"], "pattern": "^https?://.*/hub/api$"},
        "bind_address": {"type": "string", "minLength": 1},
        "queue_timeout": {"type": "number", "minimum": 0},
    },
}

JOB_KEYS = tuple(_job)


def job_settings(slurm, limits, user_groups, profile=None):
    """The submission settings for a member of `user_groups`: top level, then each matching
    `groups.<name>` in config order (later ones win); limits.memory/cpu fill what is unset.

    A chosen `profile` (profiles.Profile) wins over both: its partition, its limits, and its
    options added after the others."""
    settings = {key: slurm.get(key) for key in JOB_KEYS}
    for group, override in (slurm.get("groups") or {}).items():
        if group in user_groups:
            settings.update({k: v for k, v in override.items() if v is not None})
    if profile is not None:
        if profile.partition:
            settings["partition"] = profile.partition
        if profile.limits.get("memory"):
            settings["memory"] = None  # the profile's limit (in `limits`) becomes --mem
        if profile.limits.get("cpu"):
            settings["cpus"] = None
        settings["options"] = [*(settings["options"] or []), *profile.options]
    if settings["memory"] is None and limits.get("memory"):
        settings["memory"] = slurm_memory(str(limits["memory"]))
    if settings["cpus"] is None and limits.get("cpu"):
        settings["cpus"] = max(1, math.ceil(float(limits["cpu"])))
    return settings


def slurm_memory(text):
    """limits.memory (bytes, or K/M/G/T of 1024) as sbatch --mem, whose bare numbers are megabytes."""
    match = re.fullmatch(r"([0-9.]+)([KMGT]?)", text)
    if match is None:
        raise ValueError(f"not a memory size: {text!r}")
    number, unit = match.groups()
    if unit and "." not in number:
        return text
    size = float(number) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[unit]
    return f"{max(1, math.ceil(size / 1024))}K"


def sbatch_options(settings):
    """sbatch command-line options for `settings` (never shell text: no quoting to get wrong)."""
    options = []
    if settings["partition"]:
        options.append(f"--partition={settings['partition']}")
    if settings["time"]:
        options.append(f"--time={settings['time']}")
    if settings["memory"]:
        options.append(f"--mem={settings['memory']}")
    if settings["cpus"]:
        options.append(f"--cpus-per-task={settings['cpus']}")
    options.extend(settings["options"] or [])
    return options
