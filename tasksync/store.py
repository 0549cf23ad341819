"""Objects, refs, compare-and-swap and retry: the only module that imports pygit2.

A write is one transaction: read the tip, apply a pure operation to a snapshot of it, write
blobs, trees and a commit, then move the ref with a compare-and-swap against the tip that was
read. When the ref moved, a lock was busy or an object write failed, the outcome is decided by
re-reading the ref, never by an error's text; the operation is applied again to the new tip
after a jittered backoff, until the time cap. A kernel file lock in the common git dir makes
same-machine writers take turns; the compare-and-swap alone keeps every update.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pygit2

from .errors import (
    ConfigError,
    ContentionTimeout,
    FormatError,
    NotARepository,
    NotInitialized,
    StoreError,
    TaskSyncError,
)
from .markdown import INDEX_PATH, Index
from .operations import Change, Snapshot

if TYPE_CHECKING:
    from types import TracebackType

    from filelock import BaseFileLock

T = TypeVar("T")

_PARSE_CACHE: OrderedDict[str, Index] = OrderedDict()
_PARSE_CACHE_SIZE = 16
_TEXT_CACHE: OrderedDict[str, str] = OrderedDict()
_TEXT_CACHE_SIZE = 4096
_PATH_OK = re.compile(r"[^\x00-\x1f/\\]+")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a path's repository lives."""

    git_dir: Path  # this worktree's git dir (``.git`` or ``.git/worktrees/NAME``)
    common_dir: Path  # shared by all worktrees: objects, refs, config
    workdir: Path | None  # None for a bare repository
    branch: str | None  # the checked-out branch, None when detached or bare


@dataclass(frozen=True, slots=True)
class Commit:
    """A commit of the tasks ref, as callers see it."""

    id: str
    parents: tuple[str, ...]
    message: str
    author: str
    time: int
    offset_minutes: int


class _Moved(Exception):
    """The ref is not at the value the transaction started from."""


