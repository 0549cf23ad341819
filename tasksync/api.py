"""The Python API: :class:`TaskStore`, what task commands import."""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import NotInitialized, NotTasksHistory, SpecNotFound
from .markdown import INDEX_PATH, Index
from .model import Conflict, HistoryEntry, Renumbering, Status, Task, TaskId
from .operations import Change, Create, Delete, SetStatus, Snapshot, Update, initial_change
from .store import Commit, Repo
from .transaction import Transactor
from .workspace import Hub, Workspace, find_hub

if TYPE_CHECKING:  # merging is imported when used: `git tasks status set` never needs it
    from .editing import Edited, EditIndex, EditSpec
    from .merge import IndexMerge
    from .records import Records
    from .sync import SyncResult
    from .trees import TreeMerge

TaskRef = str | int | TaskId
_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*): (.*)")


class Merged(NamedTuple):
    """What :meth:`TaskStore.merge` did."""

    outcome: str  # "up-to-date", "fast-forward" or "merged"
    commit: str | None  # the commit the ref moved to, None when it did not move
    conflicts: tuple[Conflict, ...]
    renumbered: tuple[Renumbering, ...]


def task_id(value: TaskRef) -> TaskId:
    """Read any accepted id form (``1``, ``"001"``, ``"#1"``, ``"md#1"``, ``"task#1"``)."""
    if isinstance(value, TaskId):
        return value
    return TaskId.parse(str(value))


def _status(value: Status | str) -> Status:
    return value if isinstance(value, Status) else Status.parse(value)


