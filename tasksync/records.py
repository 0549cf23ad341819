"""What merges leave for people to look at: conflict records and renumberings, on the ref.

They live in one JSON file beside ``process/`` in the ref's tree, never in tasks.md, so the
file users read stays clean. A conflict record stays until someone resolves it; a renumbering
stays for good, so ``git tasks get OLD-ID`` can say where a task went. Pure: text in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from .errors import FormatError, InvalidTaskId
from .markdown import MAX_ID, RECORDS_PATH
from .model import TaskId

__all__ = ["RECORDS_PATH", "Conflict", "Records", "Renumbering", "merge", "parse", "render"]

_VERSION = 1


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field two sides of a merge changed differently, kept until someone resolves it.

    The merge wrote ``kept`` (one of ``ours`` and ``theirs``, chosen by a fixed rule, so both
    sides of a merge get the same result); the other value is kept here. In records stored on
    the ref, ``ours`` is the side whose value won and ``theirs`` the one set aside. ``task`` is
    None for lines of tasks.md outside any task. Values are None where the side had no such
    thing (a deleted task, an absent spec).
    """

    task: TaskId | None
    field: str  # status, title, id, link, rest, description, deleted, position, spec or text
    base: str | None
    ours: str | None
    theirs: str | None
    kept: str | None

    @property
    def lost(self) -> str | None:
        """The value the merge did not write."""
        return self.theirs if self.kept == self.ours else self.ours

    def to_json(self) -> dict[str, str | None]:
        return {
            "task": None if self.task is None else str(self.task),
            "field": self.field,
            "base": self.base,
            "ours": self.ours,
            "theirs": self.theirs,
            "kept": self.kept,
        }


@dataclass(frozen=True, slots=True)
class Renumbering:
    """A task created with the same id on two sides, given the next free id by a merge."""

    old: TaskId
    new: TaskId
    title: str
    side: str  # "ours" or "theirs": whose copy moved ("" once stored: it depends on who merged)
    old_path: str | None  # its spec file before and after, when it links one
    new_path: str | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "old": str(self.old),
            "new": str(self.new),
            "title": self.title,
            "side": self.side,
            "old_path": self.old_path,
            "new_path": self.new_path,
        }


class Records(NamedTuple):
    conflicts: tuple[Conflict, ...] = ()
    renumbered: tuple[Renumbering, ...] = ()
    # The highest id this history ever gave a task: a deleted task's id is never given to
    # another, so a merge never takes a new task for the deleted one changed.
    highest: int = 0
    # Id number → the identity the task was created with: merges match tasks by it, so a
    # task renumbered in one history is still the same task in another.
    uids: tuple[tuple[int, str], ...] = ()

    def for_task(self, number: int) -> tuple[Conflict, ...]:
        return tuple(c for c in self.conflicts if c.task is not None and c.task.number == number)

    def moved(self, number: int) -> tuple[Renumbering, ...]:
        """Renumberings from or to ``number``."""
        return tuple(r for r in self.renumbered if number in (r.old.number, r.new.number))

    def with_conflicts(self, found: tuple[Conflict, ...]) -> Records:
        stored = tuple(settled(c) for c in found)
        kept = self.conflicts + tuple(c for c in stored if c not in self.conflicts)
        return self._replace(conflicts=kept)

    def with_renumbered(self, found: tuple[Renumbering, ...]) -> Records:
        stored = tuple(replace(r, side="") for r in found)
        kept = self.renumbered + tuple(r for r in stored if r not in self.renumbered)
        return self._replace(renumbered=kept)

    def without(self, cleared: tuple[Conflict, ...]) -> Records:
        return self._replace(conflicts=tuple(c for c in self.conflicts if c not in cleared))

    def with_highest(self, number: int) -> Records:
        return self._replace(highest=max(self.highest, number))

    def uid_map(self) -> dict[int, str]:
        return dict(self.uids)

    def with_uids(self, uids: dict[int, str]) -> Records:
        return self._replace(uids=tuple(sorted(uids.items())))


def settled(conflict: Conflict) -> Conflict:
    """A conflict as stored: ``ours`` the value the merge wrote, ``theirs`` the one set aside.

    A stored record must not depend on which side ran the merge, or two workspaces merging
    each other would write different trees; so "ours" and "theirs" on the ref mean kept and
    set aside, and ``resolve --take theirs`` switches to the value that lost.
    """
    if conflict.kept == conflict.theirs and conflict.kept != conflict.ours:
        return Conflict(
            conflict.task,
            conflict.field,
            conflict.base,
            conflict.theirs,
            conflict.ours,
            conflict.kept,
        )
    return conflict


