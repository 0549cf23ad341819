"""Operations that merge: an edit of a whole file, and the resolution of a recorded conflict.

Like every operation they are pure functions from a snapshot of the tip to a change, applied
inside the compare-and-swap loop: a hand edit of tasks.md is merged three-way onto whatever the
tip is when it lands, so nothing another workspace wrote while the editor was open is lost.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import records
from .errors import CannotResolve, FormatError, NoConflict
from .markdown import INDEX_PATH, SPEC_DIR, Index, TaskLine
from .merge import IndexMerge, merge3
from .model import Status, TaskId
from .operations import Change, Delete, Snapshot, Update
from .records import RECORDS_PATH, Conflict, Renumbering
from .trees import LineMerge


class Edited(NamedTuple):
    """What a hand edit did once merged onto the tip."""

    change: Change | None  # None: nothing to write
    merged: IndexMerge | None


class EditIndex(NamedTuple):
    """tasks.md as an editor opened it (``base``) and saved it (``edited``)."""

    base: str
    edited: str

    def apply(self, snap: Snapshot) -> Edited:
        current = snap.index.text
        if self.edited == self.base:
            return Edited(None, None)
        merged = merge3(self.base, self.edited, current, renumber="ours")
        files: list[tuple[str, str | None]] = []
        result = Index.parse(merged.text)
        kept = {entry.id.number for entry in result.tasks}
        linked = {entry.spec_path for entry in result.tasks}
        still = kept | _numbers(self.edited)
        removed = [entry for entry in Index.parse(self.base).tasks if entry.id.number not in still]
        for entry in removed:  # a task line deleted by hand takes its spec file along
            path = entry.spec_path
            ours_only = path is not None and path.startswith(SPEC_DIR + "/") and path not in linked
            if ours_only and path is not None and snap.read(path) is not None:
                files.append((path, None))
        files.extend(
            _records(
                snap,
                merged.conflicts,
                merged.renumbered,
                max((entry.id.number for entry in removed), default=0),
            )
        )
        if merged.text == current and not files:
            return Edited(None, merged)
        before = {entry.id.number: entry for entry in snap.index.tasks}
        after = {entry.id.number: entry for entry in result.tasks}
        added = sorted(after.keys() - before.keys())
        gone = sorted(before.keys() - after.keys())
        changed = sorted(
            n for n in after.keys() & before.keys() if _content(after[n]) != _content(before[n])
        )
        parts = [
            f"{len(ids)} {word}"
            for ids, word in ((changed, "changed"), (added, "added"), (gone, "removed"))
            if ids
        ]
        summary = f"tasks.md: edited by hand ({', '.join(parts) or 'no task changed'})"
        trailers = (
            ("Tasksync-Operation", "edit"),
            *(("Tasksync-Task", str(after[n].id)) for n in (*changed, *added)),
            *(("Tasksync-Task", str(before[n].id)) for n in gone),
            *(("Tasksync-Renumbered", f"{r.old} -> {r.new}") for r in merged.renumbered),
        )
        change = Change(
            None if merged.text == current else result, tuple(files), summary, trailers, None
        )
        return Edited(change, merged)


def _content(entry: TaskLine) -> tuple[str, str, str, str, str, tuple[str, ...]]:
    """What a task says, not where it stands in the file."""
    return entry.checkbox, entry.title, str(entry.id), entry.link, entry.rest, entry.description


def _numbers(text: str) -> set[int]:
    return {entry.id.number for entry in Index.parse(text).tasks}


class EditSpec(NamedTuple):
    """A task's spec as an editor opened it (``base``; None when it had none) and saved it."""

    task_id: TaskId
    base: str | None
    edited: str
    line_merge: LineMerge

    def apply(self, snap: Snapshot) -> Edited:
        entry = snap.index.find(self.task_id)
        path = entry.spec_path
        if path is None:
            raise FormatError(
                INDEX_PATH,
                f"task {entry.id} links to {entry.link!r}, which is not a spec file under "
                "process/; point its link at process/tasks/NNN-slug.md",
            )
        current = snap.read(path)
        if self.edited in (self.base, current):
            return Edited(None, None)
        conflicts: tuple[Conflict, ...] = ()
        if current == self.base or current is None:
            text = self.edited
        else:
            text, clean = self.line_merge(self.base, self.edited, current, None)
            if not clean:  # the lines just written in the editor stand; the others are kept
                text, _ = self.line_merge(self.base, self.edited, current, "ours")
                conflicts = (Conflict(entry.id, "spec", self.base, self.edited, current, text),)
        files = [(path, text), *_records(snap, conflicts, ())]
        return Edited(
            Change(
                None,
                tuple(files),
                f"{entry.id}: edited its spec by hand",
                (("Tasksync-Operation", "edit-spec"), ("Tasksync-Task", str(entry.id))),
                None,
            ),
            None,
        )


