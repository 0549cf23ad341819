"""The part of :class:`~tasksync.store.Repo` every other part builds on: opening a
repository, its configuration, and reading refs, commits, trees and task files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

import pygit2

from ..cache import LOOKED_UP, NAMES, PARSED, TEXTS
from ..errors import ConfigError, FileTooLarge, FormatError, NotARepository, StoreError
from ..identity import Identity
from ..markdown import INDEX_PATH, Index
from ..operations import Snapshot
from .refs import Refs, is_reftable, open_reftable, ref_backend
from .refs import WriteFailed as WriteFailed  # noqa: PLC0414 - re-exported, as before


class Location(NamedTuple):
    """Where a path's repository lives."""

    git_dir: Path  # this worktree's git dir (``.git`` or ``.git/worktrees/NAME``)
    common_dir: Path  # shared by all worktrees: objects, refs, config
    workdir: Path | None  # None for a bare repository
    branch: str | None  # the checked-out branch, None when detached or bare


class Commit(NamedTuple):
    """A commit of the tasks ref, as callers see it."""

    id: str
    parents: tuple[str, ...]
    message: str
    author: str
    time: int
    offset_minutes: int


class TaskFiles(NamedTuple):
    """The in-tree task files of one state of a project (a commit, or its working tree), as
    ``git tasks migrate`` imports them: ``process/tasks.md`` and every ``*.md`` file under
    ``process/tasks/``, by blob id."""

    tasks_md: str | None  # blob id of process/tasks.md; None when there is none
    specs: tuple[tuple[str, str], ...]  # (path, blob id) of each spec file, sorted by path
    tree: str | None  # the tree id of process/tasks as found (None: none, or a working tree)
    reusable: bool  # that tree holds exactly the spec files, as plain files: written as it is
    left_out: tuple[str, ...]  # other paths under process/tasks/, which are not imported

    def same_files(self, other: TaskFiles | None) -> bool:
        """Whether ``other`` holds the same files with the same contents."""
        if other is None or self.tasks_md != other.tasks_md:
            return False
        return (self.tree is not None and self.tree == other.tree) or self.specs == other.specs


_R = TypeVar("_R", bound="_Base")
_Signed = tuple[Identity, tuple[int, int]]  # who, and when (seconds, minutes east of UTC)
# Files a chain of snapshots remembers having read (spec files, mostly) before it stops adding.
_READS_KEPT = 4096