class Repo:
    """One open repository; callers never see the pygit2 object inside."""

    def __init__(self, repo: pygit2.Repository, location: Location) -> None:
        self._repo = repo
        self.location = location

    @classmethod
    def discover(cls, path: str | os.PathLike[str]) -> Repo:
        start = Path(path).absolute()
        try:
            found = pygit2.discover_repository(str(start))
            repo = pygit2.Repository(found) if found else None
        except pygit2.GitError as error:
            raise NotARepository(f"{start} ({error})") from error
        if repo is None:
            raise NotARepository(str(start))
        git_dir = Path(repo.path)
        common = git_dir
        commondir_file = git_dir / "commondir"
        if commondir_file.is_file():
            common = (git_dir / commondir_file.read_text(encoding="utf-8").strip()).resolve()
        branch = None
        if not repo.is_bare and not repo.head_is_detached and not repo.head_is_unborn:
            branch = repo.head.shorthand
        workdir = Path(repo.workdir) if repo.workdir else None
        return cls(repo, Location(git_dir, common, workdir, branch))

    # -- config ---------------------------------------------------------------------------------

    def config(self, key: str) -> str | None:
        try:
            value = self._repo.config[key]
        except KeyError:
            return None
        except pygit2.GitError as error:
            raise ConfigError(key, str(error), "fix it with `git config --edit`") from error
        return str(value)

    def config_bool(self, key: str, default: bool) -> bool:
        if self.config(key) is None:
            return default
        try:
            return bool(self._repo.config.get_bool(key))
        except pygit2.GitError as error:
            raise ConfigError(
                key, "not a boolean", f"set it with `git config {key} true` (or false)"
            ) from error

    # -- reading --------------------------------------------------------------------------------

    def tip(self, ref: str) -> str | None:
        """The commit id ``ref`` points at, or None when it does not exist."""
        try:
            reference = self._repo.references.get(ref)
        except (pygit2.GitError, ValueError) as error:
            raise StoreError(f"reading {ref}", str(error), "check `git show-ref`") from error
        if reference is None:
            return None
        target = reference.target
        if not isinstance(target, pygit2.Oid):
            raise FormatError(ref, "is a symbolic ref; tasks refs point at commits")
        return str(target)

    def snapshot(self, commit_id: str | None) -> Snapshot:
        """The task files of ``commit_id`` (an empty store for None)."""
        if commit_id is None:
            return Snapshot(Index.parse(""), lambda path: None, None)
        tree = self._commit(commit_id).tree
        blob_id = _blob_id(tree, INDEX_PATH)
        index = Index.parse("") if blob_id is None else self._index(blob_id)

        def read(path: str) -> str | None:
            found = _blob_id(tree, path)
            return None if found is None else self._text(found, path)

        return Snapshot(index, read, commit_id)

    def _commit(self, commit_id: str) -> pygit2.Commit:
        obj = self._repo.get(commit_id)
        if obj is None:
            raise FormatError(commit_id, "the tasks ref points at a missing object", oid=commit_id)
        if not isinstance(obj, pygit2.Commit):
            raise FormatError(commit_id, f"is a {obj.type_str}, not a commit", oid=commit_id)
        return obj

    def _text(self, blob_id: str, path: str) -> str:
        cached = _TEXT_CACHE.get(blob_id)
        if cached is not None:
            return cached
        blob = self._repo.get(blob_id)
        if not isinstance(blob, pygit2.Blob):
            raise FormatError(path, "is not a file", oid=blob_id)
        try:
            text = blob.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError(path, f"is not valid UTF-8 ({error.reason})", oid=blob_id) from None
        _remember(_TEXT_CACHE, blob_id, text, _TEXT_CACHE_SIZE)
        return text

    def _index(self, blob_id: str) -> Index:
        cached = _PARSE_CACHE.get(blob_id)
        if cached is not None:
            _PARSE_CACHE.move_to_end(blob_id)
            return cached
        blob = self._repo.get(blob_id)
        if not isinstance(blob, pygit2.Blob):
            raise FormatError(INDEX_PATH, "is not a file", oid=blob_id)
        try:
            text = blob.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError(
                INDEX_PATH, f"is not valid UTF-8 ({error.reason})", oid=blob_id
            ) from None
        index = Index.parse(text)
        _remember(_PARSE_CACHE, blob_id, index, _PARSE_CACHE_SIZE)
        return index

    def commit_info(self, commit_id: str) -> Commit:
        commit = self._commit(commit_id)
        author = commit.author
        return Commit(
            str(commit.id),
            tuple(str(p) for p in commit.parent_ids),
            commit.message,
            f"{author.name} <{author.email}>",
            author.time,
            author.offset,
        )

    def first_parents(self, commit_id: str | None) -> Iterator[Commit]:
        """Commits from ``commit_id`` back along first parents."""
        while commit_id is not None:
            info = self.commit_info(commit_id)
            yield info
            commit_id = info.parents[0] if info.parents else None

    # -- writing --------------------------------------------------------------------------------

    def write_commit(self, parent: str | None, change: Change, signature: Signature) -> str:
        """Write the blobs, trees and commit of ``change`` on top of ``parent``."""
        repo = self._repo
        base = self._commit(parent).tree if parent is not None else None
        blobs: dict[str, pygit2.Oid | None] = {}
        if change.index is not None:
            oid = repo.create_blob(change.index.text.encode("utf-8"))
            _remember(_PARSE_CACHE, str(oid), change.index, _PARSE_CACHE_SIZE)
            blobs[INDEX_PATH] = oid
        for path, text in change.files:
            _check_path(path)
            blobs[path] = None if text is None else repo.create_blob(text.encode("utf-8"))
        tree = self._write_tree(base, blobs)
        author = signature.author()
        committer = signature.committer()
        parents = [pygit2.Oid(hex=parent)] if parent is not None else []
        return str(repo.create_commit(None, author, committer, change.message, tree, parents))

    def _write_tree(
        self, base: pygit2.Tree | None, blobs: dict[str, pygit2.Oid | None]
    ) -> pygit2.Oid:
        repo = self._repo
        builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
        groups: dict[str, dict[str, pygit2.Oid | None]] = {}
        for path, oid in blobs.items():
            head, _, rest = path.partition("/")
            if rest:
                groups.setdefault(head, {})[rest] = oid
            elif oid is None:
                if builder.get(head) is not None:
                    builder.remove(head)
            else:
                builder.insert(head, oid, pygit2.GIT_FILEMODE_BLOB)
        for name, inner in groups.items():
            existing = builder.get(name)
            found = repo.get(existing.id) if existing is not None else None
            oid = self._write_tree(found if isinstance(found, pygit2.Tree) else None, inner)
            written = repo.get(oid)
            if isinstance(written, pygit2.Tree) and len(written) == 0:
                if existing is not None:
                    builder.remove(name)
            else:
                builder.insert(name, oid, pygit2.GIT_FILEMODE_TREE)
        return builder.write()

    def set_if_equals(
        self, ref: str, expected: str | None, new: str, message: str, signature: Signature
    ) -> None:
        """Move ``ref`` from ``expected`` (None: absent) to ``new``, or raise ``_Moved``."""
        repo = self._repo
        if expected is None:
            with repo.transaction() as txn:
                txn.lock_ref(ref)
                if repo.references.get(ref) is not None:
                    raise _Moved
                txn.set_target(ref, new, message=message)
            return
        reference = repo.references.get(ref)
        if reference is None or str(reference.target) != expected:
            raise _Moved
        reference.set_target(new, message)

    def ensure_reflog(self, ref: str) -> None:
        """Create an empty reflog for ``ref`` so git and libgit2 log every later update."""
        log = self.location.common_dir / "logs" / ref
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.touch(exist_ok=True)
        except OSError:
            pass  # the reflog is a convenience; the ref works without it