# Conflicts that --take can settle, and how.
_TAKEABLE = ("status", "title", "description", "deleted", "spec")


class Resolve(NamedTuple):
    """Clear a task's conflict records, optionally writing one of the values first.

    ``task_id`` None means the conflicts on lines of tasks.md outside any task.
    """

    task_id: TaskId | None
    field: str | None = None
    take: str | None = None  # "ours", "theirs" or a value

    def apply(self, snap: Snapshot) -> Change:
        kept = records.parse(snap.read(RECORDS_PATH))
        number = None if self.task_id is None else self.task_id.number
        found = tuple(
            c
            for c in kept.conflicts
            if (c.task.number if c.task is not None else None) == number
            and (self.field is None or c.field == self.field)
        )
        name = "tasks.md" if self.task_id is None else str(self.task_id)
        if not found:
            raise NoConflict(name, self.field)
        change: Change | None = None
        if self.take is not None:
            fields = sorted({c.field for c in found})
            if len(fields) > 1:
                raise CannotResolve(
                    name, f"has conflicts on {', '.join(fields)}", "choose one with --field"
                )
            change = self._take(snap, found[-1])
        text = records.render(kept.without(found))
        files = (*(change.files if change is not None else ()), (RECORDS_PATH, text))
        said = ", ".join(sorted({c.field for c in found}))
        how = ""
        if self.take is not None:
            how = f" (took {self.take if self.take in ('ours', 'theirs') else 'a value'})"
        return Change(
            change.index if change is not None else None,
            files,
            f"{name}: resolved {said}{how}",
            (
                ("Tasksync-Operation", "resolve"),
                *((("Tasksync-Task", name),) if self.task_id is not None else ()),
                ("Tasksync-Fields", said),
            ),
            change.task if change is not None else None,
        )

    def _take(self, snap: Snapshot, conflict: Conflict) -> Change | None:
        name = "tasks.md" if self.task_id is None else str(self.task_id)
        if conflict.field not in _TAKEABLE or self.task_id is None:
            raise CannotResolve(
                name,
                f"a {conflict.field} conflict cannot be settled with --take",
                "edit it with `git tasks edit --raw`, then `git tasks resolve` without --take",
            )
        if self.take in ("ours", "theirs"):
            value = conflict.ours if self.take == "ours" else conflict.theirs
        elif conflict.field in ("deleted", "spec"):
            raise CannotResolve(
                name,
                f"a {conflict.field} conflict takes ours or theirs, not a value",
                "use --take ours or --take theirs",
            )
        else:
            value = self.take
        if conflict.field == "deleted":  # None: that side deleted it
            return Delete(self.task_id).apply(snap) if value is None else None
        if value is None:
            raise CannotResolve(name, f"that side has no {conflict.field}", "take the other side")
        return _written(snap, self.task_id, conflict.field, value, raw=self.take != value)


