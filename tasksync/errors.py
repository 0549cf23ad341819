"""The one exception hierarchy of tasksync.

Every error a caller can see derives from :class:`TaskSyncError`. Each subclass keeps what
went wrong as attributes and says in its message what happened and what to do next. Where a
builtin exception fits, it is inherited too, so ``except KeyError`` keeps working for callers
that only know the builtin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

#: Called with each warning the library gives (a stale lock file it removed), besides the
#: ``tasksync`` logger: the command line prints them without importing :mod:`logging`.
WARNING_SINKS: list[Callable[[str], None]] = []


def quoted(name: str | Path) -> str:
    """A path or name as one line of a message: as it is, or quoted and escaped (``repr``) when
    it holds a control character that would break the line or reach the terminal."""
    text = str(name)
    return text if text.isprintable() else repr(text)


class TaskSyncError(Exception):
    """Base class of every error tasksync raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotARepository(TaskSyncError):
    """The path is not inside a git repository."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"not a git repository: {path}; run tasksync inside a repository "
            "(or create one with `git init`)"
        )


class NotInitialized(TaskSyncError):
    """The tasks ref does not exist yet."""

    def __init__(self, ref: str, in_tree: bool = False) -> None:
        self.ref = ref
        #: Whether the worktree holds an in-tree process/tasks.md (the old layout) to import.
        self.in_tree = in_tree
        if in_tree:
            super().__init__(
                f"no task store: {ref} does not exist, and process/tasks.md is in the working "
                "tree; run `git tasks migrate` to import it (`git tasks init` would start empty)"
            )
        else:
            super().__init__(f"no task store: {ref} does not exist; run `git tasks init` first")


class ConfigError(TaskSyncError, ValueError):
    """A git config value tasksync reads is invalid, or a required one is missing."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}; {fix}")


class InvalidTaskId(TaskSyncError, ValueError):
    """Text that should name a task is not an id."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(
            f"invalid task id {text!r}: use a number such as 1, 001, #001, md#001 or task#001"
        )


class TaskNotFound(TaskSyncError, KeyError):
    """No task has the given id."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} not found; `git tasks list --all` shows every task")


class AmbiguousTaskId(TaskSyncError, KeyError):
    """Several tasks carry the same id (files written by older tools can have duplicates)."""

    def __init__(self, task_id: str, lines: Iterable[int]) -> None:
        self.task_id = task_id
        self.lines = tuple(lines)
        where = ", ".join(str(n) for n in self.lines)
        super().__init__(
            f"task id {task_id} appears more than once in process/tasks.md (lines {where}); "
            "renumber the duplicates by hand first (docs/format.md, "
            "'Changing the files with plain git')"
        )


class TaskExists(TaskSyncError, ValueError):
    """A spec file to create a task from names, in its heading, an id a task already has."""

    def __init__(self, task_id: str, title: str, path: str) -> None:
        self.task_id = task_id
        self.title = title
        self.path = path
        super().__init__(
            f"task {task_id} ({title!r}) already exists and {path} names it in its heading; "
            f"compare them with `git tasks spec {task_id}`, and to add the file as a new task "
            "with the next free id pass force=True (or run `git tasks create --spec-file "
            f"{path}`)"
        )


class InvalidStatus(TaskSyncError, ValueError):
    """A status name is not one of the known statuses."""

    def __init__(self, text: str, valid: Iterable[str]) -> None:
        self.text = text
        self.valid = tuple(valid)
        super().__init__(f"invalid status {text!r}: valid statuses are {', '.join(self.valid)}")


class InvalidTitle(TaskSyncError, ValueError):
    """A title that cannot be written as one task line."""

    def __init__(self, title: str, reason: str) -> None:
        self.title = title
        self.reason = reason
        super().__init__(f"invalid title {title!r}: {reason}")


