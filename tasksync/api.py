"""The Python API: :class:`TaskStore`, what task commands import."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import (
    NotInHistory,
    NotTasksHistory,
    SpecNotFound,
    UnknownRevision,
)
from .markdown import INDEX_PATH, MAX_ID, Index
from .model import Status, Task, TaskId
from .operations import Change, Create, Delete, SetStatus, Snapshot, Update, initial_change
from .store import Repo
from .transaction import Transactor
from .workspace import Hub, Workspace, find_hub

if TYPE_CHECKING:  # merging is imported when used: `git tasks status set` never needs it
    import threading
    from collections.abc import Callable

    from .doctor import Finding
    from .editing import Edited, EditIndex, EditSpec
    from .events import Event
    from .export import Applied, Exported
    from .history import HistoryEntry
    from .merge import IndexMerge
    from .migrate import Migration
    from .records import Conflict, Records, Renumbering
    from .sync import SyncResult
    from .trees import TreeMerge
    from .watch import Watch

TaskRef = str | int | TaskId


class Merged(NamedTuple):
    """What :meth:`TaskStore.merge` did."""

    outcome: str  # "up-to-date", "fast-forward" or "merged"
    commit: str | None  # the commit the ref moved to, None when it did not move
    conflicts: tuple[Conflict, ...]
    renumbered: tuple[Renumbering, ...]
    #: From :meth:`TaskStore.merge_edits`: the commit holding the edits on their base.
    applied: str | None = None


def task_id(value: TaskRef) -> TaskId:
    """Read any accepted id form (``1``, ``"001"``, ``"#1"``, ``"md#1"``, ``"task#1"``)."""
    if isinstance(value, TaskId):
        return value
    if type(value) is int and 0 <= value < MAX_ID:  # the common case, without a detour via str
        return TaskId(value)
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
        if workspace.fsync:
            repo.fsync_writes()
        self._tx = Transactor(
            repo,
            workspace.ref,
            timeout=workspace.retry_timeout,
            file_lock=workspace.file_lock,
            trailers=workspace.trailers(),
            workdir=self._local.location.workdir,
            pack_threshold=workspace.pack_threshold,
            stale_after=workspace.stale_lock_after,
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
            raise self._tx.not_initialized()
        return check_store_commit(self._repo, target, since=since)

    def doctor(self, repair: bool = False) -> tuple[Finding, ...]:
        """What is wrong with the store, each finding one line with the command that fixes it:
        stale lock files, the writers' lock held, a ref at a missing or damaged object, what the
        pre-push checks refuse, loose objects piling up. With ``repair``, lock files proven
        stale are removed (as writers do); nothing else is changed, and history never is.
        See :mod:`tasksync.doctor`."""
        from .doctor import diagnose

        return diagnose(self._repo, self.workspace, self._tx.lock_path, repair=repair)

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

    def watch(
        self,
        since: str | None = None,
        *,
        callback: Callable[[Event], object] | None = None,
        poll: bool = False,
        interval: float | None = None,
        stop: threading.Event | None = None,
    ) -> Watch:
        """The events of every commit landing on the ref after ``since`` (a revision
        :meth:`state` accepts; default the tip now), oldest first, none skipped and none
        twice, from whichever worktree or clone it came.

        Iterate over the returned :class:`~tasksync.watch.Watch` (it waits for more until
        stopped: ``watch.stop()`` or ``stop.set()`` from another thread), or give
        ``callback``: it is called with each event until it returns False or the watch is
        stopped, and then the watch is returned. ``poll`` does without inotify; ``interval``
        is the seconds between looks at the ref (default 0.5 with inotify, 0.05 without).
        Takes no lock and never writes; see :mod:`tasksync.watch`.
        """
        from .watch import Watch

        start = None if since is None else self.state(since)  # a state of this ref, or refused
        locate = None
        if self.hub is not None:  # a session clone: follow the hub when it comes back

            def locate() -> Path:
                hub = find_hub(self._local)
                repo = hub.repo if hub is not None and hub.repo is not None else self._local
                return repo.location.common_dir

        watch = Watch(
            self.store_dir,
            self.ref,
            start,
            poll=poll,
            interval=interval,
            stop=stop,
            locate=locate,
        )
        if callback is not None:
            watch.run(callback)
        return watch

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
        other = self._repo.resolve_commit(revision)
        self._check_tasks_commit(revision, other)
        return self._merge(other, revision, keep_ids, ())

    def merge_edits(
        self,
        base: str,
        edits: Mapping[str, str | None],
        *,
        summary: str,
        landing: Callable[[str], None] | None = None,
    ) -> Merged:
        """Land edits made against an older state of the ref (``base``: a revision
        :meth:`state` accepts): ``edits`` maps paths of the tasks tree (``process/tasks.md``,
        ``process/tasks/NNN-slug.md``) to their new text, None to remove a spec.

        The edits become a commit on ``base`` (subject ``summary``), merged into the tip like
        :meth:`merge` does, so the tip's own changes since ``base`` are kept. Tasks the edits
        add get creation identities: one added under an id the tip gave another task
        meanwhile is the one renumbered. ``landing``, when given, is called with the commit
        holding the edits before it is merged (to note it somewhere crash-safe).
        """
        from .editing import edits_change

        start = self.state(base)
        change = edits_change(self._repo.snapshot(start), dict(edits), summary)
        if change is None:
            return Merged("up-to-date", None, (), ())
        side = self._tx.write_side(start, change)
        if landing is not None:
            landing(side)
        merged = self._merge(
            side, side[:10], "ours", (("Tasksync-Applied", side),), f"{summary} (merged)"
        )
        return merged._replace(applied=side)

    def export(self, to: str | os.PathLike[str] | None = None, *, force: bool = False) -> Exported:
        """Write the tip's ``process/tasks.md`` and spec files into a directory (default
        ``.tasks/`` at the top of this worktree, made git-ignored) with a record of the commit
        they came from, for tools that read files. Refuses to overwrite edits not applied yet
        or files tasksync did not write, unless ``force``. See :mod:`tasksync.export`."""
        from .export import export

        return export(self, self._local, None if to is None else Path(to), force=force)

    def apply(self, source: str | os.PathLike[str] | None = None) -> Applied:
        """Merge the edits made to an exported copy back three-way against the commit it was
        exported from (:meth:`merge_edits`), then bring the copy up to the new tip."""
        from .export import apply

        return apply(self, self._local, None if source is None else Path(source))

    def _merge(
        self,
        other: str,
        label: str,
        keep_ids: str | None,
        trailers: tuple[tuple[str, str], ...],
        subject: str | None = None,
        *,
        against: str | None = None,
    ) -> Merged:
        """Merge ``other`` into the tip; ``against``, a state both contain, is the base the
        contents are merged against instead of the merge base of the commit graph."""
        from .imports import import_base
        from .trees import TreeSide, merge_trees

        revision = label
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
            # Imports of one source commit hold the same files: a newer common state than
            # the graph's when two workspaces imported the same history separately.
            base = against or import_base(repo, tip, other, base)
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
                f"{subject or f'tasks: merged {revision}'}{extra}",
                (
                    ("Tasksync-Operation", "merge"),
                    ("Tasksync-Merged", other),
                    *trailers,
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
        self._repo.check_names(commit)  # what no path reaches, the merge could not carry

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

    def undo(self, commit: str) -> HistoryEntry:
        """Take back what ``commit`` (an operation of the ref's history: an id, or ``@{n}``)
        did, with a new commit on the tip; never a reset. Raises UndoRefused, naming them,
        when later operations touched the same task fields. Returns the new commit's entry
        (its ``Tasksync-Undone`` trailer names the commit undone)."""
        from .undo import undo_change

        target = self.state(commit)

        def apply(snap: Snapshot) -> Change:
            assert snap.commit is not None  # noqa: S101 - run without create: the ref exists
            return undo_change(self._repo, self.ref, target, snap.commit)

        self.last_commit = None
        _, self.last_commit = self._tx.run(apply)
        assert self.last_commit is not None  # noqa: S101 - a Change always lands a commit
        from .history import history_entry

        return history_entry(self._repo.commit_info(self.last_commit))

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

    # -- importing --------------------------------------------------------------------------------

    def migrate(
        self,
        *,
        history: bool = False,
        dry_run: bool = False,
        skip_non_utf8: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Migration:
        """Import this worktree's in-tree ``process/tasks.md`` and specs into the ref.

        Each state imported is one commit (HEAD's files, then the working tree's edits; with
        ``history``, one per commit of HEAD's first-parent chain that changed the files, then
        the edits; a commit's state keeps its author and committer), merged into the ref with
        the in-tree ids winning any clash. A later run builds on the newest import whose source
        commit HEAD contains; a run with nothing new writes nothing. ``progress(done, total)``
        is told how far it is. The in-tree files are never removed. See
        :mod:`tasksync.migrate`.
        """
        from .migrate import migrate

        def land(chain: str, subject: str, against: str | None) -> Merged:
            return self._merge(chain, chain[:12], "theirs", (), subject, against=against)

        self.last_commit = None
        return migrate(
            self._local,
            self._repo,
            self.workspace,
            land,
            history=history,
            dry_run=dry_run,
            skip_non_utf8=skip_non_utf8,
            progress=progress,
        )

    # -- reads ----------------------------------------------------------------------------------

    def state(self, revision: str) -> str:
        """The commit of this ref's past that ``revision`` names: a commit id (short or full)
        the ref's history contains or its reflog records, or a reflog entry ``@{n}`` (the
        value ``n`` updates ago; ``@{0}`` is the tip). Raises NotInHistory otherwise."""
        tip = self.head()
        if tip is None:
            raise self._tx.not_initialized()
        text = revision.strip()
        name = f"{self.ref}{text}" if text.startswith("@{") else text
        try:
            commit = self._repo.resolve_commit(name)
        except UnknownRevision:
            if text.startswith("@{") and not self._repo.has_reflog(self.ref):
                raise NotInHistory(revision, self.ref, no_reflog=True) from None
            raise NotInHistory(revision, self.ref) from None
        if self._repo.is_ancestor(commit, tip) or self._repo.was_tip(self.ref, commit):
            return commit
        raise NotInHistory(revision, self.ref)

    def _snapshot(self, at: str | None) -> Snapshot:
        if at is None:
            return self._tx.snapshot()
        return self._repo.snapshot(self.state(at))

    def list(
        self,
        status: Status | str | None = None,
        include_done: bool = False,
        *,
        at: str | None = None,
        descriptions: bool = True,
    ) -> builtins.list[Task]:
        """Tasks in file order; DONE and CLOSED only with ``include_done`` or when asked for.
        With ``at`` (see :meth:`state`), as they were at that state of the ref. With
        ``descriptions=False`` every description is left empty and no spec file is read: a
        listing that does not show them is then as fast as the index is long."""
        snap = self._snapshot(at)
        wanted = None if status is None else _status(status)
        out = []
        for entry in snap.index:
            if wanted is not None and entry.status is not wanted:
                continue
            if wanted is None and not include_done and entry.status.is_finished:
                continue
            if descriptions:
                out.append(snap.task(entry))
            else:
                out.append(Task(entry.id, entry.title, entry.status, entry.spec_path))
        return out

    def get(self, task: TaskRef, *, at: str | None = None) -> Task:
        """One task, now or ``at`` a past state of the ref (see :meth:`state`)."""
        snap = self._snapshot(at)
        return snap.task(snap.index.find(task_id(task)))

    def spec(self, task: TaskRef, *, at: str | None = None) -> str:
        """The text of the task's spec file (``at`` a past state: see :meth:`state`)."""
        snap = self._snapshot(at)
        entry = snap.index.find(task_id(task))
        text = snap.spec_text(entry)
        if text is None:
            raise SpecNotFound(str(entry.id), entry.spec_path)
        return text

    def files(self, *, at: str | None = None) -> dict[str, str]:
        """Every file users edit on the ref (``process/tasks.md`` and the spec files under
        ``process/tasks/``) by path, now or ``at`` a past state; tasksync's own records and
        anything that is not a plain file are left out."""
        from .markdown import SPEC_DIR

        commit = self._snapshot(at).commit
        if commit is None:  # pragma: no cover - a snapshot of an existing ref has a commit
            return {}
        read = self._repo.reader(commit)
        out: dict[str, str] = {}
        for path, kind in self._repo.tree_entries(commit):
            if kind != "blob":
                continue
            if path == INDEX_PATH or (path.startswith(SPEC_DIR + "/") and path.endswith(".md")):
                text = read(path)
                if text is not None:
                    out[path] = text
        return out

    def index_text(self, *, at: str | None = None) -> str:
        """``process/tasks.md`` as it is on the ref now (or ``at`` a past state)."""
        return self._snapshot(at).index.text

    def history(
        self, task: TaskRef | None = None, limit: int | None = None
    ) -> builtins.list[HistoryEntry]:
        """Operations on the ref, newest first; only those touching ``task`` when given.

        Every commit the tip reaches is listed, those a merge brought in (from a remote, a
        migrated history, an applied export) included, as ``git log`` lists them.
        """
        from .history import history_entry

        wanted = None if task is None else task_id(task).number
        out: list[HistoryEntry] = []
        tip = self._repo.tip(self.ref)
        if tip is None:
            raise self._tx.not_initialized()
        for commit in self._repo.ancestors(tip):
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
