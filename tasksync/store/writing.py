"""Writing: blobs, trees and commits, and refs moved only by compare-and-swap."""

from __future__ import annotations

import re
from pathlib import Path

import pygit2

from ..cache import PARSED
from ..errors import ConfigError, FileTooLarge, FormatError, StoreError
from ..identity import Identity, Signatures
from ..markdown import INDEX_PATH, RECORDS_PATH, SPEC_DIR, Index
from ..operations import Change
from ._base import FILE_MODES, WriteFailed, _Base, _not_a_file

_PATH_OK = re.compile(r"[^\x00-\x1f/\\]+")
_PROCESS, _, _INDEX_NAME = INDEX_PATH.partition("/")
# libgit2 writes an object through the first backend, by priority, that can write: its own
# loose backend has 1 and packs 2 (packs cannot write loose objects).
_FSYNC_PRIORITY = 3


class _Writing(_Base):
    """Writing: blobs, trees and commits, and refs moved only by compare-and-swap."""

    # -- writing --------------------------------------------------------------------------------

    def write_commit(
        self,
        parent: str | None,
        change: Change,
        message: str,
        signatures: Signatures,
        base: object = None,
    ) -> str:
        """Write the blobs, trees and commit of ``change`` on top of ``parent``; ``base``
        may be the tree of ``parent`` as a snapshot of it holds it, saving a read."""
        try:
            return self._write_commit(parent, change, message, signatures, base)
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
        self,
        parent: str | None,
        change: Change,
        message: str,
        signatures: Signatures,
        tree_of_parent: object,
    ) -> str:
        repo = self._repo
        tree: pygit2.Oid | None = None
        index = change.index
        if index is not None and not change.files and isinstance(tree_of_parent, pygit2.Tree):
            tree = self._index_tree(tree_of_parent, index)
        if tree is None:
            base: pygit2.Tree | None = None
            if isinstance(tree_of_parent, pygit2.Tree):
                base = tree_of_parent
            elif parent is not None:
                base = self._tree(self._commit(parent), parent)
            tree = self._changed_tree(base, change)
        now = signatures.author.stamp()
        author = self._signature(signatures.author, now)
        # Usually the same person at the same time: one signature serves as both.
        same = signatures.committer == signatures.author
        committer = author if same else _signature(signatures.committer, now)
        parents = [pygit2.Oid(hex=p) for p in (parent, *change.parents) if p is not None]
        new = str(repo.create_commit(None, author, committer, message, tree, parents))
        self._wrote(new, parent, change.index, bool(change.files))
        return new

    def _signature(self, identity: Identity, now: tuple[int, int]) -> pygit2.Signature:
        """The signature of ``identity`` at ``now``; the last one made is made once (a
        signature is a value: writers in one second share it)."""
        made = self._last_signature
        key = (identity, now)
        if made is None or made[0] != key:
            made = self._last_signature = (key, _signature(identity, now))
        return made[1]

    def _changed_tree(self, base: pygit2.Tree | None, change: Change) -> pygit2.Oid:
        """The root tree of ``base`` with the files of ``change`` written in."""
        repo = self._repo
        contents = self._contents(change)  # every path and size checked before any write
        blobs: dict[str, pygit2.Oid | None] = {}
        if change.index is not None:
            oid = repo.create_blob(contents[INDEX_PATH])
            PARSED.put(str(oid), change.index)
            blobs[INDEX_PATH] = oid
        for path, text in change.files:
            data = contents.get(path)
            blobs[path] = None if text is None or data is None else repo.create_blob(data)
        tree = self._write_tree(base, blobs)
        if tree is None:  # every file removed: the root is the empty tree
            tree = repo.TreeBuilder().write()
        return tree

    def _index_tree(self, base: pygit2.Tree, index: Index) -> pygit2.Oid | None:
        """The root tree of ``base`` with a new tasks.md, when only tasks.md changes (a status
        change does): written as git itself writes it, with none of the general path's
        bookkeeping. ``base`` is usually a snapshot's tree, whose tasks.md the snapshot found to
        be a plain file or absent. None when ``process`` is not a directory there or tasks.md
        is not a plain file: the general path decides, and refuses what it must."""
        try:
            process = base[_PROCESS]
            if not isinstance(process, pygit2.Tree):
                return None
            if _INDEX_NAME in process and process[_INDEX_NAME].filemode not in FILE_MODES:
                return None  # not a plain file: the general path says so
        except (KeyError, ValueError, pygit2.GitError):
            return None
        data = index.text.encode("utf-8")
        limit = self.max_file_size()
        if len(data) > limit:
            raise FileTooLarge(INDEX_PATH, len(data), limit, writing=True)
        repo = self._repo
        blob = repo.create_blob(data)
        PARSED.put(str(blob), index)
        inner = repo.TreeBuilder(process)
        inner.insert(_INDEX_NAME, blob, pygit2.GIT_FILEMODE_BLOB)
        outer = repo.TreeBuilder(base)
        outer.insert(_PROCESS, inner.write(), pygit2.GIT_FILEMODE_TREE)
        return outer.write()

    def _contents(self, change: Change) -> dict[str, bytes]:
        """The bytes of every file ``change`` writes, by path; FileTooLarge for one over
        ``tasks.maxFileSize``, and a FormatError for a path tasksync never writes."""
        out: dict[str, bytes] = {}
        if change.index is not None:
            out[INDEX_PATH] = change.index.text.encode("utf-8")
        for path, text in change.files:
            _check_path(path)
            if text is not None:
                out[path] = text.encode("utf-8")
        limit = self.max_file_size()
        for path, data in out.items():
            if len(data) > limit:
                raise FileTooLarge(path, len(data), limit, writing=True)
        return out

    def _write_tree(
        self, base: pygit2.Tree | None, blobs: dict[str, pygit2.Oid | None], where: str = ""
    ) -> pygit2.Oid | None:
        """Write ``base`` with ``blobs`` put in (None removes); None when it ends up empty.
        ``where`` is the directory ``base`` is at on the ref, for errors."""
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
                if existing_file is not None and existing_file.filemode not in FILE_MODES:
                    raise _not_a_file(where + head, existing_file.filemode)
                builder.insert(head, oid, pygit2.GIT_FILEMODE_BLOB)
        for name, inner in groups.items():
            existing = builder.get(name)
            if existing is not None and existing.type_str != "tree":
                raise FormatError(where + name, "is a file on the tasks ref; not replacing it")
            found = repo.get(existing.id) if existing is not None else None
            subtree = found if isinstance(found, pygit2.Tree) else None
            oid = self._write_tree(subtree, inner, f"{where}{name}/")
            if oid is not None:
                builder.insert(name, oid, pygit2.GIT_FILEMODE_TREE)
            elif existing is not None:
                builder.remove(name)
        return builder.write() if len(builder) else None

    def set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        """Move ``ref`` from ``expected`` (None: absent) to ``new``, or raise WriteFailed.

        The comparison happens under the ref storage's own lock, through libgit2 or, for a
        reftable repository, ``git update-ref`` (see :mod:`.refs`).
        """
        self._refs.set_if_equals(ref, expected, new, message)

    def add_if_new(self, ref: str, new: str, message: str) -> None:
        """Create ``ref`` at ``new`` only if it does not exist, or raise WriteFailed."""
        self.set_if_equals(ref, None, new, message)

    def ref_lock_path(self, ref: str) -> Path:
        """The lock file that, left by a killed process, blocks every move of ``ref``: its
        ``.lock`` beside it, or ``reftable/tables.list.lock`` in a reftable repository."""
        return self._refs.lock_path(ref)

    #: Whether :meth:`fsync_writes` was called on this handle.
    fsyncs = False

    def fsync_writes(self) -> None:
        """From now on, every object and ref this handle writes is on the disk before the
        write returns (``tasks.fsync``); other repositories open in the process are not
        affected.

        Objects go through one more loose-object backend, ranked above libgit2's own so every
        write reaches it, that fsyncs each object file and its directory before linking it
        into place; refs through a ref database that fsyncs (see ``Refs.fsync_writes``).
        """
        if self.fsyncs:
            return
        objects = self.location.common_dir / "objects"
        try:
            backend = pygit2.OdbBackendLoose(str(objects), -1, True)  # default level, fsync
            self._repo.odb.add_backend(backend, _FSYNC_PRIORITY)
            self._refs.fsync_writes()
        except (pygit2.GitError, OSError, ValueError) as error:
            raise StoreError(
                "turning on fsync (tasks.fsync)",
                str(error),
                "check `git fsck`, or turn it off with `git config tasks.fsync false`",
            ) from None
        self.fsyncs = True

    def ignored(self, path: str) -> bool:
        """Whether git ignores ``path`` (relative to the worktree top) in this worktree."""
        try:
            return bool(self._repo.path_is_ignored(path))
        except (pygit2.GitError, OSError, ValueError):
            return False

    def has_reflog(self, ref: str) -> bool:
        return self._refs.has_reflog(ref)

    def ensure_reflog(self, ref: str) -> None:
        """Make git and libgit2 log every later update of ``ref`` (an empty reflog)."""
        self._refs.ensure_reflog(ref)


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
