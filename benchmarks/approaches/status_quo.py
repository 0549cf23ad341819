"""Status quo: tasks.md in a git working tree, edited in place, then ``git add`` and
``git commit`` as processes. No locking: writers sharing the working tree read, edit and save
the file concurrently, and their commits race for git's index lock. Another session's reader
has its own worktree on its own branch: it sees a write only once it merges it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from approaches import (
    Backend,
    Design,
    PollingReader,
    Reader,
    checkbox_at,
    commit_message,
    edit,
    git,
    wait_for_gc,
)

if TYPE_CHECKING:
    from bench_status_set import Layout

INDEX_PATH = "process/tasks.md"


class WorkingTree:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.index = path / INDEX_PATH

    def set_status(self, task: int, char: str) -> None:
        self.index.write_bytes(edit(self.index.read_bytes(), task, char))
        git(self.path, "add", INDEX_PATH)
        git(self.path, "commit", "-q", "-m", commit_message(task, char))

    def read(self) -> bytes:
        return self.index.read_bytes()

    def close(self) -> None:
        pass


class StatusQuo(Design):
    readers = ("own worktree", "own worktree + git merge loop")

    def setup(self, root: Path, lay: Layout) -> None:
        from bench_status_set import build_working_tree

        build_working_tree(root / "tree", lay, 0)
        git(root / "tree", "config", "gc.auto", "0")  # no background gc racing the clean-up
        git(root / "tree", "worktree", "add", "-q", "-b", "reader", str(root / "reader"))

    def open(self, root: Path) -> Backend:
        return WorkingTree(root / "tree")

    def for_disk(self, root: Path, variant: str) -> None:
        git(
            root / "tree", "config", "--unset", "gc.auto"
        )  # git commit's own gc --auto, as users have it

    def settle(self, root: Path) -> None:
        wait_for_gc(root / "tree" / ".git")

    def final(self, root: Path) -> bytes:
        """What is committed: HEAD's tasks.md (the working tree may hold an uncommitted edit)."""
        return git(root / "tree", "show", f"HEAD:{INDEX_PATH}")

    def reader(self, root: Path, variant: str) -> Reader:
        tree = root / "reader"
        merge = variant != self.readers[0]

        def look(task: int) -> str | None:
            if merge:
                git(tree, "merge", "-q", "--ff-only", "main")
            return checkbox_at((tree / INDEX_PATH).read_bytes(), task)

        return PollingReader(look, lambda: None)
