"""Task operations as pure functions from a snapshot of the ref to a change.

An operation never reads git itself: it gets a :class:`Snapshot` (the parsed index and a
reader for other files of the same commit) and returns a :class:`Change`. The store applies it
inside its compare-and-swap loop, and applies it again to a newer snapshot when another writer
got there first; so ids are allocated, and preconditions checked, against the tip that is
actually replaced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .errors import FormatError, PreconditionFailed
from .markdown import INDEX_PATH, RECORDS_PATH, SPEC_DIR, Index, TaskLine, task_line
from .model import Status, Task, TaskId, check_title, slugify
from .spec import check_description, context, new_spec, spec_title, with_context, with_title

if TYPE_CHECKING:
    from .records import Records

Trailers = tuple[tuple[str, str], ...]


# Snapshot and Change are made for every operation and never leave the package: named tuples,
# which cost a fraction of a frozen dataclass to define (at every start of the CLI) and to make.
# Their field ``index`` (the parsed tasks.md) hides tuple.index, which nothing here calls.


class Snapshot(NamedTuple):
    """The task files of one commit of the ref."""

    index: Index  # type: ignore[assignment]
    read: Callable[[str], str | None]  # text of another file of the same commit, or None
    commit: str | None = None
    # The store's handle on the commit's tree, opaque here: a change made from this snapshot
    # is written on top of it without reading the commit again.
    tree: object = None

    def task(self, entry: TaskLine) -> Task:
        """The record of one index entry, with its description."""
        return task_record(entry, self.read)

    def spec_text(self, entry: TaskLine) -> str | None:
        path = entry.spec_path
        return self.read(path) if path is not None else None


class Change(NamedTuple):
    """What one operation does to the ref: new index, other files, and its commit message."""

    index: Index | None  # type: ignore[assignment]  # None: tasks.md unchanged
    files: tuple[tuple[str, str | None], ...]  # path → new text, or None to remove
    summary: str
    trailers: Trailers
    task: Task | None
    parents: tuple[str, ...] = ()  # more parents after the tip: a merge commit
    target: str | None = None  # an existing commit to move the ref to, writing nothing

    @property
    def message(self) -> str:
        return self.message_with(())

    def message_with(self, trailers: Trailers) -> str:
        """The commit message: the summary, a blank line, this change's trailers and more."""
        body = "".join([f"{key}: {value}\n" for key, value in (*self.trailers, *trailers)])
        return f"{self.summary}\n\n{body}"


def task_record(
    entry: TaskLine, read: Callable[[str], str | None], status: Status | None = None
) -> Task:
    """Build the :class:`Task` for ``entry`` (with ``status`` instead of its own, if given):
    its description is the spec's ``## Context`` when the spec has one, otherwise the
    description bullets under the index line."""
    path = entry.spec_path
    description = "\n".join(entry.description)
    if path is not None:
        text = read(path)
        found = context(text) if text is not None else None
        if found is not None:
            description = found
    status = entry.status if status is None else status
    return Task(entry.id, entry.title, status, path, description)


def _trailers(operation: str, task_id: TaskId | str, *extra: tuple[str, str]) -> Trailers:
    return (("Tasksync-Operation", operation), ("Tasksync-Task", str(task_id)), *extra)


def _quote(title: str) -> str:
    return f"\u201c{title}\u201d"


class Create(NamedTuple):
    title: str
    description: str = ""
    spec: str | None = None
    status: Status = Status.TODO

    def apply(self, snap: Snapshot) -> Change:
        title = check_title(self.title)
        description = check_description(self.description)
        index = snap.index
        task_id = index.next_id()
        highest = _records(snap).highest  # ids of deleted tasks are not given out again
        if highest >= task_id.number:
            task_id = index.style_id(highest + 1)
        link = index.link_for(task_id, slugify(title))
        new_index = index.with_task_added(task_line(self.status.checkbox, title, task_id, link))
        entry = new_index.find(task_id)
        spec_path = entry.spec_path or f"{SPEC_DIR}/{task_id.digits}-{slugify(title)}.md"
        if self.spec is None:
            text = new_spec(task_id, title, description)
        else:
            text = with_title(self.spec, task_id, title) if spec_title(self.spec) else self.spec
            if description:
                text = with_context(text, description)
        kept = _records(snap)
        uids = kept.uid_map()
        uids[task_id.number] = os.urandom(8).hex()  # who this task is, whatever its id becomes
        files = ((spec_path, text), (RECORDS_PATH, _rendered(kept.with_uids(uids))))
        task = task_record(entry, dict(files).get)
        return Change(
            new_index,
            files,
            f"{task_id}: created {_quote(title)} ({self.status.value})",
            _trailers(
                "create",
                task_id,
                ("Tasksync-Title", title),
                ("Tasksync-Status", self.status.value),
            ),
            task,
        )