def _written(
    snap: Snapshot, task_id: TaskId, field: str, value: str, *, raw: bool
) -> Change | None:
    """The change that writes ``value`` into one field of a task (None: it is there already)."""
    entry = snap.index.find(task_id)
    if field == "status":
        status = Status.parse(value)
        if status is entry.status:
            return None
        return Change(snap.index.with_checkbox(entry, status.checkbox), (), "", (), None)
    if field == "title":
        result = Update(task_id, title=value).apply(snap)
        return result if isinstance(result, Change) else None
    if field == "description":
        lines = value.splitlines()
        if raw:  # a recorded value: the bullet lines as written
            lines = [_bullet(line) for line in lines]
        return Change(snap.index.with_description(entry, "\n".join(lines)), (), "", (), None)
    if entry.spec_path is None:  # spec
        raise CannotResolve(
            str(task_id), "its link is not a spec file", "fix it with `git tasks edit --raw`"
        )
    return Change(None, ((entry.spec_path, value),), "", (), None)


def _bullet(line: str) -> str:
    """A description line as written (``  - text``) → its text."""
    stripped = line.strip()
    return stripped[1:].strip() if stripped.startswith("-") else stripped


def _records(
    snap: Snapshot,
    conflicts: tuple[Conflict, ...],
    renumbered: tuple[Renumbering, ...],
    highest: int = 0,
) -> list[tuple[str, str | None]]:
    """The records file with new conflicts, renumberings and the highest id given out, if
    that changes it."""
    if not conflicts and not renumbered and not highest:
        return []
    old = snap.read(RECORDS_PATH)
    kept = records.parse(old).with_conflicts(conflicts)
    kept = kept.with_renumbered(renumbered).with_highest(highest)
    text = records.render(kept)
    return [] if text == old else [(RECORDS_PATH, text)]


def edits_change(base: Snapshot, edits: dict[str, str | None], summary: str) -> Change | None:
    """Files edited away from the ref (``edits``: path → new text, None to remove a spec) as
    a change on ``base``, the state they were edited from; None when nothing differs.

    Tasks the edits add get creation identities and removed ones give theirs up, as
    ``create`` and ``delete`` do, and the highest id is kept: merged into a tip that gave one
    of their ids to another task meanwhile, the added task is the one renumbered, and no id
    is given twice.
    """
    from .events import diff

    index: Index | None = None
    files: list[tuple[str, str | None]] = []
    for path, text in sorted(edits.items()):
        if path == INDEX_PATH and text is not None:
            index = None if text == base.index.text else Index.parse(text)
        elif path.startswith(SPEC_DIR + "/") and path.endswith(".md") and path != INDEX_PATH:
            if text != base.read(path):
                files.append((path, text))
        else:
            raise ValueError(f"{path!r} is not a file of the tasks tree; edit tasks.md or specs")
    if index is None and not files:
        return None
    before = {entry.id.number for entry in base.index}
    after = before if index is None else {entry.id.number for entry in index}
    kept = records.parse(base.read(RECORDS_PATH))
    uids = {n: uid for n, uid in kept.uid_map().items() if n in after}
    for number in sorted(after - before):
        uids.setdefault(number, os.urandom(8).hex())
    kept = kept.with_uids(uids).with_highest(max(before | after, default=0))
    text = records.render(kept)
    if text != base.read(RECORDS_PATH):
        files.append((RECORDS_PATH, text))
    overlay = dict(files)
    if index is not None:
        overlay[INDEX_PATH] = index.text

    def read(path: str) -> str | None:
        return overlay[path] if path in overlay else base.read(path)

    tasks = sorted({e.task for e in diff(base.read, read, frozenset(overlay)) if e.task})
    trailers = [("Tasksync-Operation", "edit")]
    if base.commit is not None:
        trailers.append(("Tasksync-Base", base.commit))
    trailers += [("Tasksync-Task", str(task)) for task in tasks]
    return Change(index, tuple(files), summary, tuple(trailers), None)
