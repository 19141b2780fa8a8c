"""What an API key may do: its scope (actions, channels, buckets), and the checks that enforce it.

A key without a scope may do everything (today's keys). A scoped key:
- calls only its `actions`: action names, or the groups `read` (Describe*), `create` (Create*),
  `delete` (Delete*), `write` (create + delete + Cancel*), `*` (all). Groups go by the action's verb, so an
  action added later falls into the right group;
- creates, sees and deletes only jobs of its `channels` (names, `*` globs allowed);
- writes, sees and deletes only jobs whose Destination is in its `buckets`: `<name>-<appid>`, or
  `<name>-<appid>/<prefix>` for a part of a bucket (so two teams sharing a bucket cannot overwrite
  each other's VODs by choosing the same Manifest).
A refusal is UnauthorizedOperation and names the key's SecretId and scope, never its secret.

The text form (HARVEST_CREDENTIALS entries `SecretId:SecretKey:scope`):
    actions=read;channels=news|sports;buckets=vod-1250000000/news/
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harvest.domain.destination import CosLocation
from harvest.errors import ConfigError, UnauthorizedOperation

ACTION_GROUPS: dict[str, tuple[str, ...]] = {
    "read": ("Describe",),
    "create": ("Create",),
    "delete": ("Delete",),
    "write": ("Create", "Delete", "Cancel"),
}
ALL = "*"


@dataclass(frozen=True)
class BucketScope:
    bucket: str
    prefix: str = ""  # "" (the whole bucket) or a key prefix ending with "/"

    def covers(self, location: CosLocation) -> bool:
        return location.bucket == self.bucket and location.prefix.startswith(self.prefix)

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket


@dataclass(frozen=True)
class KeyScope:
    actions: tuple[str, ...] = (ALL,)
    channels: tuple[str, ...] = (ALL,)
    buckets: tuple[BucketScope, ...] = ()  # empty: any bucket the service allows

    # --- checks -----------------------------------------------------------------------------------

    def allows_action(self, action: str) -> bool:
        for item in self.actions:
            if item in (ALL, action):
                return True
            if any(action.startswith(verb) for verb in ACTION_GROUPS.get(item, ())):
                return True
        return False

    def allows_channel(self, channel: str) -> bool:
        return any(item == ALL or fnmatch.fnmatchcase(channel, item) for item in self.channels)

    def allows_location(self, location: CosLocation) -> bool:
        return not self.buckets or any(bucket.covers(location) for bucket in self.buckets)

    def describe(self) -> str:
        buckets = "|".join(str(bucket) for bucket in self.buckets) or ALL
        return f"actions={'|'.join(self.actions)}; channels={'|'.join(self.channels)}; buckets={buckets}"


@dataclass(frozen=True)
class Caller:
    """The authenticated key of a request and its scope (None: no limits)."""

    secret_id: str
    scope: KeyScope | None = None

    def _refuse(self, what: str) -> UnauthorizedOperation:
        assert self.scope is not None
        return UnauthorizedOperation(
            f"{what} is outside the scope of key {self.secret_id[:64]!r} ({self.scope.describe()})"
        )

    def check_action(self, action: str) -> None:
        if self.scope is not None and not self.scope.allows_action(action):
            raise self._refuse(f"action {action}")

    def check_channel(self, channel: str) -> None:
        if self.scope is not None and not self.scope.allows_channel(channel):
            raise self._refuse(f"channel {channel[:64]!r}")

    def check_destination(self, location: CosLocation) -> None:
        if self.scope is not None and not self.scope.allows_location(location):
            raise self._refuse(f"Destination {location.bucket}/{location.prefix}")

    def sees_channel(self, channel: str) -> bool:
        return self.scope is None or self.scope.allows_channel(channel)

    def sees(self, channel: str, location: CosLocation | None) -> bool:
        """Whether a job of this channel writing to this location is in scope."""
        if self.scope is None:
            return True
        if not self.scope.allows_channel(channel):
            return False
        if not self.scope.buckets:
            return True
        return location is not None and self.scope.allows_location(location)

    def check_job(self, job_id: str, channel: str, location: CosLocation | None) -> None:
        if not self.sees(channel, location):
            raise self._refuse(f"job {job_id!r}")


FULL_ACCESS = KeyScope()


# --- parsing ------------------------------------------------------------------------------------


def _bucket(item: str) -> BucketScope:
    bucket, _slash, prefix = item.strip().partition("/")
    if not bucket:
        raise ConfigError(f"a key's bucket scope {item!r} names no bucket")
    prefix = prefix.strip("/")
    return BucketScope(bucket, prefix + "/" if prefix else "")


def _check_actions(actions: Iterable[str]) -> tuple[str, ...]:
    result = tuple(item.strip() for item in actions if item.strip())
    for item in result:
        if item != ALL and item not in ACTION_GROUPS and not item[:1].isupper():
            raise ConfigError(
                f"unknown action scope {item!r}: use read, create, delete, write, * or an action name"
            )
    return result or (ALL,)


def scope_from_mapping(data: Mapping[str, Any]) -> KeyScope:
    """A scope from the file form's mapping (lists or `|`-separated strings)."""

    def items(name: str) -> list[str]:
        value = data.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [part for part in value.split("|") if part.strip()]
        if isinstance(value, list) and all(isinstance(part, str) for part in value):
            return value
        raise ConfigError(f"a key's {name} must be a list of strings")

    return KeyScope(
        actions=_check_actions(items("actions")),
        channels=tuple(item.strip() for item in items("channels")) or (ALL,),
        buckets=tuple(_bucket(item) for item in items("buckets")),
    )


def parse_scope(text: str) -> KeyScope:
    """`actions=read;channels=news|sports;buckets=vod-1250000000/news/` (each part optional)."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in ("actions", "channels", "buckets"):
            raise ConfigError(
                f"a key's scope part {part.strip()!r} must be actions=..., channels=... or buckets=..."
            )
        fields[name] = value
    return scope_from_mapping(fields)
