"""Import commits on the tasks ref: what ``git tasks migrate`` wrote, and what builds on them.

An import commit carries the trailers ``Tasksync-Operation: import`` and ``Tasksync-Source``:
the project commit whose task files it holds, or ``worktree`` for a working tree's. A worktree
builds on the newest import whose source commit its HEAD contains (:func:`find_imports`): the
in-tree files differ from that state only by edits made since. An import of a commit is written
the same way wherever it is made, so two repositories importing one commit onto one parent
write one commit; two histories that imported one commit separately still hold the same files
there: the state a merge of histories that share no commit (or only an empty one made by
``init``) starts from (:func:`import_base`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .markdown import INDEX_PATH

if TYPE_CHECKING:
    from .store import Commit, Repo

OPERATION = "import"
#: The ``Tasksync-Source`` of a state read from a working tree.
WORKTREE = "worktree"


class Imports(NamedTuple):
    """The imports a tasks ref holds, as seen from one worktree (see :func:`find_imports`)."""

    #: The newest import whose source commit HEAD contains, and that commit (None: none fits).
    base: str | None
    source: str | None
    #: The imports the ref reaches that are newer than ``base`` (all of them without one),
    #: newest first, each with its source (a commit id or ``worktree``).
    newer: tuple[tuple[str, str], ...]
    #: The source commit of the newest import read from a commit (None: none was).
    latest_source: str | None


def find_imports(target: Repo, project: Repo, tip: str | None, head: str | None) -> Imports:
    """The imports of ``target``'s history up to ``tip``, newest first down to the newest one
    whose source commit ``project``'s ``head`` contains."""
    newer: list[tuple[str, str]] = []
    latest = None
    if tip is not None:
        for commit in target.ancestors(tip):
            source = import_source(commit)
            if source is None:
                continue
            if source != WORKTREE:
                latest = latest or source
                if head is not None and project.is_ancestor(source, head):
                    return Imports(commit.id, source, tuple(newer), latest)
            newer.append((commit.id, source))
    return Imports(None, None, tuple(newer), latest)


def import_source(commit: Commit) -> str | None:
    """The ``Tasksync-Source`` of an import commit (a commit id or ``worktree``); None for a
    commit of another operation."""
    if f"Tasksync-Operation: {OPERATION}" not in commit.message:
        return None  # most commits of a long history: no trailer parsing
    from .history import parse_trailers

    _, trailers = parse_trailers(commit.message)
    values = {key.lower(): value for key, value in trailers}
    if values.get("tasksync-operation") != OPERATION:
        return None
    return values.get("tasksync-source") or None


def import_base(repo: Repo, tip: str, other: str, base: str | None) -> str | None:
    """The state to merge ``other`` into ``tip`` against: the merge base of the commit graph,
    unless the histories share no commit, or only one that holds no task (made by ``init``):
    then an import of ``other``'s history since that base whose source commit ``tip``'s
    history imported too (the newest such), whose files both sides started from."""
    if base is not None and not holds_nothing(repo, base):
        return base
    mine = {
        source
        for commit in repo.ancestors(tip, hide=base)
        if (source := import_source(commit)) is not None and source != WORKTREE
    }
    if mine:
        for commit in repo.ancestors(other, hide=base):
            if import_source(commit) in mine:
                return commit.id
    return base


def holds_nothing(repo: Repo, commit: str) -> bool:
    """Whether a state of the tasks ref holds only a process/tasks.md without a task, as
    ``git tasks init`` leaves it."""
    for path, _ in repo.tree_entries(commit):
        if path not in (INDEX_PATH.split("/", 1)[0], INDEX_PATH):
            return False
    snapshot = repo.snapshot(commit)
    return snapshot.read(INDEX_PATH) is not None and not snapshot.index.tasks
