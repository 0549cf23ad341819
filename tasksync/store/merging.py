"""Merging and history: revisions, ancestry, tree differences and line merges of specs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import pygit2

from ..errors import FormatError, StoreError
from ._base import _Base, blob_bytes


class Damage(NamedTuple):
    """An object of a tasks ref's history that is missing or cannot be read."""

    oid: str
    kind: str  # what it should be: "commit", "tree" or "blob"
    path: str  # where in its commit's tree ("" for a commit or a root tree)
    commit: str  # the commit it belongs to
    problem: str  # "missing", "unreadable" or "not a <kind>"


class _Merging(_Base):
    """Merging and history: revisions, ancestry, tree differences and line merges of specs."""

    # -- merging --------------------------------------------------------------------------------

    def resolve_commit(self, revision: str) -> str:
        """The commit a revision (a ref, a branch, an id) names; UnknownRevision when none."""
        return self._refs.resolve(revision)

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

    def check_names(self, commit: str) -> None:
        """Raise FormatError when a commit's tree holds a name no path reaches (``..``,
        ``.git``, one holding a ``/``): a merge would drop such an entry without a word."""
        for _ in self.tree_entries(commit):
            pass

    def damage(self, tip: str, depth: int) -> list[Damage]:
        """What is missing or unreadable of ``tip``: the commit, then every tree and file of
        its tree (each read in full, so a corrupt one shows), then up to ``depth`` commits of
        its first-parent chain with their root trees. Empty when all of it is there."""
        found: list[Damage] = []
        commit = self._present(tip, "commit", "", tip, found)
        if not isinstance(commit, pygit2.Commit):
            return found
        self._walk(str(commit.tree_id), "", tip, found)
        for _ in range(depth):
            if not commit.parent_ids:
                break
            parent = str(commit.parent_ids[0])
            commit = self._present(parent, "commit", "", parent, found)
            if not isinstance(commit, pygit2.Commit):
                break
            self._present(str(commit.tree_id), "tree", "", parent, found)
        return found

    def _walk(self, tree_id: str, path: str, commit: str, found: list[Damage]) -> None:
        tree = self._present(tree_id, "tree", path, commit, found)
        if not isinstance(tree, pygit2.Tree):
            return
        for entry in tree:
            inner = f"{path}/{entry.name}" if path else str(entry.name)
            if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                self._walk(str(entry.id), inner, commit, found)
            elif entry.filemode != pygit2.GIT_FILEMODE_COMMIT:  # a submodule is elsewhere
                self._present(str(entry.id), "blob", inner, commit, found)

    def _present(
        self, oid: str, kind: str, path: str, commit: str, found: list[Damage]
    ) -> pygit2.Object | None:
        """The object, read in full (libgit2 checks its hash); None, with the damage added
        to ``found``, when it is missing, unreadable or of another kind."""
        problem = "missing"
        try:
            key = pygit2.Oid(hex=oid)
            if self._repo.odb.exists(key):
                problem = "unreadable"
                if kind == "blob":  # a file over tasks.maxFileSize is not read into memory
                    found_kind, size = self._repo.odb.read_header(key)
                    if found_kind == pygit2.enums.ObjectType.BLOB and size > self.max_file_size():
                        return None
                obj = self._repo.get(key)
                if obj is not None and obj.type_str == kind:
                    return obj
                problem = f"not a {kind}" if obj is not None else "missing"
        except (pygit2.GitError, KeyError, ValueError):
            pass
        found.append(Damage(oid, kind, path, commit, problem))
        return None

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
            return blob_bytes(blob).decode("utf-8"), True
        except (pygit2.GitError, KeyError, UnicodeDecodeError) as error:
            raise StoreError(
                "merging a spec file",
                str(error),
                "merge it by hand with `git tasks edit ID --spec`",
            ) from None


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
        if _unreachable(entry.raw_name or b""):
            shown = path if path.isprintable() else repr(path)
            raise FormatError(
                shown,
                "is a name git never writes in a tree (empty, `.`, `..`, `.git` or holding "
                "a `/`): no path reaches it, so tasksync neither reads nor carries it",
            )
        kind = _KINDS.get(entry.filemode, "unknown")
        yield path, kind
        if kind == "tree" and isinstance(entry, pygit2.Tree):
            yield from _entries(entry, f"{path}/")


def _unreachable(name: bytes) -> bool:
    """Whether a tree entry's name is one that no path can name: a tree written object by
    object can hold it, git's own commands refuse to."""
    return name in (b"", b".", b"..") or b"/" in name or name.lower() == b".git"


def _blob_paths(tree: pygit2.Tree, prefix: str) -> Iterator[str]:
    for entry in tree:
        if isinstance(entry, pygit2.Tree):
            yield from _blob_paths(entry, f"{prefix}{entry.name}/")
        elif entry.type_str == "blob":
            yield f"{prefix}{entry.name}"