class InvalidDescription(TaskSyncError, ValueError):
    """A description that would not read back as written."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid description: {reason}")


class FormatError(TaskSyncError, ValueError):
    """Content on the tasks ref cannot be read (bad encoding, unexpected object)."""

    def __init__(self, path: str, problem: str, oid: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.oid = oid
        at = f" (object {oid})" if oid else ""
        super().__init__(
            f"{path}{at}: {problem}; fix the file by hand (docs/format.md, 'Changing the "
            "files with plain git') or restore a version from `git log refs/tasks/main`"
        )


class FileTooLarge(FormatError):
    """A file on the tasks ref, or one a write would put there, is larger than
    ``tasks.maxFileSize``: it was measured from its object header and never read into memory
    (or, for a write, nothing was written)."""

    def __init__(
        self, path: str, size: int, limit: int, oid: str | None = None, *, writing: bool = False
    ) -> None:
        self.path = path
        self.size = size
        self.limit = limit
        self.oid = oid
        self.writing = writing
        self.problem = f"is {size} bytes, over the limit of {limit} bytes (tasks.maxFileSize)"
        done = "nothing was written" if writing else "it was not read"
        at = f" (object {oid})" if oid else ""
        mib = -(-size // (1 << 20))  # the size in MiB, rounded up: a limit the file fits under
        TaskSyncError.__init__(
            self,
            f"{path}{at}: {self.problem}; {done}; if it is meant to be this big, raise the "
            f"limit with `git config tasks.maxFileSize {mib}m`",
        )


class PreconditionFailed(TaskSyncError):
    """An ``expect=`` precondition did not hold: somebody changed the field first."""

    def __init__(self, task_id: str, field: str, expected: str, actual: str) -> None:
        self.task_id = task_id
        self.field = field
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"task {task_id}: {field} is {actual}, not {expected} as expected; "
            f"re-read it with `git tasks get {task_id}` and decide again"
        )


class SpecNotFound(TaskSyncError, KeyError):
    """The task has no spec file on the ref."""

    def __init__(self, task_id: str, path: str | None) -> None:
        self.task_id = task_id
        self.path = path
        if path:
            fix = f"{path} is missing; write one with `git tasks edit {task_id} --spec-file FILE`"
        else:
            fix = "its link is not a spec file under process/; fix it with `git tasks edit --raw`"
        super().__init__(f"task {task_id} has no spec file ({fix})")


class ContentionTimeout(TaskSyncError, TimeoutError):
    """The ref could not be updated within the retry time cap."""

    def __init__(
        self,
        ref: str,
        seconds: float,
        attempts: int,
        lock_path: str | None = None,
        lock_age: float | None = None,
        *,
        writer_lock: str | None = None,
        lock_note: str | None = None,
    ) -> None:
        self.ref = ref
        self.seconds = seconds
        self.attempts = attempts
        self.lock_path = lock_path
        self.lock_age = lock_age
        self.writer_lock = writer_lock
        #: Why the lock file was not removed as stale, when that is known.
        self.lock_note = lock_note
        text = f"could not update {ref} within {seconds:.1f} s ({attempts} attempts)"
        if writer_lock is not None:
            text += (
                f": another writer on this machine held {writer_lock} for the whole wait; "
                "if a git tasks process is hung, stop it (the lock is freed when it exits)"
            )
        elif lock_path is not None and lock_age is not None:
            kept = f" (not removed automatically: {lock_note})" if lock_note else ""
            text += (
                f": the lock file {lock_path} is {lock_age:.0f} s old and blocks every "
                f"writer{kept}; if no git or tasksync process is running, remove it "
                f"(rm '{lock_path}', or `git tasks doctor --repair`) and try again"
            )
        else:
            text += (
                ": other writers kept moving it; try again, or raise the cap with "
                "`git config tasks.retryTimeout SECONDS`"
            )
        super().__init__(text)


class UnknownRevision(TaskSyncError, KeyError):
    """A revision to merge names no commit."""

    def __init__(self, revision: str, detail: str) -> None:
        self.revision = revision
        why = "" if detail.strip("'\"") == revision else f" ({detail})"
        super().__init__(
            f"{revision!r} names no commit{why}; fetch it first, "
            "e.g. `git fetch origin refs/tasks/main:refs/remotes/origin/tasks`"
        )


class NotTasksHistory(TaskSyncError, ValueError):
    """A revision to merge is not a state of a tasks ref (a code branch, say)."""

    def __init__(self, revision: str, names: Iterable[str]) -> None:
        self.revision = revision
        found = ", ".join(sorted(names)) or "nothing"
        super().__init__(
            f"{revision!r} is not a state of a tasks ref (its tree holds {found}, "
            "not process/tasks.md alone); merge a fetched tasks ref, "
            "e.g. refs/remotes/origin/tasks"
        )


class NotInHistory(TaskSyncError, KeyError):
    """A revision to read the past at is not a state the tasks ref has had."""

    def __init__(self, revision: str, ref: str, *, no_reflog: bool = False) -> None:
        self.revision = revision
        self.ref = ref
        if no_reflog:
            super().__init__(
                f"{revision!r} names a reflog entry, but {ref} has no reflog (it was created "
                "outside tasksync); name a commit `git tasks log` lists, and run "
                "`git tasks init` to start the reflog"
            )
            return
        super().__init__(
            f"{revision!r} is not a state of {ref}; name a commit `git tasks log` lists "
            "or a reflog entry such as @{1}"
        )


class UndoRefused(TaskSyncError, ValueError):
    """An undo would overwrite later operations on the same task fields."""

    def __init__(
        self, commit: str, later: Iterable[tuple[str, str, str]], *, reason: str = ""
    ) -> None:
        self.commit = commit
        #: (later commit, task id, field) for every later change in the way.
        self.later = tuple(later)
        if reason:
            super().__init__(f"not undoing {commit[:10]}: {reason}; nothing comes before it")
            return
        shown = "; ".join(f"{c[:10]} changed {task} {field}" for c, task, field in self.later[:5])
        more = f" and {len(self.later) - 5} more" if len(self.later) > 5 else ""
        newest = self.later[0][0][:10] if self.later else ""
        super().__init__(
            f"not undoing {commit[:10]}: later operations touched the same fields "
            f"({shown}{more}); undo those first, newest first (`git tasks undo {newest}`), "
            "or change the task by hand"
        )


class ExportError(TaskSyncError):
    """An export copy cannot be written or applied as asked (edits not applied yet, files
    tasksync did not write, a copy of another ref...). The ref and the copy are untouched."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}; {fix}")


