"""Importing the in-tree task files into the tasks ref: ``git tasks migrate``.

The in-tree files are ``process/tasks.md`` and the ``*.md`` files under ``process/tasks/`` of
the worktree the import runs in. Each state imported becomes one commit of a chain of its own
whose tree holds only those files, with the blob and tree ids of the source reused, so the ref
holds the same bytes. Without history the states are HEAD's files, then the working tree's
uncommitted edits; with history every commit on HEAD's first-parent chain that changed the
files, then those edits. A commit's state is written with that commit's author and committer
and no trailer of the workspace, so wherever it is imported onto one parent it is one commit
(see :mod:`tasksync.imports`).

The chain is landed by a task-aware merge in which the in-tree ids win any clash; a ref that
does not exist yet simply takes the chain, and a ref that holds no task yet (made by ``init``)
ends with the in-tree files as they are. A later run builds on the newest import whose source
commit HEAD contains, so only what changed in the tree since is imported, merged with what the
ref did meanwhile; when nothing changed it writes nothing. It refuses to compare the tree with
an import HEAD does not contain (a branch behind it, a clone behind its hub), whose newer tasks
it would take as deleted, unless the tree holds nothing new. A dry run reads everything and
writes no commit and no ref; only its preview of a merge in which both sides changed one spec
file stores the blobs that libgit2's line merge compares, unreachable, as any merge does.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .blocks import TaskBlocks
from .errors import FormatError, MigrationError
from .identity import Identity, Signatures, resolve
from .imports import OPERATION, WORKTREE, Imports, find_imports, holds_nothing
from .markdown import INDEX_PATH, Index
from .removal import removal_command
from .store import Commit, Repo, TaskFiles

if TYPE_CHECKING:
    from pathlib import Path

    from .api import Merged
    from .records import Conflict, Renumbering
    from .trees import TreeMerge
    from .workspace import Workspace

__all__ = ["WORKTREE", "ImportStep", "Migration", "Skipped", "migrate"]

_SHORT = 12

#: Lands a chain of imported commits: its tip, the merge commit's subject, and the state to
#: merge the contents against instead of the commit graph's merge base (None: that base).
Land = Callable[[str, str, "str | None"], "Merged"]
#: Told how far the import is: states examined so far, states in all.
Progress = Callable[[int, int], None]


class ImportStep(NamedTuple):
    """One state imported (or, in a dry run, to be imported) as one commit."""

    source: str  # the commit it was read from, or "worktree"
    subject: str  # that commit's subject ("" for the working tree)
    author: str  # "Name <email>" of the imported commit
    time: int  # its author date, Unix seconds
    offset_minutes: int
    tasks: tuple[str, ...]  # ids of the tasks whose line or spec changed in this state
    commit: str | None  # the import commit written; None in a dry run

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "tasks": list(self.tasks)}


class Skipped(NamedTuple):
    """A past state left out because a file of it is not UTF-8."""

    source: str
    path: str
    problem: str


class Migration(NamedTuple):
    """What :meth:`~tasksync.api.TaskStore.migrate` did, or in a dry run would do."""

    ref: str
    dry_run: bool
    #: "up-to-date" (nothing to import), "created" (the ref is the imported history),
    #: "fast-forward" (the ref had not moved since the last import) or "merged".
    outcome: str
    commit: str | None  # the ref's new tip; None when it did not move (and in a dry run)
    steps: tuple[ImportStep, ...]
    tasks: int  # tasks in the in-tree process/tasks.md
    conflicts: tuple[Conflict, ...]  # settled by the merge with the ref
    renumbered: tuple[Renumbering, ...]  # tasks of the ref that gave their id to an in-tree one
    skipped: tuple[Skipped, ...]
    left_out: tuple[str, ...]  # paths under process/tasks/ that are not spec files
    problems: tuple[str, ...]  # what a push of the new tip would refuse (see TaskStore.check)
    commands: tuple[str, ...]  # what to run next: remove the in-tree files, guard, share

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "commit": self.commit,
            "steps": [step.to_json() for step in self.steps],
            "tasks": self.tasks,
            "conflicts": [conflict.to_json() for conflict in self.conflicts],
            "renumbered": [moved.to_json() for moved in self.renumbered],
            "skipped": [skipped._asdict() for skipped in self.skipped],
            "left_out": list(self.left_out),
            "problems": list(self.problems),
            "commands": list(self.commands),
        }


def migrate(
    source: Repo,
    target: Repo,
    workspace: Workspace,
    land: Land,
    *,
    history: bool = False,
    dry_run: bool = False,
    skip_non_utf8: bool = False,
    progress: Progress | None = None,
) -> Migration:
    """Import the task files of ``source``'s worktree (``history``: and of HEAD's history)
    into ``workspace.ref`` of ``target``; ``land`` merges the chain of imported commits."""
    importer = _Importer(source, target, workspace, dry_run=dry_run, skip=skip_non_utf8)
    return importer.run(land, history=history, progress=progress or _silent)


def _silent(done: int, total: int) -> None:
    return None


class _Importer:
    """One run of migrate: reads states oldest first, writes each new one on the chain."""

    def __init__(
        self, source: Repo, target: Repo, workspace: Workspace, *, dry_run: bool, skip: bool
    ) -> None:
        self.source = source
        self.target = target
        self.ref = workspace.ref
        self.trailers = workspace.trailers()
        self.dry_run = dry_run
        self.skip = skip
        self.data: dict[str, bytes] = {}  # contents of working-tree files by blob id
        self.utf8: set[str] = set()  # blob ids known to be UTF-8
        self.steps: list[ImportStep] = []
        self.skipped: list[Skipped] = []
        self.left_out: set[str] = set()
        # The import on the ref the chain builds on, the chain's tip (that import, or the last
        # commit written), and the last state imported: its files, spec blobs and task blocks.
        self.anchor: str | None = None
        self.parent: str | None = None
        self.files: TaskFiles | None = None
        self.specs: dict[str, str] = {}
        self.blocks: dict[int, list[str]] | None = {}  # None: not read yet (read when needed)
        self.reader = TaskBlocks()
        # Imports on the ref newer than the anchor, with their files once read: a state equal
        # to one of them that descends from the anchor is already there, and the chain moves on.
        self.newer: list[tuple[str, TaskFiles | None]] = []
        self.written_since_anchor = False
        signatures = resolve(target.config, os.environ)
        target.check_signatures(signatures)
        now = signatures.committer.stamp()
        self.committer = _fixed(signatures.committer, now)
        self.me = _fixed(signatures.author, now)

    # -- the run ----------------------------------------------------------------------------------

    def run(self, land: Land, *, history: bool, progress: Progress) -> Migration:
        location = self.source.location
        if location.workdir is None and not history:
            raise MigrationError(
                str(location.git_dir),
                "a bare repository has no working tree to import",
                "run `git tasks migrate --history` to import HEAD's history, "
                "or run it in a worktree",
            )
        found = self._read()
        head, head_files, worktree, final = found
        tip = self.target.tip(self.ref)
        imports = find_imports(self.target, self.source, tip, head)
        if final is None or final.tasks_md is None:
            raise self._missing(head_files, imports, tip)
        if imports.base is None and imports.newer:
            if not self._covered(final, head, head_files, imports):
                raise self._unrelated(head, imports)
            return self._result(_Landed("up-to-date"), found)
        if imports.base is not None:
            self._start(imports.base, self.target.task_files(imports.base))
        self.newer = [(commit, None) for commit, _ in imports.newer]
        if history and head is not None:
            commits = self._history(head, imports.source)
        elif head is not None and head_files is not None and head_files.tasks_md is not None:
            commits = [self.source.commit_info(head)]  # HEAD's files: one commit anywhere
        else:
            commits = []
        total = len(commits) + (1 if worktree is not None else 0)
        progress(0, total)
        seen: TaskFiles | None = None
        for done, commit in enumerate(commits, start=1):
            seen = self.source.task_files(commit.id, seen)
            is_final = worktree is None and done == len(commits)
            self._step(commit, seen, final=is_final, optional=not history)
            progress(done, total)
        if worktree is not None:
            self._step(None, worktree, final=True)
        progress(total, total)
        return self._result(self._land(land, tip), found)

    def _read(self) -> _Found:
        """HEAD and the in-tree files of HEAD and of the working tree."""
        source = self.source
        head = source.head_commit()
        head_files = None if head is None else source.task_files(head)
        worktree = None
        if source.location.workdir is not None:
            worktree, self.data = source.worktree_task_files()
        return _Found(head, head_files, worktree, head_files if worktree is None else worktree)

    def _result(self, landed: _Landed, found: _Found) -> Migration:
        problems: list[str] = []
        if landed.commit is not None:
            from .verify import check_store_commit

            problems = check_store_commit(self.target, landed.commit)
        commands = ["git tasks hooks install", "git tasks sync"]
        if found.worktree is not None:
            commands.insert(0, self._removal(found.worktree, found.head_files))
        final = found.final
        assert final is not None  # noqa: S101 - checked by run
        return Migration(
            self.ref,
            self.dry_run,
            landed.outcome,
            landed.commit,
            tuple(self.steps),
            len(Index.parse(self._index_text(final)).tasks),
            landed.conflicts,
            landed.renumbered,
            tuple(self.skipped),
            tuple(sorted(self.left_out | set(final.left_out))),
            tuple(problems),
            tuple(commands),
        )

    def _history(self, head: str, since: str | None) -> list[Commit]:
        """HEAD's first-parent chain after ``since`` (a commit HEAD contains), oldest first."""
        chain: list[Commit] = []
        try:
            for commit in self.source.first_parents(head):
                if commit.id == since:
                    return chain[::-1]
                chain.append(commit)
        except FormatError:
            if not self.source.is_shallow():
                raise
            # A shallow clone's history stops at its boundary: it starts there.
        if since is None:
            return chain[::-1]
        # Imported up to a commit that a merge brought into the first-parent chain.
        newer: list[Commit] = []
        for commit in chain:
            if self.source.is_ancestor(commit.id, since):
                break
            newer.append(commit)
        return newer[::-1]

    def _covered(
        self, final: TaskFiles, head: str | None, head_files: TaskFiles | None, imports: Imports
    ) -> bool:
        """Whether the ref's imports already hold the in-tree files, though HEAD contains none
        of their source commits: they are HEAD's own, unedited, and HEAD is older than an
        imported commit (a branch or clone behind), or the very files of an import."""
        if head is not None and final.same_files(head_files):
            sources = (source for _, source in imports.newer if source != WORKTREE)
            if any(self.source.is_ancestor(head, source) for source in sources):
                return True
        seen: TaskFiles | None = None
        for commit, _ in imports.newer:
            seen = self.target.task_files(commit, seen)
            if final.same_files(seen):
                return True
        return False

    # -- one state ------------------------------------------------------------------------------

    def _step(
        self, commit: Commit | None, files: TaskFiles, *, final: bool, optional: bool = False
    ) -> None:
        """Import one state when it has a tasks.md and differs from the last one imported
        (``optional``: leave it out when it is not UTF-8)."""
        if files.tasks_md is None or files.same_files(self.files) or self._caught_up(files):
            return
        label = commit.id if commit is not None else WORKTREE
        specs = dict(files.specs)
        changed = self._changed_specs(files, specs)
        try:
            text = self._index_text(files)
            for path in sorted(changed):
                blob = specs.get(path)
                if blob is not None and blob not in self.utf8:
                    self._text(blob, path)
        except _NotUtf8 as bad:
            if (self.skip or optional) and not final:
                self.skipped.append(Skipped(label, bad.path, bad.reason))
                return
            raise self._refusal(bad, label, final) from None
        blocks = self.reader.blocks(text)
        if self.blocks is None:  # the state built on, read from the ref
            assert self.files is not None  # noqa: S101 - set with the blocks
            self.blocks = self.reader.blocks(self._index_text(self.files, target=True))
        tasks = self.reader.changed(self.blocks, blocks, changed)
        trailers = [("Tasksync-Operation", OPERATION), ("Tasksync-Source", label)]
        trailers += [("Tasksync-Task", task) for task in tasks]
        if commit is None:
            subject, author = "", self.me
            summary = "tasks: imported working-tree edits"
            trailers += self.trailers
        else:  # nothing of this workspace: the same commit wherever it is imported
            subject, author = _subject(commit.message), self.source.author(commit.id)
            summary = f"tasks: imported {commit.id[:_SHORT]} {subject}".rstrip()
        message = f"{summary}\n\n" + "".join(f"{key}: {value}\n" for key, value in trailers)
        written = None
        if not self.dry_run:
            written = self.target.write_import(
                self.parent,
                files,
                message,
                source=self.source,
                data=self.data,
                signatures=Signatures(self.me, self.committer) if commit is None else None,
                origin=None if commit is None else commit.id,
            )
        assert author.when is not None  # noqa: S101 - every identity here has a fixed date
        self.steps.append(
            ImportStep(
                label,
                subject,
                f"{author.name} <{author.email}>",
                author.when[0],
                author.when[1],
                tasks,
                written,
            )
        )
        self.left_out |= set(files.left_out)
        self.parent = written
        self.written_since_anchor = True
        self.files, self.specs, self.blocks = files, specs, blocks

    def _start(self, commit: str, files: TaskFiles) -> None:
        """Build on an import already on the ref."""
        self.anchor = self.parent = commit
        self.files, self.specs = files, dict(files.specs)
        self.blocks = None
        self.written_since_anchor = False

    def _caught_up(self, files: TaskFiles) -> bool:
        """Whether an import newer than the anchor, and built on it, holds these very files:
        then the chain continues from there (an earlier run imported this state)."""
        if self.written_since_anchor or self.anchor is None:
            return False
        for number, (commit, read) in enumerate(self.newer):
            known = read or self.target.task_files(commit)
            self.newer[number] = (commit, known)
            if files.same_files(known) and self.target.is_ancestor(self.anchor, commit):
                self._start(commit, known)
                return True
        return False

    def _changed_specs(self, files: TaskFiles, specs: dict[str, str]) -> set[str]:
        """Spec paths whose content differs from the last state imported."""
        if self.files is not None and files.tree is not None and files.tree == self.files.tree:
            return set()
        before = self.specs
        changed = {path for path, blob in specs.items() if before.get(path) != blob}
        return changed | {path for path in before if path not in specs}

    # -- refusals ---------------------------------------------------------------------------------

    def _refusal(self, bad: _NotUtf8, label: str, final: bool) -> MigrationError:
        commit = None if label == WORKTREE else label
        problem = f"is not valid UTF-8 ({bad.reason})"
        if final:
            where = "the working tree" if commit is None else "HEAD"
            fix = (
                f"convert it to UTF-8 in {where} (e.g. `iconv -f LATIN1 -t UTF-8`) and run "
                "migrate again"
            )
        else:
            fix = (
                "pass --skip-non-utf8 to leave out the past states that have it "
                "(the present files must be UTF-8)"
            )
        return MigrationError(bad.path, problem, fix, commit)

    def _missing(
        self, head_files: TaskFiles | None, imports: Imports, tip: str | None
    ) -> MigrationError:
        """The refusal when there is no in-tree process/tasks.md to import."""
        workdir = self.source.location.workdir
        if workdir is not None and (workdir / INDEX_PATH).is_symlink():
            return _symlinked(workdir / INDEX_PATH)
        where = "HEAD" if workdir is None else f"the working tree of {workdir}"
        if workdir is not None and head_files is not None and head_files.tasks_md is not None:
            return MigrationError(
                INDEX_PATH,
                f"not in {where}, so there is nothing to import (an in-tree file removed after "
                "an earlier migrate is never taken for every task deleted)",
                "bring it back with "
                f"`git -C {shlex.quote(str(workdir))} checkout HEAD -- {INDEX_PATH}`, or "
                "commit its removal if the move is done",
            )
        if imports.base is not None or imports.newer:
            return MigrationError(
                INDEX_PATH,
                f"not in {where} nor in HEAD: the move is done ({self.ref} holds the imported "
                "tasks, and the in-tree files are gone)",
                "work with them through git tasks, e.g. `git tasks list`",
            )
        return MigrationError(
            INDEX_PATH,
            f"not in {where}, so there is nothing to import",
            "run migrate in the worktree that has it"
            + (", or start an empty store with `git tasks init`" if tip is None else ""),
        )

    def _unrelated(self, head: str | None, imports: Imports) -> MigrationError:
        """The refusal when the ref holds imports, but none of a commit HEAD contains."""
        doubt = "so the in-tree files cannot be told apart from tasks deleted since"
        source = imports.latest_source
        if source is None:
            latest = imports.newer[0][0]
            return MigrationError(
                INDEX_PATH,
                f"the imports on {self.ref} (the newest {latest[:_SHORT]}) are of files no "
                f"commit of HEAD's history holds, {doubt}",
                "make further changes on the ref, e.g. with `git tasks edit --raw`",
            )
        short = source[:_SHORT]
        at = "HEAD" if head is None else f"HEAD ({head[:_SHORT]})"
        return MigrationError(
            INDEX_PATH,
            f"{at} does not contain {short}, the commit the last import into {self.ref} was "
            f"read from, {doubt}",
            f"bring {short} into this branch (`git pull`, or `git merge {short}`) and run "
            "migrate again, or make the change on the ref with `git tasks edit --raw`",
        )

    # -- reading blobs ---------------------------------------------------------------------------

    def _index_text(self, files: TaskFiles, *, target: bool = False) -> str:
        assert files.tasks_md is not None  # noqa: S101 - callers check
        return self._text(files.tasks_md, INDEX_PATH, target=target)

    def _text(self, blob: str, path: str, *, target: bool = False) -> str:
        data = self.data.get(blob)
        if data is None:
            data = (self.target if target else self.source).blob_bytes(blob, path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _NotUtf8(path, f"{error.reason} at byte {error.start}") from None
        self.utf8.add(blob)
        return text

    def _reader(self, files: TaskFiles) -> Callable[[str], str | None]:
        specs = dict(files.specs)

        def read(path: str) -> str | None:
            blob = files.tasks_md if path == INDEX_PATH else specs.get(path)
            return None if blob is None else self._text(blob, path)

        return read

    # -- landing ----------------------------------------------------------------------------------

    def _land(self, land: Land, tip: str | None) -> _Landed:
        if not self.steps:
            return _Landed("up-to-date")
        # A ref that holds no task yet (made by `git tasks init`): merged against its own
        # state, it ends with the in-tree files as they are, byte for byte.
        empty = self.anchor is None and tip is not None and holds_nothing(self.target, tip)
        against = tip if empty else None
        if self.dry_run:
            if tip is None:
                return _Landed("created")
            if self.anchor == tip:
                return _Landed("fast-forward")
            preview = self._preview(tip, against or self.anchor)
            return _Landed("merged", None, preview.conflicts, preview.renumbered)
        assert self.parent is not None  # noqa: S101 - a step was written
        count = len(self.steps)
        merged = land(
            self.parent,
            f"tasks: merged {count} imported state{'s' if count > 1 else ''} of {INDEX_PATH}",
            against,
        )
        outcome = "created" if tip is None and merged.outcome == "fast-forward" else merged.outcome
        return _Landed(outcome, merged.commit, merged.conflicts, merged.renumbered)

    def _preview(self, tip: str, base: str | None) -> TreeMerge:
        """The merge a real run would make, computed without writing a commit."""
        from .trees import TreeSide, merge_trees

        assert self.files is not None  # noqa: S101 - there are steps
        files = self.files
        base_files = None if base is None else self.target.task_files(base)
        before = {} if base_files is None else dict(base_files.specs)
        changed = {
            path
            for path in before.keys() | self.specs.keys()
            if before.get(path) != self.specs.get(path)
        }
        if base_files is None or base_files.tasks_md != files.tasks_md:
            changed.add(INDEX_PATH)
        target = self.target
        return merge_trees(
            target.reader(base),
            TreeSide(target.changed(base, tip), target.reader(tip)),
            TreeSide(frozenset(changed), self._reader(files)),
            target.line_merge,
            renumber="ours",
        )

    # -- what to run next ---------------------------------------------------------------------

    def _removal(self, worktree: TaskFiles, head: TaskFiles | None) -> str:
        """The command that removes the imported in-tree files (it is never run for you)."""
        top = self.source.location.workdir
        assert top is not None  # noqa: S101 - a working tree was read
        specs = [path for path, _ in worktree.specs]
        imported = [INDEX_PATH, *specs] if worktree.tasks_md is not None else specs
        tracked = self.source.in_index(imported)
        committed: set[str] = set()
        if head is not None:
            committed = {path for path, _ in head.specs}
            if head.tasks_md is not None:
                committed.add(INDEX_PATH)
        head_specs = committed - {INDEX_PATH}
        whole = not worktree.left_out and (
            head is None or (not head.left_out and head_specs <= set(specs))
        )
        return removal_command(
            top,
            imported,
            tracked=tracked,
            committed=frozenset(committed),
            whole=whole,
            force=not worktree.same_files(head),
            sparse=self.source.config_bool("core.sparseCheckout", default=False)
            and any(not os.path.lexists(top / path) for path in tracked),
        )


class _Found(NamedTuple):
    """What a run reads first: HEAD, its task files, the working tree's (None in a bare
    repository), and the state imported last (the working tree's, else HEAD's)."""

    head: str | None
    head_files: TaskFiles | None
    worktree: TaskFiles | None
    final: TaskFiles | None


class _Landed(NamedTuple):
    """What landing the chain did (see :attr:`Migration.outcome`)."""

    outcome: str
    commit: str | None = None
    conflicts: tuple[Conflict, ...] = ()
    renumbered: tuple[Renumbering, ...] = ()


def _symlinked(link: Path) -> MigrationError:
    """The refusal for a process/tasks.md that is a symlink."""
    pointed = str(link.readlink())
    shown = pointed if pointed.isprintable() else repr(pointed)
    resolved = link.resolve()
    if resolved.is_file():
        fix = (
            "replace the link with the file it points to: "
            f"`rm {shlex.quote(str(link))} && cp {shlex.quote(str(resolved))} "
            f"{shlex.quote(str(link))}`, and run migrate again"
        )
    else:
        fix = f"put the tasks file itself at {INDEX_PATH} and run migrate again"
    return MigrationError(
        INDEX_PATH, f"is a symlink (to {shown}), and migrate imports only a regular file", fix
    )


class _NotUtf8(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path)
        self.path = path
        self.reason = reason


def _fixed(identity: Identity, now: tuple[int, int]) -> Identity:
    return identity if identity.when is not None else identity._replace(when=now)


def _subject(message: str) -> str:
    """A commit's first line, as one line of printable text."""
    line = message.strip().split("\n", 1)[0] if message.strip() else ""
    return "".join(c if c.isprintable() else " " for c in line).strip()