def _remember(cache: OrderedDict[str, T], key: str, value: T, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _blob_id(tree: pygit2.Tree, path: str) -> str | None:
    try:
        entry = tree[path]
    except (KeyError, ValueError):
        return None
    if entry.type_str != "blob":
        return None
    return str(entry.id)


def _check_path(path: str) -> None:
    parts = path.split("/")
    if parts[0] != "process" or any(
        p in ("", ".", "..") or not _PATH_OK.fullmatch(p) for p in parts
    ):
        raise FormatError(path, "refusing to write a path outside process/ or with odd characters")


# -- identity -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    email: str
    time: int | None  # None: now
    offset: int | None  # minutes east of UTC


class Signature:
    """Author and committer as git would pick them: environment first, then config."""

    def __init__(self, author: Identity, committer: Identity) -> None:
        self._author = author
        self._committer = committer

    @classmethod
    def resolve(cls, repo: Repo) -> Signature:
        return cls(_identity(repo, "AUTHOR"), _identity(repo, "COMMITTER"))

    def author(self) -> pygit2.Signature:
        return _signature(self._author)

    def committer(self) -> pygit2.Signature:
        return _signature(self._committer)


def _identity(repo: Repo, role: str) -> Identity:
    name = os.environ.get(f"GIT_{role}_NAME") or repo.config("user.name")
    email = os.environ.get(f"GIT_{role}_EMAIL") or repo.config("user.email")
    if not name or not email:
        missing = "user.name" if not name else "user.email"
        raise ConfigError(
            missing,
            "git has no identity to record who changed the tasks",
            'run `git config --global user.name "Your Name"` and '
            '`git config --global user.email "you@example.com"`',
        )
    date = os.environ.get(f"GIT_{role}_DATE")
    when, offset = _parse_date(date) if date else (None, None)
    return Identity(name, email, when, offset)


_RAW_DATE = re.compile(r"@?(\d+)(?: ([+-])(\d\d)(\d\d))?")


def _parse_date(text: str) -> tuple[int, int]:
    match = _RAW_DATE.fullmatch(text.strip())
    if match:
        offset = 0
        if match.group(2):
            offset = int(match.group(3)) * 60 + int(match.group(4))
            offset = -offset if match.group(2) == "-" else offset
        return int(match.group(1)), offset
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            "GIT_AUTHOR_DATE/GIT_COMMITTER_DATE",
            f"cannot read the date {text!r}",
            "use '@<seconds> +0000' or ISO 8601 such as 2026-01-31T12:00:00+01:00",
        ) from None
    utcoffset = moment.utcoffset()
    minutes = int(utcoffset.total_seconds() // 60) if utcoffset is not None else 0
    return int(moment.timestamp()), minutes


def _signature(identity: Identity) -> pygit2.Signature:
    if identity.time is None:
        now = time.time()
        offset = int(
            (datetime.fromtimestamp(now).astimezone().utcoffset() or timedelta(0)).total_seconds()
        )
        return pygit2.Signature(identity.name, identity.email, int(now), offset // 60)
    return pygit2.Signature(identity.name, identity.email, identity.time, identity.offset or 0)


# -- the transaction loop -------------------------------------------------------------------------


class _WriterLock:
    """The same-machine writers' kernel file lock; a no-op when it cannot be had."""

    def __init__(self, path: Path | None, deadline: float, ref: str) -> None:
        self._path = path
        self._deadline = deadline
        self._ref = ref
        self._lock: BaseFileLock | None = None

    def __enter__(self) -> _WriterLock:
        if self._path is None:
            return self
        import filelock

        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(str(self._path), is_singleton=False)
            wait = max(0.0, self._deadline - time.monotonic())
            lock.acquire(timeout=wait, poll_interval=0.001)
        except filelock.Timeout:
            raise ContentionTimeout(self._ref, 0.0, 0) from None
        except OSError:
            return self  # no lock file possible here: the compare-and-swap still guards
        self._lock = lock
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._lock is not None:
            self._lock.release()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transaction did: its result, and the commit it landed (None: nothing to do)."""

    change: Change | None
    commit: str | None


class Transactor:
    """Runs operations against one ref with compare-and-swap, backoff and a time cap."""

    def __init__(
        self,
        repo: Repo,
        ref: str,
        *,
        timeout: float,
        file_lock: bool,
        trailers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.repo = repo
        self.ref = ref
        self.timeout = timeout
        self.file_lock = file_lock
        self.trailers = trailers
        # Test seam: called after the objects are written and before the compare-and-swap.
        self.before_swap: Callable[[], None] | None = None

    @property
    def lock_path(self) -> Path:
        return self.repo.location.common_dir / "tasksync" / (self.ref.replace("/", "%") + ".lock")

    def snapshot(self) -> Snapshot:
        tip = self.repo.tip(self.ref)
        if tip is None:
            raise NotInitialized(self.ref)
        return self.repo.snapshot(tip)

    def run(
        self, operation: Callable[[Snapshot], Change | T], *, create: bool = False
    ) -> tuple[Change | T, str | None]:
        """Apply ``operation`` to the tip until a compare-and-swap lands it.

        Returns the operation's result and the commit written, or None when the operation
        returned something other than a :class:`Change` (nothing to do). With ``create`` the
        ref may be absent (and only then is it created).
        """
        started = time.monotonic()
        deadline = started + self.timeout
        signature = Signature.resolve(self.repo)
        attempts = 0
        path = self.lock_path if self.file_lock else None
        try:
            with _WriterLock(path, deadline, self.ref):
                while True:
                    attempts += 1
                    tip = self.repo.tip(self.ref)
                    if tip is None and not create:
                        raise NotInitialized(self.ref)
                    result = operation(self.repo.snapshot(tip))
                    if not isinstance(result, Change):
                        return result, None
                    landed = self._attempt(tip, result, signature)
                    if landed is not None:
                        return result, landed
                    if time.monotonic() >= deadline:
                        raise self._timeout(started, attempts)
                    ceiling = min(0.25, 0.002 * 2 ** min(attempts, 8))
                    pause = random.uniform(0, ceiling)  # noqa: S311 - jitter, not secrecy
                    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        except ContentionTimeout as error:
            if error.attempts == 0:  # the file lock timed out
                raise self._timeout(started, attempts) from None
            raise

    def _attempt(self, tip: str | None, change: Change, signature: Signature) -> str | None:
        """One write + compare-and-swap; the new commit id when it landed, else None."""
        full = Change(
            change.index, change.files, change.summary, change.trailers + self.trailers, change.task
        )
        new: str | None = None
        try:
            new = self.repo.write_commit(tip, full, signature)
            if self.before_swap is not None:
                self.before_swap()
            self.repo.set_if_equals(self.ref, tip, new, full.summary, signature)
        except (_Moved, pygit2.GitError, OSError):
            pass
        except TaskSyncError:
            raise
        else:
            return new
        # Whatever the error said, the ref decides: did our commit land after all?
        try:
            return new if new is not None and self.repo.tip(self.ref) == new else None
        except TaskSyncError:
            return None

    def _timeout(self, started: float, attempts: int) -> ContentionTimeout:
        seconds = time.monotonic() - started
        lock = self.repo.location.common_dir / (self.ref + ".lock")
        try:
            age = time.time() - lock.stat().st_mtime
        except OSError:
            return ContentionTimeout(self.ref, seconds, attempts)
        return ContentionTimeout(self.ref, seconds, attempts, str(lock), age)
