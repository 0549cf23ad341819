"""Objects and refs: the only module that imports pygit2.

Reads turn commits into :class:`~tasksync.operations.Snapshot` objects (parsing tasks.md once
per blob id); writes turn a :class:`~tasksync.operations.Change` into blobs, trees and a commit,
and move a ref only by compare-and-swap (:meth:`Repo.set_if_equals`). Every failure of a write
reaches the caller as :class:`WriteFailed`, whose cause the caller decides by re-reading the ref,
never by an error's text. pygit2 objects never leave this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pygit2

from .cache import LOOKED_UP, NAMES, PARSED, TEXTS
from .errors import ConfigError, FormatError, NotARepository, StoreError, UnknownRevision
from .identity import Identity, Signatures
from .markdown import INDEX_PATH, RECORDS_PATH, SPEC_DIR, Index
from .operations import Change, Snapshot

_PATH_OK = re.compile(r"[^\x00-\x1f/\\]+")


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


class WriteFailed(Exception):
    """A write did not land: the ref moved, a lock was busy, or git failed to write.

    Internal to the write path: the transaction loop catches it and re-reads the ref.
    """


class Repo:
    """One open repository; callers never see the pygit2 object inside."""

    def __init__(self, repo: pygit2.Repository, location: Location) -> None:
        self._repo = repo
        self.location = location
        self._config_snapshot: pygit2.Config | None = None
        self._config_values: dict[str, str | None] = {}
        self._read_refs: dict[str, pygit2.Reference] = {}

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

    @classmethod
    def open_exact(cls, path: Path) -> Repo | None:
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
        # Kept for the compare-and-swap that usually follows: libgit2 compares against the
        # value a Reference was looked up with, which is exactly the tip just read.
        self._read_refs[ref] = reference
        return str(target)

    def snapshot(self, commit_id: str | None) -> Snapshot:
        """The task files of ``commit_id`` (an empty store for None)."""
        if commit_id is None:
            return Snapshot(Index.parse(""), lambda path: None, None)
        tree = self._tree(self._commit(commit_id), commit_id)
        blob_id = _blob_id(tree, INDEX_PATH)
        index = Index.parse("") if blob_id is None else self._index(blob_id)

        def read(path: str) -> str | None:
            found = self._lookup(tree, path)
            return None if found is None else self._text(found, path)

        return Snapshot(index, read, commit_id)

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
            return None
        except pygit2.GitError as error:
            raise FormatError(directory, f"cannot be read ({error})") from None
        if entry is None or entry.type_str != "tree":
            return _blob_id(tree, path)
        key = str(entry.id)
        names = NAMES.get(key)
        if names is None:
            if LOOKED_UP.get(key) is None:
                LOOKED_UP.put(key, True)
                return _blob_id(tree, path)
            listing = self._get(entry.id, path)
            if not isinstance(listing, pygit2.Tree):
                return None
            names = {
                item.name: str(item.id)
                for item in listing
                if item.name is not None and item.type_str == "blob"
            }
            NAMES.put(key, names)
        return names.get(name)

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
            return cached
        blob = self._get(blob_id, path)
        if not isinstance(blob, pygit2.Blob):
            raise FormatError(path, "is not a file", oid=blob_id)
        try:
            text = blob.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError(path, f"is not valid UTF-8 ({error.reason})", oid=blob_id) from None
        TEXTS.put(blob_id, text)
        return text

    def _index(self, blob_id: str) -> Index:
        cached = PARSED.get(blob_id)
        if cached is not None:
            return cached
        blob = self._get(blob_id, INDEX_PATH)
        if not isinstance(blob, pygit2.Blob):
            raise FormatError(INDEX_PATH, "is not a file", oid=blob_id)
        try:
            text = blob.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError(
                INDEX_PATH, f"is not valid UTF-8 ({error.reason})", oid=blob_id
            ) from None
        index = Index.parse(text)
        PARSED.put(blob_id, index)
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

    # -- merging --------------------------------------------------------------------------------

    def resolve_commit(self, revision: str) -> str:
        """The commit a revision (a ref, a branch, an id) names; UnknownRevision when none."""
        try:
            found = self._repo.revparse_single(revision)
            commit = found.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as error:
            raise UnknownRevision(revision, str(error)) from None
        return str(commit.id)

    def top_names(self, commit: str) -> frozenset[str]:
        """The names at the top of a commit's tree."""
        tree = self._tree(self._commit(commit), commit)
        return frozenset(entry.name for entry in tree if entry.name is not None)

    def has_commit(self, commit_id: str) -> bool:
        """Whether this repository's object store holds ``commit_id`` as a commit."""
        try:
            found = self._repo.get(commit_id)
        except (pygit2.GitError, KeyError, ValueError):
            return False
        return isinstance(found, pygit2.Commit)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ``descendant`` is ``ancestor`` or reaches it; False when either is missing."""
        if ancestor == descendant:
            return self.has_commit(ancestor)
        try:
            return bool(self._repo.descendant_of(descendant, ancestor))
        except (pygit2.GitError, KeyError, ValueError):
            return False

    def tree_entries(self, commit: str) -> Iterator[tuple[str, str]]:
        """Every path in a commit's tree with its kind: blob, executable, link, tree or commit
        (a submodule)."""
        yield from _entries(self._tree(self._commit(commit), commit), "")

    def merge_base(self, one: str, other: str) -> str | None:
        try:
            found = self._repo.merge_base(one, other)
        except (pygit2.GitError, ValueError) as error:
            raise StoreError("finding a merge base", str(error), "run `git fsck`") from None
        return None if found is None else str(found)

    def changed(self, base: str | None, commit: str) -> frozenset[str]:
        """The file paths whose content differs between two commits' trees."""
        new = self._tree(self._commit(commit), commit)
        try:
            if base is None:
                return frozenset(_blob_paths(new, ""))
            diff = self._tree(self._commit(base), base).diff_to_tree(new)
            return frozenset(
                path
                for delta in diff.deltas
                for path in (delta.old_file.path, delta.new_file.path)
                if path
            )
        except pygit2.GitError as error:
            raise FormatError(
                commit, f"its tree cannot be compared ({error})", oid=commit
            ) from None

    def reader(self, commit: str | None) -> Callable[[str], str | None]:
        """A reader of file texts at ``commit`` (of nothing, for None)."""
        if commit is None:
            return lambda path: None
        tree = self._tree(self._commit(commit), commit)

        def read(path: str) -> str | None:
            found = self._lookup(tree, path)
            return None if found is None else self._text(found, path)

        return read

    def line_merge(
        self, base: str | None, ours: str, theirs: str, favor: str | None
    ) -> tuple[str, bool]:
        """libgit2's line merge of three texts: the text and whether it merged cleanly.

        With ``favor`` ("ours" or "theirs") lines both sides changed take that side's version,
        so the text carries no conflict markers.
        """
        repo = self._repo
        try:
            ids = [
                None if t is None else repo.create_blob(t.encode("utf-8"))
                for t in (base, ours, theirs)
            ]
            if favor is None:
                entries = [
                    None if oid is None else pygit2.IndexEntry("f", oid, pygit2.enums.FileMode.BLOB)
                    for oid in ids
                ]
                result = repo.merge_file_from_index(entries[0], entries[1], entries[2])
                return result.contents, result.automergeable
            trees = []
            for oid in ids:
                builder = repo.TreeBuilder()
                if oid is not None:
                    builder.insert("f", oid, pygit2.GIT_FILEMODE_BLOB)
                trees.append(builder.write())
            choice = (
                pygit2.enums.MergeFavor.OURS if favor == "ours" else pygit2.enums.MergeFavor.THEIRS
            )
            merged = repo.merge_trees(trees[0], trees[1], trees[2], favor=choice)
            blob = repo[merged["f"].id]
            assert isinstance(blob, pygit2.Blob)  # noqa: S101 - a merged file entry
            return blob.data.decode("utf-8"), True
        except (pygit2.GitError, KeyError, UnicodeDecodeError) as error:
            raise StoreError(
                "merging a spec file",
                str(error),
                "merge it by hand with `git tasks edit ID --spec`",
            ) from None

    # -- writing --------------------------------------------------------------------------------

    def write_commit(
        self, parent: str | None, change: Change, message: str, signatures: Signatures
    ) -> str:
        """Write the blobs, trees and commit of ``change`` on top of ``parent``."""
        try:
            return self._write_commit(parent, change, message, signatures)
        except (UnicodeError, OverflowError) as error:  # not a passing failure: do not retry
            raise FormatError("the new commit", f"cannot be written ({error})") from None
        except (pygit2.GitError, OSError) as error:
            raise WriteFailed(str(error)) from error

    def check_signatures(self, signatures: Signatures) -> None:
        """Raise ConfigError now if git cannot record these identities, rather than retry."""
        now = signatures.author.stamp()
        for key, identity in (("author", signatures.author), ("committer", signatures.committer)):
            try:
                _signature(identity, now)
            except (pygit2.GitError, ValueError, OverflowError, UnicodeError) as error:
                raise ConfigError(
                    f"the {key} identity",
                    f"git cannot record {identity.name!r} <{identity.email}> ({error})",
                    'set a plain one, e.g. `git config --global user.name "Your Name"`',
                ) from None

    def _write_commit(
        self, parent: str | None, change: Change, message: str, signatures: Signatures
    ) -> str:
        repo = self._repo
        base = self._tree(self._commit(parent), parent) if parent is not None else None
        blobs: dict[str, pygit2.Oid | None] = {}
        if change.index is not None:
            oid = repo.create_blob(change.index.text.encode("utf-8"))
            PARSED.put(str(oid), change.index)
            blobs[INDEX_PATH] = oid
        for path, text in change.files:
            _check_path(path)
            blobs[path] = None if text is None else repo.create_blob(text.encode("utf-8"))
        tree = self._write_tree(base, blobs)
        if tree is None:  # every file removed: the root is the empty tree
            tree = repo.TreeBuilder().write()
        now = signatures.author.stamp()
        author = _signature(signatures.author, now)
        committer = _signature(signatures.committer, now)
        parents = [pygit2.Oid(hex=p) for p in (parent, *change.parents) if p is not None]
        return str(repo.create_commit(None, author, committer, message, tree, parents))

    def _write_tree(
        self, base: pygit2.Tree | None, blobs: dict[str, pygit2.Oid | None]
    ) -> pygit2.Oid | None:
        """Write ``base`` with ``blobs`` put in (None removes); None when it ends up empty."""
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
                existing_file = builder.get(head)
                if existing_file is not None and existing_file.type_str != "blob":
                    raise FormatError(head, "is a directory on the tasks ref; not replacing it")
                builder.insert(head, oid, pygit2.GIT_FILEMODE_BLOB)
        for name, inner in groups.items():
            existing = builder.get(name)
            if existing is not None and existing.type_str != "tree":
                raise FormatError(name, "is a file on the tasks ref; not replacing it")
            found = repo.get(existing.id) if existing is not None else None
            oid = self._write_tree(found if isinstance(found, pygit2.Tree) else None, inner)
            if oid is not None:
                builder.insert(name, oid, pygit2.GIT_FILEMODE_TREE)
            elif existing is not None:
                builder.remove(name)
        return builder.write() if len(builder) else None

    def set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        """Move ``ref`` from ``expected`` (None: absent) to ``new``, or raise WriteFailed.

        The comparison happens under git's ref lock: for an existing ref libgit2 compares
        against the value the Reference was looked up with; an absent ref is created inside a
        ref transaction, because ``references.create`` checks existence before locking.
        """
        try:
            self._set_if_equals(ref, expected, new, message)
        except (pygit2.GitError, OSError, KeyError, ValueError) as error:
            raise WriteFailed(str(error)) from error

    def add_if_new(self, ref: str, new: str, message: str) -> None:
        """Create ``ref`` at ``new`` only if it does not exist, or raise WriteFailed."""
        self.set_if_equals(ref, None, new, message)

    def _set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        repo = self._repo
        if expected is None:
            with repo.transaction() as txn:
                txn.lock_ref(ref)
                if repo.references.get(ref) is not None:
                    raise WriteFailed
                txn.set_target(ref, new, message=message)
            return
        # The Reference read with the tip, if it holds the expected value; pop() hands it to
        # one caller only, so no two threads ever share a pygit2 object.
        reference = self._read_refs.pop(ref, None)
        if reference is None or str(reference.target) != expected:
            reference = repo.references.get(ref)
        if reference is None or str(reference.target) != expected:
            raise WriteFailed
        reference.set_target(new, message)

    def ensure_reflog(self, ref: str) -> None:
        """Create an empty reflog for ``ref`` so git and libgit2 log every later update."""
        log = self.location.common_dir / "logs" / ref
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.touch(exist_ok=True)
        except OSError:
            pass  # the reflog is a convenience; the ref works without it