class TaskStore:
    """Tasks on the ref ``refs/tasks/main`` of the repository a path is in.

    Every write is one commit on the ref, landed with compare-and-swap; reads see the tip at
    the moment of the call, whichever worktree wrote it.
    """

    def __init__(
        self,
        repo: Repo,
        workspace: Workspace,
        hub: Hub | None = None,
        local: Repo | None = None,
    ) -> None:
        self._repo = repo  # where the tasks ref lives: the hub's repository, or local
        self._local = local or repo  # the workspace's own repository
        #: The hub this workspace uses (None: its own repository); ``hub.repo`` is None when
        #: the hub has gone missing and this workspace works on its own ref meanwhile.
        self.hub = hub
        self.workspace = workspace
        self._tx = Transactor(
            repo,
            workspace.ref,
            timeout=workspace.retry_timeout,
            file_lock=workspace.file_lock,
            trailers=workspace.trailers(),
        )
        #: The commit the last write through this handle made; None after a no-op.
        self.last_commit: str | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ".") -> TaskStore:
        """Open the store of the repository containing ``path`` (worktree, subdir or bare).

        A session clone (``origin`` a repository on this machine, or ``tasks.hub``) opens its
        hub's repository and reads and writes the hub's ref: objects and ref together.
        """
        local = Repo.discover(path)
        hub = find_hub(local)
        repo = hub.repo if hub is not None and hub.repo is not None else local
        return cls(repo, Workspace.of(local, repo), hub, local)

    @property
    def ref(self) -> str:
        return self.workspace.ref

    @property
    def common_dir(self) -> Path:
        """This workspace's git dir shared by its worktrees (scratch files of edits go here)."""
        return self._local.location.common_dir

    @property
    def store_dir(self) -> Path:
        """The git dir of the repository holding the tasks ref (the hub's, for a session)."""
        return self._repo.location.common_dir

    @property
    def workdir(self) -> Path:
        """This worktree's top directory (the git dir in a bare repository)."""
        location = self._local.location
        return location.workdir or location.git_dir

    @property
    def hub_missing(self) -> bool:
        """Whether this workspace has a hub that cannot be opened (it works on its own ref)."""
        return self.hub is not None and self.hub.repo is None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether commit ``descendant`` of the tasks ref's history contains ``ancestor``."""
        return self._repo.is_ancestor(ancestor, descendant)

    def check(self, commit: str | None = None, *, since: str | None = None) -> list[str]:
        """The problems of a state of the tasks ref (default: the tip) that the pre-push hook
        would refuse; empty when it is sound. With ``since``, spec files are read only where
        they changed after that earlier state."""
        from .verify import check_store_commit

        target = commit or self.head()
        if target is None:
            raise NotInitialized(self.ref)
        return check_store_commit(self._repo, target, since=since)

    def sync(self, remote: str | None = None) -> SyncResult:
        """Merge with ``remote``'s tasks ref and push the result so the remote fast-forwards
        (default ``origin``); a session clone first hands the hub what it wrote while the hub
        was missing. See :mod:`tasksync.sync`."""
        from .sync import sync

        return sync(self, remote, timeout=self.workspace.sync_timeout)

    def unsynced(self) -> bool:
        """Whether this workspace's own ref holds work its hub has not merged (written while
        the hub was missing); ``git tasks sync`` merges it."""
        if self._local is self._repo:
            return False
        mine = self._local.tip(self.ref)
        if mine is None:
            return False
        tip = self._repo.tip(self.ref)
        return tip is None or not self._repo.is_ancestor(mine, tip)

    def head(self) -> str | None:
        """The commit the ref points at now, or None before ``init``."""
        return self._repo.tip(self.ref)

    # -- writes ---------------------------------------------------------------------------------

    def init(self) -> bool:
        """Create the ref with an empty index. False when it already existed."""
        self.last_commit = None
        self._repo.ensure_reflog(self.ref)

        def first(snap: Snapshot) -> Change | bool:
            return False if snap.commit is not None else initial_change()

        result, commit = self._tx.run(first, create=True)
        self.last_commit = commit
        return commit is not None and result is not False

    def create(
        self,
        title: str,
        description: str = "",
        spec: str | None = None,
        status: Status | str = Status.TODO,
    ) -> Task:
        """Add a task with the next free id (allocated against the tip that is replaced)."""
        return self._write(Create(title, description, spec, _status(status)))

    def set_status(
        self, task: TaskRef, status: Status | str, expect: Status | str | None = None
    ) -> Task:
        """Set a task's status; with ``expect``, only if it is still that status."""
        expected = None if expect is None else _status(expect)
        return self._write(SetStatus(task_id(task), _status(status), expected))

    def update(
        self,
        task: TaskRef,
        title: str | None = None,
        description: str | None = None,
        spec: str | None = None,
    ) -> Task:
        """Change a task's title, description (its spec's ``## Context``) or whole spec."""
        return self._write(Update(task_id(task), title, description, spec))

    def delete(self, task: TaskRef) -> Task:
        """Remove a task's line, its description and its spec file; returns what was removed."""
        return self._write(Delete(task_id(task)))

    def _write(self, operation: Create | SetStatus | Update | Delete) -> Task:
        self.last_commit = None
        result, commit = self._tx.run(operation.apply)
        self.last_commit = commit
        task = result.task if isinstance(result, Change) else result
        if not isinstance(task, Task):  # pragma: no cover - every write operation yields a task
            raise TypeError(f"{type(operation).__name__} produced no task")
        return task

    # -- merging --------------------------------------------------------------------------------

    def merge(self, revision: str, *, keep_ids: str | None = None) -> Merged:
        """Merge another history of the tasks ref (a fetched ref, a commit) into this one.

        Fast-forwards when this ref has nothing the other lacks; otherwise writes a merge commit
        whose tree is the task-aware merge of both sides. Conflicts never stop the merge: each
        is settled by a fixed rule and recorded (see :meth:`conflicts`). A task created under
        one id on both sides keeps it on one side and the other copy gets the next free id:
        with ``keep_ids="ours"`` (or ``"theirs"``) that side keeps its ids, else the copy that
        sorts greater moves, the same whichever side merges.
        """
        if keep_ids not in (None, "ours", "theirs"):
            raise ValueError(f"keep_ids is {keep_ids!r}: use 'ours', 'theirs' or None")
        from .trees import TreeSide, merge_trees

        other = self._repo.resolve_commit(revision)
        self._check_tasks_commit(revision, other)
        seen: list[TreeMerge] = []

        def apply(snap: Snapshot) -> Change | str:
            tip = snap.commit
            if tip is None:
                return Change(None, (), f"tasks: took {revision}", (), None, target=other)
            base = self._repo.merge_base(tip, other)
            if other in (tip, base):
                return "up to date"
            if base == tip:
                return Change(
                    None, (), f"tasks: fast-forward to {revision}", (), None, target=other
                )
            repo = self._repo
            result = merge_trees(
                repo.reader(base),
                TreeSide(repo.changed(base, tip), repo.reader(tip)),
                TreeSide(repo.changed(base, other), repo.reader(other)),
                repo.line_merge,
                renumber=None if keep_ids is None else ("theirs" if keep_ids == "ours" else "ours"),
            )
            seen[:] = [result]
            said = [f"{len(result.conflicts)} conflicts"] if result.conflicts else []
            said += [f"{len(result.renumbered)} renumbered"] if result.renumbered else []
            extra = f" ({', '.join(said)})" if said else ""
            return Change(
                None if result.index_text is None else Index.parse(result.index_text),
                result.files,
                f"tasks: merged {revision}{extra}",
                (
                    ("Tasksync-Operation", "merge"),
                    ("Tasksync-Merged", other),
                    *(("Tasksync-Renumbered", f"{r.old} -> {r.new}") for r in result.renumbered),
                ),
                None,
                parents=(other,),
            )

        self.last_commit = None
        outcome, commit = self._tx.run(apply, create=True)
        self.last_commit = commit
        if not isinstance(outcome, Change):
            return Merged("up-to-date", None, (), ())
        if outcome.target is not None:
            return Merged("fast-forward", commit, (), ())
        return Merged("merged", commit, seen[0].conflicts, seen[0].renumbered)

    def _check_tasks_commit(self, revision: str, commit: str) -> None:
        """Refuse to merge a commit that is not a state of a tasks ref (a code branch, say)."""
        from .markdown import RECORDS_PATH

        names = self._repo.top_names(commit)
        allowed = {INDEX_PATH.split("/", 1)[0], RECORDS_PATH.split("/", 1)[0]}
        if not names <= allowed or self._repo.reader(commit)(INDEX_PATH) is None:
            raise NotTasksHistory(revision, names)

    def _records(self) -> Records:
        from .records import RECORDS_PATH, parse

        return parse(self._tx.snapshot().read(RECORDS_PATH))

    def conflicts(self, task: TaskRef | None = None) -> tuple[Conflict, ...]:
        """The recorded conflicts not yet resolved, of one task or all."""
        kept = self._records()
        if task is None:
            return kept.conflicts
        return kept.for_task(task_id(task).number)

    def renumbered(self, task: TaskRef) -> tuple[Renumbering, ...]:
        """Renumberings by merges from or to ``task``'s id: a task created as this id somewhere
        that got another one, or this task itself, created under another id."""
        return self._records().moved(task_id(task).number)

    def resolve(
        self, task: TaskRef | None, field: str | None = None, take: str | None = None
    ) -> tuple[Conflict, ...]:
        """Clear a task's conflict records (``task`` None: those outside any task).

        With ``take`` ("ours", "theirs" or a value) that value is written first; with several
        fields in conflict, ``field`` says which. Returns the records cleared.
        """
        from .editing import Resolve
        from .records import RECORDS_PATH, parse

        wanted = None if task is None else task_id(task)
        cleared: list[Conflict] = []

        def apply(snap: Snapshot) -> Change:
            before = parse(snap.read(RECORDS_PATH)).conflicts
            change = Resolve(wanted, field, take).apply(snap)
            after = parse(dict(change.files).get(RECORDS_PATH)).conflicts
            cleared[:] = [c for c in before if c not in after]
            return change

        self.last_commit = None
        _, self.last_commit = self._tx.run(apply)
        return tuple(cleared)

    def edit_index(self, base: str, edited: str) -> IndexMerge | None:
        """Land a hand edit of tasks.md: ``base`` as the editor opened it, ``edited`` as saved.

        The edit is merged three-way onto the tip as it is when it lands (a task created by
        hand whose id was taken meanwhile gets the next free one). Returns the merge, or None
        when there was nothing to write.
        """
        from .editing import EditIndex

        return self._edit(EditIndex(base, edited))

    def edit_spec(self, task: TaskRef, base: str | None, edited: str) -> bool:
        """Land a hand edit of a task's spec, merged line-wise onto the spec at the tip.

        Where the tip changed the same lines, the edit's lines stand and the tip's are kept
        in a conflict record. False when there was nothing to write.
        """
        from .editing import EditSpec

        self._edit(EditSpec(task_id(task), base, edited, self._repo.line_merge))
        return self.last_commit is not None

    def _edit(self, operation: EditIndex | EditSpec) -> IndexMerge | None:
        self.last_commit = None
        merged: list[IndexMerge | None] = []

        def run(snap: Snapshot) -> Change | Edited:
            edited = operation.apply(snap)
            merged[:] = [edited.merged]
            return edited if edited.change is None else edited.change

        _, self.last_commit = self._tx.run(run)
        return merged[0] if merged and self.last_commit is not None else None

    # -- reads ----------------------------------------------------------------------------------

    def list(
        self, status: Status | str | None = None, include_done: bool = False
    ) -> builtins.list[Task]:
        """Tasks in file order; DONE and CLOSED only with ``include_done`` or when asked for."""
        snap = self._tx.snapshot()
        wanted = None if status is None else _status(status)
        out = []
        for entry in snap.index:
            if wanted is not None and entry.status is not wanted:
                continue
            if wanted is None and not include_done and entry.status.is_finished:
                continue
            out.append(snap.task(entry))
        return out

    def get(self, task: TaskRef) -> Task:
        snap = self._tx.snapshot()
        return snap.task(snap.index.find(task_id(task)))

    def spec(self, task: TaskRef) -> str:
        """The text of the task's spec file."""
        snap = self._tx.snapshot()
        entry = snap.index.find(task_id(task))
        text = snap.spec_text(entry)
        if text is None:
            raise SpecNotFound(str(entry.id), entry.spec_path)
        return text

    def index_text(self) -> str:
        """``process/tasks.md`` as it is on the ref now."""
        return self._tx.snapshot().index.text

    def history(
        self, task: TaskRef | None = None, limit: int | None = None
    ) -> builtins.list[HistoryEntry]:
        """Operations on the ref, newest first; only those touching ``task`` when given."""
        wanted = None if task is None else task_id(task).number
        out: list[HistoryEntry] = []
        tip = self._repo.tip(self.ref)
        if tip is None:
            raise NotInitialized(self.ref)
        for commit in self._repo.first_parents(tip):
            entry = history_entry(commit)
            if wanted is not None and not any(_number(i) == wanted for i in entry.task_ids):
                continue
            out.append(entry)
            if limit is not None and len(out) >= limit:
                break
        return out


def _number(text: str) -> int | None:
    digits = text.lstrip("md#")
    return int(digits) if digits.isdigit() else None


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
