"""The task files of a worktree and of its branch history, for ``migrate``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pygit2

from ..errors import FileTooLarge, FormatError, StoreError, quoted
from ..identity import Identity, Signatures
from ..markdown import INDEX_PATH, SPEC_DIR
from ._base import TaskFiles, blob_bytes, tree_entry
from .writing import _signature, _Writing


class _Worktree(_Writing):
    """The task files of a worktree and of its branch history, for ``migrate``."""

    # -- in-tree task files, for migrate ---------------------------------------------------------

    def head_commit(self) -> str | None:
        """The commit HEAD of this worktree (or bare repository) is at; None before the first."""
        return self._refs.head_commit()

    def is_shallow(self) -> bool:
        """Whether this is a shallow clone (its history stops at a boundary)."""
        return (self.location.common_dir / "shallow").is_file()

    def author(self, commit_id: str) -> Identity:
        """Who wrote ``commit_id``, and when, as the commit records it."""
        author = self._commit(commit_id).author
        return Identity(author.name, author.email, (author.time, author.offset))

    def blob_bytes(self, blob_id: str, path: str) -> bytes:
        """The contents of a blob (``path`` names it in errors), if within the size limit."""
        self._check_size(blob_id, path)
        blob = self._get(blob_id, path)
        if not isinstance(blob, pygit2.Blob):
            raise FormatError(path, "is not a file", oid=blob_id)
        return blob_bytes(blob)

    def task_files(self, commit_id: str, previous: TaskFiles | None = None) -> TaskFiles:
        """The in-tree task files of a commit of the project. ``previous``, the files of
        another commit, saves listing ``process/tasks/`` again when its tree is the same."""
        tree = self._tree(self._commit(commit_id), commit_id)
        index = _plain_blob(tree, INDEX_PATH)
        try:
            entry = tree[SPEC_DIR]
        except (KeyError, ValueError):
            return TaskFiles(index, (), None, True, ())
        except pygit2.GitError as error:
            raise FormatError(SPEC_DIR, f"cannot be read ({error})", oid=commit_id) from None
        if entry.filemode != pygit2.GIT_FILEMODE_TREE:
            return TaskFiles(index, (), None, False, (SPEC_DIR,))
        tree_id = str(entry.id)
        if previous is not None and previous.tree == tree_id:
            return previous._replace(tasks_md=index)
        specs: list[tuple[str, str]] = []
        left_out: list[str] = []
        reusable = self._list_specs(entry.id, SPEC_DIR, specs, left_out)
        return TaskFiles(index, tuple(sorted(specs)), tree_id, reusable, tuple(sorted(left_out)))

    def _list_specs(
        self, tree_id: pygit2.Oid, prefix: str, specs: list[tuple[str, str]], left_out: list[str]
    ) -> bool:
        """Collect the spec files under one tree; whether it holds nothing else."""
        tree = self._get(tree_id, prefix)
        if not isinstance(tree, pygit2.Tree):
            raise FormatError(prefix, "is not a directory", oid=str(tree_id))
        reusable = True
        for item in tree:
            path = f"{prefix}/{item.name}"
            mode = item.filemode
            if mode == pygit2.GIT_FILEMODE_TREE:
                reusable = self._list_specs(item.id, path, specs, left_out) and reusable
            elif mode in _FILE_MODES and path.endswith(".md"):
                specs.append((path, str(item.id)))
                reusable = reusable and mode == pygit2.GIT_FILEMODE_BLOB
            else:
                left_out.append(path)
                reusable = False
        return reusable

    def worktree_task_files(self) -> tuple[TaskFiles, dict[str, bytes]]:
        """The task files in this worktree as git would commit them (its filters applied, such
        as line-ending conversion), and their contents by blob id. Writes nothing; untracked
        files git ignores are not task files; symlinks, other files and directories holding a
        ``.git`` (submodules, nested repositories) under process/tasks/ are left out. A file
        outside a sparse checkout is taken as the index holds it, as git would commit it.
        """
        top = self.location.workdir
        if top is None:
            raise ValueError("a bare repository has no working tree")
        data: dict[str, bytes] = {}
        index_file = top / INDEX_PATH
        index = None
        if index_file.is_file() and not index_file.is_symlink():
            index = self._worktree_blob(INDEX_PATH, data)
        specs: list[tuple[str, str]] = []
        left_out: list[str] = []
        root = top / SPEC_DIR
        if root.is_symlink() or (root.exists() and not root.is_dir()) or _holds_git(root):
            left_out.append(SPEC_DIR)
        elif root.is_dir():
            self._walk_specs(top, data, specs, left_out)
        if self.config_bool("core.sparseCheckout", default=False):
            sparse = self._outside_sparse_checkout(top)
            if index is None and not os.path.lexists(index_file):
                index = sparse.get(INDEX_PATH)
            found = {path for path, _ in specs}
            skipped = tuple(f"{path}/" for path in left_out)
            for path, blob_id in sorted(sparse.items()):
                if not path.startswith(SPEC_DIR + "/") or path in found:
                    continue
                if path.startswith(skipped) or os.path.lexists(top / path):
                    continue
                if path.endswith(".md") and blob_id is not None:
                    specs.append((path, blob_id))
                else:
                    left_out.append(path)
        files = TaskFiles(index, tuple(sorted(specs)), None, False, tuple(sorted(left_out)))
        return files, data

    def _walk_specs(
        self, top: Path, data: dict[str, bytes], specs: list[tuple[str, str]], left_out: list[str]
    ) -> None:
        """Collect the spec files under the worktree's process/tasks/ and what is left out."""
        try:
            tracked = self._repo.index
        except (pygit2.GitError, OSError, ValueError):
            tracked = None
        for directory, dirs, names in os.walk(top / SPEC_DIR):
            relative = Path(directory).relative_to(top).as_posix()
            for name in sorted(dirs):
                full = Path(directory) / name
                if full.is_symlink() or not _utf8_name(name) or _holds_git(full):
                    left_out.append(f"{relative}/{name}")
                    dirs.remove(name)
            for name in names:
                path = f"{relative}/{name}"
                full = Path(directory) / name
                if self._ignores(path) and (tracked is None or path not in tracked):
                    continue
                plain = full.is_file() and not full.is_symlink()
                if plain and name.endswith(".md") and _utf8_name(name):
                    specs.append((path, self._worktree_blob(path, data)))
                else:
                    left_out.append(path)

    def _outside_sparse_checkout(self, top: Path) -> dict[str, str | None]:
        """The index entries under process/ that a sparse checkout keeps out of the worktree
        (git's skip-worktree bit, which libgit2 does not show): path -> blob id (None for
        what is not a plain file)."""
        import subprocess  # only sparse checkouts get here: other commands start without it

        try:
            listed = subprocess.run(
                ["git", "ls-files", "-s", "-t", "-z", "--", INDEX_PATH, SPEC_DIR],
                cwd=top,
                capture_output=True,
                check=True,
            ).stdout
        except subprocess.CalledProcessError as error:
            detail = error.stderr.decode("utf-8", "replace").strip()
            raise StoreError("listing the index", detail, "check `git status`") from None
        except OSError as error:
            raise StoreError(
                "running `git ls-files`", str(error), "check that git is installed"
            ) from None
        out: dict[str, str | None] = {}
        for record in listed.split(b"\0"):
            head, _, raw_path = record.partition(b"\t")
            fields = head.split()
            if len(fields) != 4 or fields[0] != b"S":
                continue
            path = raw_path.decode("utf-8", "surrogateescape")
            regular = fields[1] in (b"100644", b"100755") and fields[3] == b"0"
            out[path] = fields[2].decode("ascii") if regular else None
        return out

    def in_index(self, paths: Iterable[str]) -> frozenset[str]:
        """Which of these worktree paths this worktree's index holds (tracked or staged)."""
        try:
            index = self._repo.index
            return frozenset(path for path in paths if path in index)
        except (pygit2.GitError, OSError, ValueError) as error:
            raise StoreError("reading the index", str(error), "check `git status`") from None

    def _ignores(self, path: str) -> bool:
        try:
            return bool(self._repo.path_is_ignored(path))
        except (pygit2.GitError, ValueError):
            return False

    def _worktree_blob(self, path: str, data: dict[str, bytes]) -> str:
        top = self.location.workdir
        assert top is not None  # noqa: S101 - called for worktrees only
        try:
            size = (top / path).stat().st_size
        except OSError:
            size = 0  # read below, which says what is wrong
        if size > self.max_file_size():
            raise FileTooLarge(path, size, self.max_file_size())
        try:
            raw = (top / path).read_bytes()
            filters = self._repo.load_filter_list(path)
            clean = raw if filters is None else bytes(filters.apply_to_buffer(raw))
        except (OSError, pygit2.GitError, ValueError) as error:
            raise StoreError(
                f"reading {quoted(path)}", str(error), "check that the file is readable"
            ) from None
        oid = str(pygit2.hash(clean))
        data[oid] = clean
        return oid

    def write_import(
        self,
        parent: str | None,
        files: TaskFiles,
        message: str,
        *,
        source: _Worktree,
        data: dict[str, bytes],
        signatures: Signatures | None = None,
        origin: str | None = None,
    ) -> str:
        """Write one imported state as a commit on ``parent`` (None: a root commit) whose tree
        holds only ``files``, authored as ``signatures`` say (a fixed date each) or, for the
        state of ``origin`` (a commit of ``source``), with that commit's own author and
        committer, dates included, as recorded (an empty email too): two repositories importing
        one commit onto one parent write the same commit.

        Blob contents come from ``data`` (a working tree's) or from ``source``, the repository
        the files were read in, copied when this one lacks them; a reusable ``process/tasks``
        tree is taken as it is. Nothing points at the commit yet.
        """
        if files.tasks_md is None:
            raise ValueError("an imported state needs a process/tasks.md")
        try:
            return self._write_import(
                parent, files, message, source=source, data=data, by=origin or signatures
            )
        except (pygit2.GitError, OSError, KeyError, ValueError, OverflowError) as error:
            raise StoreError(
                "writing an imported state", str(error), "check the repository with `git fsck`"
            ) from None

    def _write_import(
        self,
        parent: str | None,
        files: TaskFiles,
        message: str,
        *,
        source: _Worktree,
        data: dict[str, bytes],
        by: Signatures | str | None,
    ) -> str:
        repo = self._repo

        def blob(blob_id: str, path: str) -> pygit2.Oid:
            oid = pygit2.Oid(hex=blob_id)
            if oid in repo:
                return oid
            if blob_id in data:
                return repo.create_blob(data[blob_id])
            return repo.create_blob(source.blob_bytes(blob_id, path))

        assert files.tasks_md is not None  # noqa: S101 - checked by write_import
        process = repo.TreeBuilder()
        process.insert("tasks.md", blob(files.tasks_md, INDEX_PATH), pygit2.GIT_FILEMODE_BLOB)
        name = SPEC_DIR.rsplit("/", 1)[1]
        if files.tree is not None and files.reusable and pygit2.Oid(hex=files.tree) in repo:
            process.insert(name, pygit2.Oid(hex=files.tree), pygit2.GIT_FILEMODE_TREE)
        elif files.specs:
            inner: dict[str, pygit2.Oid | None] = {
                path[len(SPEC_DIR) + 1 :]: blob(oid, path) for path, oid in files.specs
            }
            tasks = self._write_tree(None, inner)
            if tasks is not None:
                process.insert(name, tasks, pygit2.GIT_FILEMODE_TREE)
        root = repo.TreeBuilder()
        root.insert(INDEX_PATH.split("/", 1)[0], process.write(), pygit2.GIT_FILEMODE_TREE)
        if isinstance(by, str):
            original = source._commit(by)
            author, committer = original.author, original.committer
        elif by is not None:
            now = by.committer.stamp()
            author, committer = _signature(by.author, now), _signature(by.committer, now)
        else:
            raise ValueError("an imported state needs signatures or an origin commit")
        parents = [] if parent is None else [pygit2.Oid(hex=parent)]
        return str(repo.create_commit(None, author, committer, message, root.write(), parents))


_FILE_MODES = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE)


def _plain_blob(tree: pygit2.Tree, path: str) -> str | None:
    """The blob id of a file (not a symlink or submodule) at ``path``, or None."""
    entry = tree_entry(tree, path)
    return None if entry is None or entry.filemode not in _FILE_MODES else str(entry.id)


def _holds_git(directory: Path) -> bool:
    """Whether a directory is the top of a repository of its own (a submodule's ``.git`` is a
    file, a nested clone's a directory)."""
    return os.path.lexists(directory / ".git")


def _utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