class _Base:
    """The repository handle, its configuration and its reads."""

    def __init__(
        self, repo: pygit2.Repository, location: Location, refs: Refs | None = None
    ) -> None:
        self._repo = repo
        self.location = location
        self._config_snapshot: pygit2.Config | None = None
        self._config_values: dict[str, str | None] = {}
        # Every ref read and move goes through here: libgit2, or git for reftable (see refs).
        self._refs = refs or ref_backend(repo, location.common_dir, reftable=False)
        self._max_file_size: int | None = None  # tasks.maxFileSize, read on first use
        # The commit this handle wrote last, its index, and the files read from its
        # snapshot's chain: a status change writes tasks.md alone, so the next operation, on
        # that commit, finds the index and every spec file it needs here (see snapshot).
        self._written: tuple[str, Index, dict[str, str | None]] | None = None
        # The files read from the last snapshot, by the commit it is of.
        self._reads: tuple[str, dict[str, str | None]] | None = None
        # The last commit signature made, and for whom and when (see _Writing._signature).
        self._last_signature: tuple[_Signed, pygit2.Signature] | None = None

    @classmethod
    def discover(cls: type[_R], path: str | os.PathLike[str]) -> _R:
        start = Path(path).absolute()
        found: str | None = None
        reftable = False
        try:
            found = pygit2.discover_repository(str(start))
            repo = pygit2.Repository(found) if found else None
        except pygit2.GitError as error:
            # libgit2 cannot open a repository whose refs are in reftable: it is opened for
            # its objects, config and working tree all the same, its refs go through git.
            repo = open_reftable(found) if found else None
            if repo is None:
                raise NotARepository(f"{start} ({error})") from error
            reftable = True
        if repo is None:
            raise NotARepository(str(start))
        git_dir = Path(repo.path)
        common = git_dir
        commondir_file = git_dir / "commondir"
        if commondir_file.is_file():
            common = (git_dir / commondir_file.read_text(encoding="utf-8").strip()).resolve()
        # libgit2 also opens a reftable repository while another thread has it accept the
        # extension for a moment (see open_reftable): its refs still go through git.
        reftable = reftable or is_reftable(git_dir)
        refs = ref_backend(repo, common, reftable=reftable)
        workdir = Path(repo.workdir) if repo.workdir else None
        return cls(repo, Location(git_dir, common, workdir, refs.branch()), refs)

    @classmethod
    def open_exact(cls: type[_R], path: Path) -> _R | None:
        """The repository at exactly ``path`` (its top directory or its git dir), or None when
        there is none there: unlike :meth:`discover`, never a repository further up."""
        try:
            found = pygit2.discover_repository(str(path), False, str(path.parent))
            if not found:
                return None
            opened = cls.discover(path)
            git_dir = opened.location.git_dir.resolve()
            workdir = opened.location.workdir
            here = path.resolve()
            # The repository of exactly this directory: its git dir, or its worktree's top
            # (a linked worktree's git dir lives inside the main repository's).
            if git_dir != here and (workdir is None or workdir.resolve() != here):
                return None
            return opened
        except (pygit2.GitError, OSError, NotARepository):
            return None

    # -- config ---------------------------------------------------------------------------------

    def _config(self) -> pygit2.Config:
        # One read-only snapshot of the layered config per open repository: each access to
        # ``Repository.config`` would parse every config file again.
        if self._config_snapshot is None:
            try:
                self._config_snapshot = self._repo.config.snapshot()
            except pygit2.GitError as error:
                raise ConfigError(
                    "config", str(error), "fix the file with `git config --edit`"
                ) from error
        return self._config_snapshot

    def config(self, key: str) -> str | None:
        if key in self._config_values:
            return self._config_values[key]
        try:
            found: str | None = str(self._config()[key])
        except KeyError:
            found = None
        except UnicodeDecodeError:
            raise ConfigError(
                key, "its value is not valid UTF-8", f"set it again with `git config {key} VALUE`"
            ) from None
        except pygit2.GitError as error:
            raise ConfigError(key, str(error), "fix it with `git config --edit`") from error
        self._config_values[key] = found
        return found

    def config_bool(self, key: str, default: bool) -> bool:
        if self.config(key) is None:
            return default
        try:
            return bool(self._config().get_bool(key))
        except pygit2.GitError as error:
            raise ConfigError(
                key, "not a boolean", f"set it with `git config {key} true` (or false)"
            ) from error

    def config_int(self, key: str) -> int | None:
        """An integer setting as ``git config --type=int`` reads it (``k``, ``m`` and ``g``
        suffixes, ``0x`` hex), or None when it is not set."""
        text = self.config(key)
        if text is None:
            return None
        try:
            return int(self._config().get_int(key))
        except (pygit2.GitError, ValueError, OverflowError):
            raise ConfigError(
                key,
                f"{text!r} is not a number git reads (digits, then k, m or g)",
                f"set it with `git config {key} 10m`",
            ) from None

    def max_file_size(self) -> int:
        """The largest file read from the tasks ref or written to it (``tasks.maxFileSize``)."""
        if self._max_file_size is None:
            from ..workspace import max_file_size  # where every tasks.* setting is read

            self._max_file_size = max_file_size(self.config_int)
        return self._max_file_size

    def _check_size(self, blob_id: str, path: str) -> None:
        """Refuse a file over the size limit from its object header, before it is inflated:
        libgit2 reads the header alone, loose or packed, so the file never reaches memory."""
        try:
            kind, size = self._repo.odb.read_header(pygit2.Oid(hex=blob_id))
        except (pygit2.GitError, KeyError, ValueError) as error:
            raise FormatError(path, f"cannot be read ({error})", oid=blob_id) from None
        if kind != pygit2.enums.ObjectType.BLOB:
            raise FormatError(path, "is not a file", oid=blob_id)
        limit = self.max_file_size()
        if size > limit:
            raise FileTooLarge(path, size, limit, blob_id)

    def _check_cached(self, text: str, blob_id: str, path: str) -> None:
        """The size limit for a file already read (under another limit, in this process)."""
        limit = self.max_file_size()
        if 4 * len(text) > limit:  # UTF-8 takes at most 4 bytes a character: else it fits
            size = len(text.encode("utf-8"))
            if size > limit:
                raise FileTooLarge(path, size, limit, blob_id)

    # -- reading --------------------------------------------------------------------------------

    def tip(self, ref: str) -> str | None:
        """The commit id ``ref`` points at, or None when it does not exist."""
        return self._refs.read(ref)

    def snapshot(self, commit_id: str | None) -> Snapshot:
        """The task files of ``commit_id`` (an empty store for None)."""
        if commit_id is None:
            return Snapshot(Index.parse(""), lambda path: None, None)
        tree = self._tree(self._commit(commit_id), commit_id)
        written = self._written
        if written is not None and written[0] == commit_id:
            index, reads = written[1], written[2]
        else:
            blob_id = _file_id(tree, INDEX_PATH)
            index = Index.parse("") if blob_id is None else self._index(blob_id)
            reads = {}
        self._reads = (commit_id, reads)

        def read(path: str) -> str | None:
            if path in reads:
                return reads[path]
            found = self._lookup(tree, path)
            text = None if found is None else self._text(found, path)
            if path != INDEX_PATH and len(reads) < _READS_KEPT:  # tasks.md changes in a chain
                reads[path] = text
            return text

        return Snapshot(index, read, commit_id, tree)

    def _wrote(self, commit_id: str, parent: str | None, index: Index | None, files: bool) -> None:
        """Remember that ``commit_id`` (on ``parent``) holds ``index``; with no other file
        changed, the files read from ``parent``'s snapshot are its files too."""
        if index is None:
            return
        reads = self._reads
        carried = reads[1] if reads is not None and reads[0] == parent and not files else {}
        self._written = (commit_id, index, carried)

    def _lookup(self, tree: pygit2.Tree, path: str) -> str | None:
        """The blob id at ``path``; big directories are indexed once they are read twice.

        libgit2 keeps no large tree in its object cache, so each lookup in a directory of
        thousands of spec files inflates and scans it again; a process that reads the same
        directory a second time gets a name map for it instead.
        """
        directory, _, name = path.rpartition("/")
        try:
            entry = tree[directory] if directory else None
        except (KeyError, ValueError):
            return _file_id(tree, path)  # None, or what stands where a directory should
        except pygit2.GitError as error:
            raise FormatError(directory, f"cannot be read ({error})") from None
        if entry is None or entry.type_str != "tree":
            return _file_id(tree, path)
        key = str(entry.id)
        names = NAMES.get(key)
        if names is None:
            if LOOKED_UP.get(key) is None:
                LOOKED_UP.put(key, True)
                return _file_id(tree, path)
            listing = self._get(entry.id, path)
            if not isinstance(listing, pygit2.Tree):
                return None
            # Plain files by blob id; anything else by "!" and its mode, refused when read.
            names = {
                item.name: str(item.id) if item.filemode in FILE_MODES else f"!{int(item.filemode)}"
                for item in listing
                if item.name is not None
            }
            NAMES.put(key, names)
        found = names.get(name)
        if found is not None and found.startswith("!"):
            raise _not_a_file(path, int(found[1:]))
        return found

    def _get(self, oid: str | pygit2.Oid, path: str) -> pygit2.Object | None:
        """Read one object; a corrupt or unreadable one is a FormatError naming ``path``."""
        try:
            return self._repo.get(oid)
        except (pygit2.GitError, KeyError, ValueError) as error:
            raise FormatError(path, f"cannot be read ({error})", oid=str(oid)) from None

    def _tree(self, commit: pygit2.Commit, commit_id: str) -> pygit2.Tree:
        try:
            return commit.tree
        except (pygit2.GitError, KeyError, ValueError) as error:
            raise FormatError(
                commit_id, f"its tree cannot be read ({error})", oid=commit_id
            ) from None

    def _commit(self, commit_id: str) -> pygit2.Commit:
        obj = self._get(commit_id, commit_id)
        if obj is None:
            raise FormatError(commit_id, "the tasks ref points at a missing object", oid=commit_id)
        if not isinstance(obj, pygit2.Commit):
            raise FormatError(commit_id, f"is a {obj.type_str}, not a commit", oid=commit_id)
        return obj

    def _text(self, blob_id: str, path: str) -> str:
        cached = TEXTS.get(blob_id)
        if cached is not None:
            self._check_cached(cached, blob_id, path)
            return cached
        text = self._decoded(blob_id, path)
        TEXTS.put(blob_id, text)
        return text

    def _index(self, blob_id: str) -> Index:
        cached = PARSED.get(blob_id)
        if cached is not None:
            self._check_cached(cached.text, blob_id, INDEX_PATH)
            return cached
        index = Index.parse(self._decoded(blob_id, INDEX_PATH))
        PARSED.put(blob_id, index)
        return index

    def _decoded(self, blob_id: str, path: str) -> str:
        """The text of the file ``path`` on the ref, measured against the size limit first."""
        self._check_size(blob_id, path)
        blob = self._get(blob_id, path)
        if not isinstance(blob, pygit2.Blob):
            raise FormatError(path, "is not a file", oid=blob_id)
        try:
            return blob_bytes(blob).decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError(path, f"is not valid UTF-8 ({error.reason})", oid=blob_id) from None

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

    def reaches(self, head: str, commit_id: str, stop: str | None, limit: int = 10_000) -> bool:
        """Whether ``commit_id`` is on the first-parent chain from ``head`` down to ``stop``."""
        current: str | None = head
        for _ in range(limit):
            if current is None or current == stop:
                return False
            if current == commit_id:
                return True
            obj = self._get(current, current)
            if not isinstance(obj, pygit2.Commit) or not obj.parent_ids:
                return False
            current = str(obj.parent_ids[0])
        return False

    def first_parents(self, commit_id: str | None) -> Iterator[Commit]:
        """Commits from ``commit_id`` back along first parents."""
        while commit_id is not None:
            info = self.commit_info(commit_id)
            yield info
            commit_id = info.parents[0] if info.parents else None

    def ancestors(self, commit_id: str, hide: str | None = None) -> Iterator[Commit]:
        """``commit_id`` and every commit it reaches, merged sides included, newest first
        (children before their parents, as ``git log`` lists them); with ``hide``, only those
        that commit does not reach."""
        try:
            walker = self._repo.walk(
                pygit2.Oid(hex=commit_id),
                pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME,
            )
            if hide is not None:
                walker.hide(pygit2.Oid(hex=hide))
            for commit in walker:
                yield self.commit_info(str(commit.id))
        except (pygit2.GitError, KeyError, ValueError) as error:
            raise StoreError(
                f"walking the history of {commit_id}", str(error), "run `git fsck`"
            ) from None

    def was_tip(self, ref: str, commit_id: str) -> bool:
        """Whether ``ref``'s reflog records it pointing at ``commit_id`` at some time."""
        return self._refs.was_tip(ref, commit_id)


