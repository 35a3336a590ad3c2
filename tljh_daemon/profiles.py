"""Profiles (`profiles`) and per-group limits (`limits.groups`): which limits a server gets.

A profile is a choice offered on the spawn page and taken by the REST API as user_options
(`{"profile": "<slug>"}`), in KubeSpawner's `profile_list` shape. The limits a user's server
starts with are worked out here, once, for every spawner:

1. `limits.memory` / `limits.cpu`;
2. for members of groups under `limits.groups.<group>`, that group's values replace them
   (where several of the user's groups set a key, the largest value wins);
3. the chosen profile's `limits` replace both, key by key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from .cgroups import memory_bytes

LIMIT_KEYS = ("memory", "cpu")
SLUG = r"^[a-z0-9]([a-z0-9_-]{0,62})$"
MEMORY = r"^[0-9]+(\.[0-9]+)?[KMGT]?$"

_limits_schema = {
    "memory": {"type": ["string", "null"], "pattern": MEMORY},
    "cpu": {"type": ["number", "null"], "exclusiveMinimum": 0},
}
LIMITS_SCHEMA = {"type": "object", "additionalProperties": False, "properties": _limits_schema}
PROFILE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["slug", "display_name"],
    "properties": {
        "slug": {"type": "string", "pattern": SLUG},
        "display_name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "default": {"type": "boolean"},
        "limits": LIMITS_SCHEMA,
        "groups": {"type": "array", "items": {"type": "string", "minLength": 1}},
        # Slurm only: the job's partition, and sbatch options added to spawner.slurm.options
        "partition": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9_.,-]+$"},
        "options": {"type": "array", "items": {"type": "string", "pattern": "^-"}},
        # the server runs from environments.<name> (its jupyterhub-singleuser), not the user environment
        "environment": {"type": ["string", "null"], "minLength": 1},
    },
}
SCHEMA = {"type": "array", "items": PROFILE_SCHEMA}


class ProfileRefused(Exception):
    """user_options that cannot start a server: `status` 400 (unknown, malformed) or 403."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    limits: Mapping[str, Any] = field(default_factory=dict)  # only the keys that are set
    groups: tuple[str, ...] = ()  # who may choose it; empty: everyone
    partition: Optional[str] = None  # Slurm
    options: tuple[str, ...] = ()  # Slurm: extra sbatch options
    environment: Optional[str] = None  # environments.<name> the server runs from (None: the user environment)

    def allowed(self, user_groups: Iterable[str]) -> bool:
        return not self.groups or bool(set(self.groups) & set(user_groups))


def from_config(config: Mapping[str, Any]) -> tuple[Profile, ...]:
    return tuple(
        Profile(
            slug=p["slug"], display_name=p["display_name"], description=p.get("description", ""),
            default=p.get("default", False),
            limits={k: v for k, v in (p.get("limits") or {}).items() if v is not None},
            groups=tuple(p.get("groups") or ()), partition=p.get("partition"),
            options=tuple(p.get("options") or ()), environment=p.get("environment") or None,
        )
        for p in config.get("profiles") or ()
    )


def problem(profiles_config, environments=None) -> Optional[tuple[str, str]]:
    """(dotted key, reason) for what the schema cannot say about `profiles`, else None:
    slugs are unique, at most one profile is the default, and an `environment` is one of
    `environments` (the environments.* section)."""
    seen: dict[str, int] = {}
    default = None
    for index, spec in enumerate(profiles_config or ()):
        environment = spec.get("environment")
        if environment and environment not in (environments or {}):
            known = ", ".join(sorted(environments or {})) or "none is configured"
            return (f"profiles.{index}.environment",
                    f"{environment!r} is not one of environments.* ({known})")
        slug = spec["slug"]
        if slug in seen:
            return f"profiles.{index}.slug", f"{slug!r} is already the slug of profiles.{seen[slug]}; slugs must differ"
        seen[slug] = index
        if spec.get("default"):
            if default is not None:
                return (f"profiles.{index}.default",
                        f"profiles.{default} is already the default; only one profile may be")
            default = index
    return None


def available(profiles: Iterable[Profile], user_groups: Iterable[str]) -> list[Profile]:
    """The profiles a member of `user_groups` may choose, in config order."""
    user_groups = set(user_groups)
    return [p for p in profiles if p.allowed(user_groups)]


def default_of(choices: list[Profile]) -> Optional[Profile]:
    """The profile marked default among `choices`, else the first one (None: no choice)."""
    return next((p for p in choices if p.default), choices[0] if choices else None)


def choose(profiles: tuple[Profile, ...], user_options: Any, user_groups: Iterable[str]) -> Optional[Profile]:
    """The profile `user_options` (a JSON object, or None for none given) asks for.

    No options, or no `profile` in them: the default among those the user may choose (None when
    profiles are not configured or none is open to the user: the server starts with the
    limits.* that apply). Raises ProfileRefused for anything else."""
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, dict):
        raise ProfileRefused(400, "user_options must be a JSON object, e.g. {\"profile\": \"<slug>\"}")
    unknown = sorted(set(user_options) - {"profile"})
    if unknown:
        raise ProfileRefused(400, f"unknown user_options {', '.join(map(repr, unknown))}: "
                                  f"only 'profile' is supported")
    slug = user_options.get("profile")
    choices = available(profiles, user_groups)
    if slug is None or slug == "":
        return default_of(choices)
    if not isinstance(slug, str):
        raise ProfileRefused(400, "profile must be a string (a profile's slug)")
    if not profiles:
        raise ProfileRefused(400, f"no profiles are configured on this hub, so profile {slug!r} cannot be chosen")
    profile = next((p for p in profiles if p.slug == slug), None)
    if profile is None:
        raise ProfileRefused(400, f"no such profile {slug!r}; the profiles are: "
                                  f"{', '.join(p.slug for p in profiles)}")
    if profile not in choices:
        raise ProfileRefused(403, f"profile {slug!r} is only for members of the groups "
                                  f"{', '.join(profile.groups)}")
    return profile


def user_options_of(profile: Optional[Profile]) -> dict[str, str]:
    """The user_options recorded for a server started with `profile`."""
    return {"profile": profile.slug} if profile else {}


def _larger(key: str, a, b):
    if a is None:
        return b
    if key == "memory":
        return a if memory_bytes(a) >= memory_bytes(b) else b
    return max(a, b)


def group_limits(groups_config: Mapping[str, Mapping[str, Any]], user_groups: Iterable[str]) -> dict[str, Any]:
    """The limits `limits.groups` sets for a member of `user_groups`: per key, the largest of
    the values set by the groups the user is in."""
    found: dict[str, Any] = {}
    user_groups = set(user_groups)
    for group, values in groups_config.items():
        if group in user_groups:
            for key in LIMIT_KEYS:
                if values.get(key) is not None:
                    found[key] = _larger(key, found.get(key), values[key])
    return found


def effective_limits(limits: Mapping[str, Any], groups_config: Mapping[str, Mapping[str, Any]],
                     user_groups: Iterable[str], profile: Optional[Profile]) -> dict[str, Any]:
    """The limits a server starts with: limits.*, then limits.groups, then the profile's."""
    result = {key: limits[key] for key in LIMIT_KEYS if limits.get(key) is not None}
    result.update(group_limits(groups_config, user_groups))
    if profile is not None:
        result.update(profile.limits)
    return result