class SetStatus(NamedTuple):
    task_id: TaskId
    status: Status
    expect: Status | None = None

    def apply(self, snap: Snapshot) -> Change | Task:
        entry = snap.index.find(self.task_id)
        old = entry.status
        if self.expect is not None and old is not self.expect:
            raise PreconditionFailed(str(entry.id), "status", self.expect.value, old.value)
        task = task_record(entry, snap.read, self.status)
        if old is self.status:
            return task
        new_index = snap.index.with_checkbox(entry, self.status.checkbox)
        # _value_ is the member's value, read without the descriptor behind .value.
        before, after, ident = old._value_, self.status._value_, str(entry.id)
        return Change(
            new_index,
            (),
            f"{ident}: status {before} \u2192 {after}",
            _trailers("set-status", ident, ("Tasksync-Status", f"{before} -> {after}")),
            task,
        )


class Update(NamedTuple):
    task_id: TaskId
    title: str | None = None
    description: str | None = None
    spec: str | None = None

    def apply(self, snap: Snapshot) -> Change | Task:
        entry = snap.index.find(self.task_id)
        before = snap.task(entry)
        index = snap.index
        old_spec = snap.spec_text(entry)
        spec = old_spec if self.spec is None else self.spec
        said: list[str] = []
        extra: list[tuple[str, str]] = []
        if self.title is not None:
            title = check_title(self.title)
            if title != entry.title:
                index = index.with_title(entry, title)
                entry = index.find(entry.id)
                said.append(f"title {_quote(before.title)} \u2192 {_quote(title)}")
                extra.append(("Tasksync-Title", title))
                if spec is not None and self.spec is None:
                    spec = with_title(spec, entry.id, title)
        if self.description is not None:
            description = check_description(self.description)
            changed = False
            if entry.description and tuple(description.split("\n")) != entry.description:
                index = index.with_description(entry, description)
                entry = index.find(entry.id)
                changed = True
            if spec is None:
                spec = new_spec(entry.id, entry.title, description)
                changed = True
            elif context(spec) != description:
                spec = with_context(spec, description)
                changed = True
            if changed:
                said.append("description")
        if self.spec is not None and self.spec != old_spec:
            said.append("spec")
        files: tuple[tuple[str, str | None], ...] = ()
        if spec is not None and spec != old_spec:
            if entry.spec_path is None:
                raise FormatError(
                    INDEX_PATH,
                    f"task {entry.id} links to {entry.link!r}, which is not a spec file under "
                    "process/ (nothing was written); point its link at process/tasks/NNN-slug.md",
                )
            files = ((entry.spec_path, spec),)
        if index is snap.index and not files:
            return before
        fields = [part.split(" ", 1)[0] for part in said] or ["spec"]
        written = dict(files)
        return Change(
            None if index is snap.index else index,
            files,
            f"{entry.id}: changed {', '.join(said) or 'spec'}",
            _trailers("update", entry.id, ("Tasksync-Fields", ", ".join(fields)), *extra),
            task_record(entry, lambda path: written[path] if path in written else snap.read(path)),
        )


class Delete(NamedTuple):
    task_id: TaskId

    def apply(self, snap: Snapshot) -> Change:
        entry = snap.index.find(self.task_id)
        task = snap.task(entry)
        files: tuple[tuple[str, str | None], ...] = ()
        path = entry.spec_path
        if path is not None and path.startswith(SPEC_DIR + "/") and snap.read(path) is not None:
            files = ((path, None),)
        files += (_keep_highest(snap, entry.id.number),)
        return Change(
            snap.index.without(entry),
            files,
            f"{entry.id}: deleted {_quote(entry.title)}",
            _trailers("delete", entry.id, ("Tasksync-Title", entry.title)),
            task,
        )


def _records(snap: Snapshot) -> Records:
    """The records file of ``snap`` (imported here: a status change never reads it)."""
    from .records import parse

    return parse(snap.read(RECORDS_PATH))


def _rendered(kept: Records) -> str | None:
    from .records import render

    return render(kept)


def _keep_highest(snap: Snapshot, number: int) -> tuple[str, str | None]:
    """The records file with ``number`` counted as given out (live ids count by themselves)
    and the task's identity gone with it."""
    kept = _records(snap).with_highest(number)
    uids = kept.uid_map()
    uids.pop(number, None)
    return RECORDS_PATH, _rendered(kept.with_uids(uids))


INITIAL_INDEX = "# Tasks\n"


def initial_change() -> Change:
    """The first commit of a new store: an index with a heading and no tasks."""
    return Change(
        Index.parse(INITIAL_INDEX),
        (),
        "tasks: initialized the task store",
        (("Tasksync-Operation", "init"),),
        None,
    )


__all__ = [
    "INDEX_PATH",
    "Change",
    "Create",
    "Delete",
    "SetStatus",
    "Snapshot",
    "Update",
    "initial_change",
    "task_record",
]