def blob_bytes(blob: pygit2.Blob) -> bytes:
    """The contents of a blob already read. Through its buffer, not ``Blob.data``: pygit2
    reads the object from the object database again for ``data`` (inflating all of it a second
    time, 2.3 ms for a 572 KB tasks.md), while the buffer is the object in memory."""
    return bytes(memoryview(blob))


def tree_entry(tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    """The entry at ``path`` of a tree, or None; FormatError when the tree cannot be read."""
    try:
        return tree[path]
    except (KeyError, ValueError):
        return None
    except pygit2.GitError as error:
        raise FormatError(path, f"cannot be read ({error})") from None


#: The modes of plain files (executable or not): the only entries read as task files.
FILE_MODES = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE)
_NOT_FILES = {
    pygit2.GIT_FILEMODE_LINK: "a symbolic link",
    pygit2.GIT_FILEMODE_COMMIT: "a submodule",
    pygit2.GIT_FILEMODE_TREE: "a directory",
}


def _not_a_file(path: str, mode: int) -> FormatError:
    what = _NOT_FILES.get(mode, f"an entry of mode {int(mode):o}")
    return FormatError(path, f"is {what} on the tasks ref, not a file; tasksync reads plain files")


def _file_id(tree: pygit2.Tree, path: str) -> str | None:
    """The blob id of the plain file at ``path``, or None when nothing is there. Anything
    else there (a symbolic link, a submodule, a directory), or on the way there (a file where
    a directory should be), is a FormatError: a link's target is never read as the file."""
    entry = tree_entry(tree, path)
    if entry is not None:
        if entry.filemode not in FILE_MODES:
            raise _not_a_file(path, entry.filemode)
        return str(entry.id)
    parts = path.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        found = tree_entry(tree, parent)
        if found is None:
            return None
        if found.filemode != pygit2.GIT_FILEMODE_TREE:
            what = _NOT_FILES.get(found.filemode, "a file")
            raise FormatError(
                parent, f"is {what} on the tasks ref where the directory of {path} should be"
            )
    return None
