"""tasksync itself: ``TaskStore.set_status`` on a store in the repository's object store, every
write a commit landed with compare-and-swap; with its file lock (the default) or without it
(``git config tasks.fileLock false``, so concurrent writers only retry the compare-and-swap).
fsync is off, the default, except in ``tasksync-fsync``: there ``git config tasks.fsync true``
makes every write fsync its objects, reflog and ref (only that store's: the other designs
measured in the same process write without it). Another
workspace's reader is a worktree of the repository, calling ``TaskStore.get`` in a loop or
following ``TaskStore.watch`` (woken by inotify)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from approaches import Backend, Design, PollingReader, Reader, git, wait_for_gc
from tasksync import Status, TaskStore

if TYPE_CHECKING:
    from bench_status_set import Layout


def status_of(char: str) -> Status:
    status = Status.from_checkbox(char)
    if status is None:
        raise ValueError(f"{char!r} is not a status")
    return status


class Handle:
    def __init__(self, path: Path) -> None:
        self.store = TaskStore.open(path)

    def set_status(self, task: int, char: str) -> None:
        self.store.set_status(task, status_of(char))

    def read(self) -> bytes:
        return self.store.index_text().encode()

    def close(self) -> None:
        pass


class Watcher:
    """``TaskStore.watch`` running all along: each wait takes its next events."""

    def __init__(self, path: Path) -> None:
        self.watch = TaskStore.open(path).watch()
        self.events = iter(self.watch)
        self.timer: threading.Timer | None = None

    def arm(self, task: int, char: str) -> None:
        pass

    def wait_for(self, task: int, char: str, timeout: float) -> int | None:
        self.timer = threading.Timer(timeout, self.watch.stop)  # stops the watch for good
        self.timer.start()
        try:
            wanted = status_of(char).value
            for event in self.events:
                if event.task is not None and (event.task.number, event.status) == (task, wanted):
                    return time.monotonic_ns()
            return None
        finally:
            self.timer.cancel()

    def close(self) -> None:
        self.watch.stop()


class Tasksync(Design):
    file_lock = True
    fsync = False
    readers = ("TaskStore.get loop", "TaskStore.watch (inotify)")

    def setup(self, root: Path, lay: Layout) -> None:
        from bench_status_set import build_store

        build_store(root / "repo", lay)
        git(root / "repo", "config", "gc.auto", "0")
        if not self.file_lock:
            git(root / "repo", "config", "tasks.fileLock", "false")
        if self.fsync:
            git(root / "repo", "config", "tasks.fsync", "true")
        git(root / "repo", "worktree", "add", "-q", "--detach", str(root / "reader"))

    def open(self, root: Path) -> Backend:
        return Handle(root / "repo")

    # setup turns git's gc off so that no measurement but this one packs mid-run
    disk_variants: tuple[str, ...] = (
        "packing on (the default)",
        "packing off (tasks.autoPack false)",
    )

    def for_disk(self, root: Path, variant: str) -> None:
        git(root / "repo", "config", "--unset", "gc.auto")
        if variant == self.disk_variants[1]:
            git(root / "repo", "config", "tasks.autoPack", "false")

    def settle(self, root: Path) -> None:
        wait_for_gc(root / "repo" / ".git")

    def reader(self, root: Path, variant: str) -> Reader:
        if variant == self.readers[1]:
            return Watcher(root / "reader")
        store = TaskStore.open(root / "reader")
        return PollingReader(lambda task: store.get(task).status.checkbox, lambda: None)

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
    disk_variants = ()  # the same files as tasksync's: not measured again


class TasksyncFsync(Tasksync):
    fsync = True
    disk_variants = ()  # the same files as tasksync's: not measured again
