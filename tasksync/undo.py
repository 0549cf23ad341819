"""Undo: a new commit that takes back what one earlier commit of the ref did.

The inverse is never a reset. What the commit changed is taken back by a three-way merge whose
base is that commit, "ours" the tip and "theirs" its parent, the way ``git revert`` works but
task-aware (:func:`tasksync.trees.merge_trees`). Before that, the fields the commit changed
(a task's status, title, description or spec; a whole task for a create or delete) are
compared with what changed between that commit and the tip: when a later operation touched
the same task field, the undo is refused and the operations are named, because undoing would
silently overwrite them.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import records
from .errors import NotInHistory, UndoRefused
from .events import Event, diff
from .history import history_entry
from .markdown import RECORDS_PATH, Index
from .operations import Change
from .store import Repo

#: Event kinds that concern a whole task: they overlap with any change of that task.
_WHOLE = frozenset({"created", "deleted"})

Field = tuple[int | None, str]  # (task number, event kind)


def _fields(events: Iterable[Event]) -> set[Field]:
    return {
        (None if e.task is None else e.task.number, e.kind) for e in events if e.kind != "conflict"
    }


def _overlaps(undone: set[Field], field: Field) -> bool:
    number, kind = field
    if field in undone:
        return True
    touched = {k for n, k in undone if n == number}
    return bool(touched) and (kind in _WHOLE or bool(touched & _WHOLE))


def _events(repo: Repo, before: str, after: str) -> list[Event]:
    return diff(repo.reader(before), repo.reader(after), repo.changed(before, after))


def _blockers(repo: Repo, commit: str, tip: str, undone: set[Field]) -> list[tuple[str, str, str]]:
    """The later commits (newest first) that changed a field ``commit`` changed, as
    (commit, task id, field): each operation on the first-parent chain since ``commit`` (an
    operation and a later undo of it cancel out), and for the merge that brought ``commit``
    in, what it holds that ``commit`` lacks."""
    out: list[tuple[str, str, str]] = []
    cancelled: set[str] = set()  # later operations a later undo took back: out of the way
    for later in repo.first_parents(tip):
        if later.id == commit:
            break
        if later.id in cancelled:
            continue
        target = history_entry(later).trailer("Tasksync-Undone")
        if target is not None and target != commit and repo.is_ancestor(commit, target):
            cancelled.add(target)
            continue
        parent = later.parents[0] if later.parents else None
        inside = parent is not None and repo.is_ancestor(commit, parent)
        before = parent if inside and parent is not None else commit
        for event in _events(repo, before, later.id):
            field = (None if event.task is None else event.task.number, event.kind)
            if event.kind != "conflict" and _overlaps(undone, field):
                out.append((later.id, "-" if event.task is None else str(event.task), event.kind))
        if not inside:
            break
    return out


def undo_change(repo: Repo, ref: str, commit: str, tip: str) -> Change:
    """The change that takes back ``commit`` on top of ``tip``; UndoRefused when a later
    operation touched the same task fields."""
    from .trees import TreeSide, merge_trees

    if not repo.is_ancestor(commit, tip):
        raise NotInHistory(commit, ref)
    info = repo.commit_info(commit)
    if not info.parents:
        raise UndoRefused(commit, (), reason="it created the task store")
    parent = info.parents[0]
    undone_events = _events(repo, parent, commit)
    undone = _fields(undone_events)
    later = _blockers(repo, commit, tip, undone)
    if later:
        raise UndoRefused(commit, later)
    result = merge_trees(
        repo.reader(commit),
        TreeSide(repo.changed(commit, tip), repo.reader(tip)),
        TreeSide(repo.changed(commit, parent), repo.reader(parent)),
        repo.line_merge,
        renumber="theirs",
    )
    if result.conflicts:
        raise UndoRefused(
            commit,
            ((tip, str(c.task) if c.task is not None else "-", c.field) for c in result.conflicts),
        )
    entry = history_entry(info)
    tasks = sorted({e.task for e in undone_events if e.task is not None})
    index = None if result.index_text is None else Index.parse(result.index_text)
    return Change(
        index,
        _keep_highest(repo, tip, result.files),
        f"tasks: undid {commit[:10]} ({entry.summary})",
        (
            ("Tasksync-Operation", "undo"),
            ("Tasksync-Undone", commit),
            *(("Tasksync-Task", str(task)) for task in tasks),
        ),
        None,
    )


def _keep_highest(
    repo: Repo, tip: str, files: tuple[tuple[str, str | None], ...]
) -> tuple[tuple[str, str | None], ...]:
    """``files`` with the records' highest id at least the tip's highest task id: a task the
    undo removes (an undone create) keeps its id from being given to another."""
    written = dict(files)
    before = repo.reader(tip)(RECORDS_PATH)
    kept = records.parse(written.get(RECORDS_PATH, before))
    numbers = [entry.id.number for entry in repo.snapshot(tip).index]
    raised = kept.with_highest(max(numbers, default=0))
    if raised == kept:
        return files
    written[RECORDS_PATH] = records.render(raised)
    return tuple(written.items())
