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
        global _last_stamp  # noqa: PLW0603 - one second's offset, computed once
        second = int(time.time())
        zone = time.tzname  # a new tuple after time.tzset() with another TZ
        last = _last_stamp
        if last[0] != second or last[2] is not zone:
            last = _last_stamp = (second, time.localtime(second).tm_gmtoff // 60, zone)
        return last[0], last[1]


# The last second stamped, its offset from UTC and the time zone it was read in: the offset is
# the same all through a second, unless time.tzset() switches zones.
_last_stamp: tuple[int, int, object] = (-1, 0, None)


class Signatures(NamedTuple):
    author: Identity
    committer: Identity


#: The environment variables an identity is read from, besides user.name and user.email.
ENV_KEYS = tuple(
    f"GIT_{role}_{part}" for role in ("AUTHOR", "COMMITTER") for part in ("NAME", "EMAIL", "DATE")
)


def resolve(config: Callable[[str], str | None], environ: Mapping[str, str]) -> Signatures:
    """Author and committer: ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` first, then user.name/email."""
    return Signatures(_identity(config, environ, "AUTHOR"), _identity(config, environ, "COMMITTER"))


def _identity(
    config: Callable[[str], str | None], environ: Mapping[str, str], role: str
) -> Identity:
    name = environ.get(f"GIT_{role}_NAME") or config("user.name")
    email = environ.get(f"GIT_{role}_EMAIL") or config("user.email")
    name = _check_ident(f"GIT_{role}_NAME or user.name", name)
    email = _check_ident(f"GIT_{role}_EMAIL or user.email", email)
    if not name or not email:
        raise ConfigError(
            "user.name" if not name else "user.email",
            "git has no identity to record who changed the tasks",
            'run `git config --global user.name "Your Name"` and '
            '`git config --global user.email "you@example.com"`',
        )
    date = environ.get(f"GIT_{role}_DATE")
    return Identity(name, email, parse_date(f"GIT_{role}_DATE", date) if date else None)


def _check_ident(key: str, value: str | None) -> str | None:
    """A name or email as git records it: one line, no angle brackets, no control characters."""
    if value is None:
        return None
    value = value.strip()
    bad = next(
        (
            c
            for c in value
            if c in "<>" or ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) < 0xE000
        ),
        None,
    )
    if bad is not None:
        raise ConfigError(
            key,
            f"{value!r} contains {bad!r}, which a commit's author line cannot hold",
            'set a plain one, e.g. `git config --global user.name "Your Name"`',
        )
    return value


def parse_date(key: str, text: str) -> tuple[int, int]:
    """``@seconds +hhmm``, ``seconds +hhmm`` or ISO 8601, as (seconds, minutes east of UTC)."""
    match = _RAW_DATE.fullmatch(text.strip())
    if match:
        offset = 0
        if match.group(2):
            offset = int(match.group(3)) * 60 + int(match.group(4))
            offset = -offset if match.group(2) == "-" else offset
        return _check_date(key, text, int(match.group(1)), offset)
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
    return _check_date(key, text, int(moment.timestamp()), minutes)


def _check_date(key: str, text: str, seconds: int, offset: int) -> tuple[int, int]:
    if not 0 <= seconds < 2**63 or abs(offset) >= 24 * 60:
        raise ConfigError(
            key, f"the date {text!r} is out of range", "use a date after 1970 with a real time zone"
        )
    return seconds, offset