def _blob_id(tree: pygit2.Tree, path: str) -> str | None:
    try:
        entry = tree[path]
    except (KeyError, ValueError):
        return None
    except pygit2.GitError as error:
        raise FormatError(path, f"cannot be read ({error})") from None
    if entry.type_str != "blob":
        return None
    return str(entry.id)


_KINDS = {
    pygit2.GIT_FILEMODE_BLOB: "blob",
    pygit2.GIT_FILEMODE_BLOB_EXECUTABLE: "executable",
    pygit2.GIT_FILEMODE_LINK: "link",
    pygit2.GIT_FILEMODE_TREE: "tree",
    pygit2.GIT_FILEMODE_COMMIT: "commit",
}


def _entries(tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, str]]:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        kind = _KINDS.get(entry.filemode, "unknown")
        yield path, kind
        if kind == "tree" and isinstance(entry, pygit2.Tree):
            yield from _entries(entry, f"{path}/")


def _blob_paths(tree: pygit2.Tree, prefix: str) -> Iterator[str]:
    for entry in tree:
        if isinstance(entry, pygit2.Tree):
            yield from _blob_paths(entry, f"{prefix}{entry.name}/")
        elif entry.type_str == "blob":
            yield f"{prefix}{entry.name}"


def _check_path(path: str) -> None:
    """Refuse a spec path that is odd, outside ``process/``, or the index or spec directory."""
    if path == RECORDS_PATH:
        return
    parts = path.split("/")
    if (
        len(parts) < 2
        or parts[0] != "process"
        or any(p in ("", ".", "..") or not _PATH_OK.fullmatch(p) for p in parts)
        or path in (INDEX_PATH, SPEC_DIR)
        or path.startswith(INDEX_PATH + "/")
    ):
        raise FormatError(
            path, "refusing to write a spec there (outside process/, odd, or the index itself)"
        )


def _signature(identity: Identity, now: tuple[int, int]) -> pygit2.Signature:
    """A pygit2 signature at the identity's fixed time, or at ``now`` when it has none."""
    seconds, offset = identity.when or now
    return pygit2.Signature(identity.name, identity.email, seconds, offset)
