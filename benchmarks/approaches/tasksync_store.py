"""tasksync itself: ``TaskStore.set_status`` on a store in the repository's object store, every
write a commit landed with compare-and-swap; with its file lock (the default) or without it
(``git config tasks.fileLock false``, so concurrent writers only retry the compare-and-swap).
fsync is off, the default."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from approaches import Backend, Design, git
from tasksync import Status, TaskStore

if TYPE_CHECKING:
    from bench_status_set import Layout


class Handle:
    def __init__(self, path: Path) -> None:
        self.store = TaskStore.open(path)

    def set_status(self, task: int, char: str) -> None:
        status = Status.from_checkbox(char)
        if status is None:
            raise ValueError(f"{char!r} is not a status")
        self.store.set_status(task, status)

    def read(self) -> bytes:
        return self.store.index_text().encode()

    def close(self) -> None:
        pass


class Tasksync(Design):
    file_lock = True

    def setup(self, root: Path, lay: Layout) -> None:
        from bench_status_set import build_store

        build_store(root / "repo", lay)
        git(root / "repo", "config", "gc.auto", "0")
        if not self.file_lock:
            git(root / "repo", "config", "tasks.fileLock", "false")

    def open(self, root: Path) -> Backend:
        return Handle(root / "repo")

    def final(self, root: Path) -> bytes:
        return TaskStore.open(root / "repo").index_text().encode()

    def audit(self, root: Path, acknowledged: list[int]) -> dict[str, int]:
        """How often each acknowledged operation's task appears in the status commits."""
        history = TaskStore.open(root / "repo").history()
        written = Counter(
            int(task.lstrip("#"))
            for entry in history
            if entry.operation == "set-status"
            for task in entry.task_ids
        )
        wanted = Counter(acknowledged)
        return {
            "status_commits": sum(1 for entry in history if entry.operation == "set-status"),
            "acknowledged": len(acknowledged),
            "exactly_once": sum(1 for task in wanted if written[task] == 1),
            "missing": sum(1 for task in wanted if written[task] == 0),
            "repeated": sum(1 for task in wanted if written[task] > 1),
            "unacknowledged": sum(1 for task in written if task not in wanted),
        }


class TasksyncNoLock(Tasksync):
    file_lock = False
