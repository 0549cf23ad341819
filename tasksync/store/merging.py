"""Merging and history: revisions, ancestry, tree differences and line merges of specs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pygit2

from ..errors import FormatError, StoreError, UnknownRevision
from ._base import _Base


class _Merging(_Base):
    """Merging and history: revisions, ancestry, tree differences and line merges of specs."""

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
