"""Records, statuses and ids: the vocabulary every other module speaks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import InvalidStatus, InvalidTaskId, InvalidTitle


class Status(Enum):
    """A task's status. The value is the name users type and see."""

    TODO = "TODO"
    IN_PROGRESS = "IN-PROGRESS"
    IN_REVIEW = "IN-REVIEW"
    DONE = "DONE"
    BLOCKED = "BLOCKED"
    CLOSED = "CLOSED"

    @property
    def checkbox(self) -> str:
        """The character written between the brackets of a task line."""
        return _CHECKBOX_OF[self]

    @property
    def is_finished(self) -> bool:
        """DONE and CLOSED are hidden from listings unless all tasks are asked for."""
        return self in (Status.DONE, Status.CLOSED)

    @classmethod
    def from_checkbox(cls, char: str) -> Status | None:
        """The status a checkbox character stands for, or None for an unknown character."""
        return _STATUS_OF.get(char)

    @classmethod
    def parse(cls, text: str) -> Status:
        """Read a status name as a user types it: any case, ``_`` or ``-``, or a checkbox."""
        key = text.strip().upper().replace("_", "-").replace(" ", "-")
        found = _STATUS_BY_NAME.get(key)
        if found is not None:
            return found
        if len(text) == 1 and text in _STATUS_OF:
            return _STATUS_OF[text]
        raise InvalidStatus(text, [s.value for s in cls])


_CHECKBOX_OF = {
    Status.TODO: " ",
    Status.IN_PROGRESS: "+",
    Status.IN_REVIEW: "-",
    Status.DONE: "x",
    Status.BLOCKED: "~",
    Status.CLOSED: "!",
}
_STATUS_OF = {char: status for status, char in _CHECKBOX_OF.items()} | {"X": Status.DONE}
_STATUS_BY_NAME = {status.value: status for status in Status}

#: The checkbox characters a task line may carry.
CHECKBOX_CHARS = frozenset(_STATUS_OF)


@dataclass(frozen=True, slots=True, order=True)
class TaskId:
    """A task id: a number and the style it is written in (``#`` or ``md#``)."""

    number: int
    prefix: str = "#"

    def __str__(self) -> str:
        return f"{self.prefix}{self.number:03d}"

    @property
    def digits(self) -> str:
        """The zero-padded number, as used in spec file names."""
        return f"{self.number:03d}"

    @classmethod
    def parse(cls, text: str) -> TaskId:
        """Read an id as users type it: ``1``, ``001``, ``#1``, ``md#1``, ``task#1``.

        A bare number or ``task#`` form gets the ``#`` prefix; lookups match by number, so the
        prefix of a parsed id only matters when a file mixes both styles.
        """
        if text.isdecimal() and text.isascii() and len(text) <= 18:
            return cls(int(text))
        match = _ID_INPUT.fullmatch(text.strip())
        if match is None:
            raise InvalidTaskId(text)
        prefix = "md#" if (match.group(1) or "").lower() == "md#" else "#"
        return cls(int(match.group(2)), prefix)


_ID_INPUT = re.compile(r"(md#|task#|#)?0*([0-9]{1,18})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Task:
    """One task as read from the store."""

    id: TaskId
    title: str
    status: Status
    spec_path: str | None
    description: str = ""

    def to_json(self) -> dict[str, str | None]:
        """The JSON object shape of the CLI and of non-Python callers."""
        return {
            "id": str(self.id),
            "title": self.title,
            "status": self.status.value,
            "spec_path": self.spec_path,
            "description": self.description,
        }


#: The longest slug: a spec's file name (``NNN-slug.md``) stays well under the 255 bytes
#: file systems allow, whatever the title's length.
MAX_SLUG = 100


def slugify(title: str) -> str:
    """The spec file slug: lower-cased, every run outside ``[a-z0-9]`` becomes one ``-``, cut
    to :data:`MAX_SLUG` characters."""
    return _SLUG_RUN.sub("-", title.lower())[:MAX_SLUG]


_SLUG_RUN = re.compile(r"[^a-z0-9]+")

# Characters that would let a title break its line or mislead a reader: line breaks and other
# controls (category Cc), Unicode line/paragraph separators, and bidirectional overrides and
# isolates that reorder what a reader sees.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_LINE_SEPARATORS = frozenset("\u0085\u2028\u2029")
_FORGED_LINK = re.compile(r"\]\(")


def check_title(title: str) -> str:
    """Return ``title`` without surrounding blanks, or raise :class:`InvalidTitle`."""
    import unicodedata

    text = title.strip()
    if not text:
        raise InvalidTitle(title, "a title cannot be empty")
    for char in text:
        if (
            char in _LINE_SEPARATORS
            or char in _BIDI_CONTROLS
            or unicodedata.category(char) in ("Cc", "Cs")
        ):
            raise InvalidTitle(
                title,
                f"it contains the control character U+{ord(char):04X}; "
                "titles are one line of visible text",
            )
    if _FORGED_LINK.search(text):
        raise InvalidTitle(
            title, "`](` would make it read as a markdown link; write the brackets apart"
        )
    return text
