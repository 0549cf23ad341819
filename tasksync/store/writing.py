"""Writing: blobs, trees and commits, and refs moved only by compare-and-swap."""

from __future__ import annotations

import re

import pygit2

from ..cache import PARSED
from ..errors import ConfigError, FormatError
from ..identity import Identity, Signatures
from ..markdown import INDEX_PATH, RECORDS_PATH, SPEC_DIR
from ..operations import Change
from ._base import WriteFailed, _Base

_PATH_OK = re.compile(r"[^\x00-\x1f/\\]+")


class _Writing(_Base):
    """Writing: blobs, trees and commits, and refs moved only by compare-and-swap."""

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

    def ignored(self, path: str) -> bool:
        """Whether git ignores ``path`` (relative to the worktree top) in this worktree."""
        try:
            return bool(self._repo.path_is_ignored(path))
        except (pygit2.GitError, OSError, ValueError):
            return False

    def has_reflog(self, ref: str) -> bool:
        return (self.location.common_dir / "logs" / ref).is_file()

    def ensure_reflog(self, ref: str) -> None:
        """Create an empty reflog for ``ref`` so git and libgit2 log every later update."""
        log = self.location.common_dir / "logs" / ref
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.touch(exist_ok=True)
        except OSError:
            pass  # the reflog is a convenience; the ref works without it


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