def parse(text: str | None) -> Records:
    """The records of a file's text (no file: none); a damaged file is a FormatError."""
    if text is None:
        return Records()
    import json  # only when there is a file: most operations never read one

    try:
        data = json.loads(text)
        conflicts = tuple(_conflict(item) for item in data.get("conflicts", ()))
        renumbered = tuple(_renumbering(item) for item in data.get("renumbered", ()))
        highest = data.get("highest", 0)
        if type(highest) is not int or not 0 <= highest < MAX_ID:
            raise ValueError(f"highest is {highest!r}, not an id number")
        uids = _uids(data.get("uids", {}))
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,  # nesting too deep for the decoder: not a records file either
        InvalidTaskId,
    ) as error:
        raise FormatError(
            RECORDS_PATH,
            f"cannot be read ({error}); "
            f"restore it with `git show <commit>:{RECORDS_PATH}` from an earlier commit",
        ) from None
    return Records(conflicts, renumbered, highest, uids)


def _uids(data: object) -> tuple[tuple[int, str], ...]:
    if not isinstance(data, dict):
        raise TypeError("uids is not an object")
    out = []
    for key, value in data.items():
        if not (isinstance(key, str) and key.isdecimal() and len(key) <= 18):
            raise ValueError(f"uids has the key {key!r}, not an id number")
        if not (isinstance(value, str) and value.isascii() and value.isalnum()):
            raise ValueError(f"uids has {value!r} for {key}, not an identity")
        out.append((int(key), value))
    return tuple(sorted(out))


def render(records: Records) -> str | None:
    """The file's text, or None when there is nothing to keep (the file is removed)."""
    if (
        not records.conflicts
        and not records.renumbered
        and not records.highest
        and not records.uids
    ):
        return None
    data: dict[str, object] = {
        "version": _VERSION,
        "conflicts": [c.to_json() for c in sorted(records.conflicts, key=_conflict_order)],
        "renumbered": [_stored(r) for r in sorted(records.renumbered, key=_renumbering_order)],
    }
    if records.highest:
        data["highest"] = records.highest
    if records.uids:
        data["uids"] = {str(number): uid for number, uid in records.uids}
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def merge(base: Records, ours: Records, theirs: Records) -> Records:
    """Three-way merge of record sets: a record resolved on one side stays resolved.

    Kept: records on both sides, and records new on either side. Renumberings are never
    removed. The order is fixed (by task, field and values) so both sides write the same file.
    """
    conflicts = {
        c
        for c in (*ours.conflicts, *theirs.conflicts)
        if (c in ours.conflicts and c in theirs.conflicts) or c not in base.conflicts
    }
    renumbered = {*base.renumbered, *ours.renumbered, *theirs.renumbered}
    return Records(
        tuple(sorted(conflicts, key=_conflict_order)),
        tuple(sorted(renumbered, key=_renumbering_order)),
        max(base.highest, ours.highest, theirs.highest),
        ours.uids,  # the merge of trees works the identities out from the tasks themselves
    )


def _conflict_order(c: Conflict) -> tuple[object, ...]:
    task = (-1, "") if c.task is None else (c.task.number, c.task.prefix)
    return (*task, c.field, *map(_absent_first, (c.base, c.ours, c.theirs, c.kept)))


def _renumbering_order(r: Renumbering) -> tuple[object, ...]:
    return (
        r.old.number,
        r.old.prefix,
        r.new.number,
        r.new.prefix,
        r.title,
        _absent_first(r.old_path),
        _absent_first(r.new_path),
        r.side,
    )


def _absent_first(value: str | None) -> tuple[bool, str]:
    return value is not None, value or ""


def _stored(r: Renumbering) -> dict[str, str | None]:
    """A renumbering as stored: which side of the merge moved depends on who ran it."""
    data = r.to_json()
    del data["side"]
    return data


def _text(item: dict[str, object], key: str) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{key} is {type(value).__name__}, not a string")


def _conflict(item: dict[str, object]) -> Conflict:
    task = _text(item, "task")
    field = _text(item, "field")
    if field is None:
        raise KeyError("field")
    return Conflict(
        None if task is None else TaskId.parse(task),
        field,
        _text(item, "base"),
        _text(item, "ours"),
        _text(item, "theirs"),
        _text(item, "kept"),
    )


def _renumbering(item: dict[str, object]) -> Renumbering:
    old, new, title = (_text(item, key) for key in ("old", "new", "title"))
    if old is None or new is None or title is None:
        raise KeyError("old, new and title")
    return Renumbering(
        TaskId.parse(old),
        TaskId.parse(new),
        title,
        "",
        _text(item, "old_path"),
        _text(item, "new_path"),
    )