class NoConflict(TaskSyncError, KeyError):
    """resolve was asked about a task (or field) that has no conflict record."""

    def __init__(self, task: str, field: str | None) -> None:
        self.task = task
        self.field = field
        what = f"{task} {field}" if field else task
        super().__init__(f"no conflict is recorded for {what}; `git tasks conflicts` lists them")


class CannotResolve(TaskSyncError, ValueError):
    """resolve cannot do what was asked for this conflict."""

    def __init__(self, task: str, problem: str, fix: str) -> None:
        self.task = task
        super().__init__(f"cannot resolve {task}: {problem}; {fix}")


class EditorFailed(TaskSyncError):
    """The editor could not be run, failed, or left a file that cannot be read."""

    def __init__(self, path: Path | None, problem: str) -> None:
        self.path = path
        kept = "" if path is None else f"; your text is kept in {path}"
        super().__init__(f"{problem}{kept}")


class SyncError(TaskSyncError):
    """A sync could not reach, read or update a remote (or the hub); local tasks are intact."""

    def __init__(self, what: str, problem: str, fix: str) -> None:
        self.what = what
        super().__init__(f"{what} {problem}; {fix}")


class StoreError(TaskSyncError):
    """Git refused an operation for a reason that retrying does not fix."""

    def __init__(self, action: str, detail: str, fix: str) -> None:
        self.action = action
        self.detail = detail
        super().__init__(f"{action} failed: {detail}; {fix}")


class ReftableUnsupported(StoreError):
    """The repository keeps its refs in reftable, and the installed git is too old to read
    them (libgit2 cannot either; tasksync moves such refs through git 2.45 or newer)."""

    def __init__(self, path: str, git_version: str, detail: str) -> None:
        self.path = path
        self.git_version = git_version
        super().__init__(
            f"opening {path}",
            f"the repository keeps its refs in reftable (extensions.refStorage=reftable) and "
            f"git {git_version} cannot read them ({detail})",
            "install git 2.45 or newer, which tasksync runs for the refs of such a repository",
        )


class MergeDriverError(TaskSyncError):
    """The merge driver cannot merge its files, or cannot be installed where it was asked to."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}; {fix}")


class HookError(TaskSyncError):
    """A push hook cannot read its input, run git, or be installed or removed where asked."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}; {fix}")


class MigrationError(TaskSyncError):
    """``migrate`` cannot import the in-tree task files (there are none, one is not UTF-8, the
    tasks ref's imports are of a history this worktree does not contain, or there is no
    working tree); nothing was written."""

    def __init__(self, path: str, problem: str, fix: str, commit: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.commit = commit  # the commit the file is in; None for the working tree
        where = f" at {commit[:12]}" if commit else ""
        shown = path if path.isprintable() else repr(path)  # one line, whatever the name
        super().__init__(f"{shown}{where}: {problem}; nothing was imported; {fix}")
