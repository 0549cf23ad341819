"""Who an operation is recorded as, picked the way git picks it; pure."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from .errors import ConfigError

_RAW_DATE = re.compile(r"@?(\d+)(?: ([+-])(\d\d)(\d\d))?")


class Identity(NamedTuple):
    """A name, an email, and a fixed time (seconds, minutes east of UTC) or None for now."""

    name: str
    email: str
    when: tuple[int, int] | None = None

    def stamp(self) -> tuple[int, int]:
        """The time to record: the fixed one, or now in the local time zone."""
        if self.when is not None:
            return self.when
        now = time.time()
        return int(now), time.localtime(now).tm_gmtoff // 60


class Signatures(NamedTuple):
    author: Identity
    committer: Identity


_ENV_KEYS = tuple(
    f"GIT_{role}_{part}" for role in ("AUTHOR", "COMMITTER") for part in ("NAME", "EMAIL", "DATE")
)


def resolve(config: Callable[[str], str | None], environ: Mapping[str, str]) -> Signatures:
    """Author and committer: ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` first, then user.name/email."""
    key = (config, *(environ.get(name) for name in _ENV_KEYS))
    cached = _RESOLVED.get(key)
    if cached is None:
        author = _identity(config, environ, "AUTHOR")
        cached = Signatures(author, _identity(config, environ, "COMMITTER"))
        if len(_RESOLVED) > 64:
            _RESOLVED.clear()
        _RESOLVED[key] = cached
    return cached


# Resolved identities by (config reader, environment values): the same inputs give the same
# identity, and a changed environment variable gives a new key.
_RESOLVED: dict[tuple[object, ...], Signatures] = {}


def _identity(
    config: Callable[[str], str | None], environ: Mapping[str, str], role: str
) -> Identity:
    name = environ.get(f"GIT_{role}_NAME") or config("user.name")
    email = environ.get(f"GIT_{role}_EMAIL") or config("user.email")
    if not name or not email:
        raise ConfigError(
            "user.name" if not name else "user.email",
            "git has no identity to record who changed the tasks",
            'run `git config --global user.name "Your Name"` and '
            '`git config --global user.email "you@example.com"`',
        )
    date = environ.get(f"GIT_{role}_DATE")
    return Identity(name, email, parse_date(f"GIT_{role}_DATE", date) if date else None)


def parse_date(key: str, text: str) -> tuple[int, int]:
    """``@seconds +hhmm``, ``seconds +hhmm`` or ISO 8601, as (seconds, minutes east of UTC)."""
    match = _RAW_DATE.fullmatch(text.strip())
    if match:
        offset = 0
        if match.group(2):
            offset = int(match.group(3)) * 60 + int(match.group(4))
            offset = -offset if match.group(2) == "-" else offset
        return int(match.group(1)), offset
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            key,
            f"cannot read the date {text!r}",
            "use '@<seconds> +0000' or ISO 8601 such as 2026-01-31T12:00:00+01:00",
        ) from None
    utcoffset = moment.utcoffset()
    minutes = int(utcoffset.total_seconds() // 60) if utcoffset is not None else 0
    return int(moment.timestamp()), minutes
