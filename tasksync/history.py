"""The history of the tasks ref as records: one per operation, read from its commit.

Every operation is one commit whose message says what happened in words, then trailers a
program reads (``Tasksync-Operation``, ``Tasksync-Task``, ``Tasksync-Workspace``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Commit

_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*): (.*)")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One operation on the tasks ref, as recorded in its commit."""

    commit: str
    summary: str
    operation: str
    task_ids: tuple[str, ...]
    workspace: str
    author: str
    time: int
    offset_minutes: int
    trailers: tuple[tuple[str, str], ...]

    def trailer(self, key: str) -> str | None:
        """The first value of trailer ``key`` in this commit, or None."""
        for name, value in self.trailers:
            if name.lower() == key.lower():
                return value
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "summary": self.summary,
            "operation": self.operation,
            "task_ids": list(self.task_ids),
            "workspace": self.workspace,
            "author": self.author,
            "time": self.time,
            "offset_minutes": self.offset_minutes,
            "trailers": [list(pair) for pair in self.trailers],
        }


def parse_trailers(message: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A commit message's subject and the ``Key: value`` trailers of its last paragraph."""
    paragraphs = message.strip().split("\n\n")
    subject = paragraphs[0].split("\n", 1)[0]
    if len(paragraphs) < 2:
        return subject, ()
    pairs = []
    for line in paragraphs[-1].split("\n"):
        match = _TRAILER.fullmatch(line.strip())
        if match is None:
            return subject, ()
        pairs.append((match.group(1), match.group(2)))
    return subject, tuple(pairs)


def history_entry(commit: Commit) -> HistoryEntry:
    subject, trailers = parse_trailers(commit.message)

    def values(key: str) -> Iterable[str]:
        return (v for k, v in trailers if k.lower() == key.lower())

    return HistoryEntry(
        commit=commit.id,
        summary=subject,
        operation=next(iter(values("Tasksync-Operation")), "unknown"),
        task_ids=tuple(values("Tasksync-Task")),
        workspace=next(iter(values("Tasksync-Workspace")), ""),
        author=commit.author,
        time=commit.time,
        offset_minutes=commit.offset_minutes,
        trailers=trailers,
    )
