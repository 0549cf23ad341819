"""E: tasks.md in the working tree, written under a ``filelock`` lock by writing a temporary
file next to it and renaming it over the old one (readers see the old or the new file, never a
mix). Another workspace's reader watches the directory with inotify (tasksync's own waker, as
``TaskStore.watch`` uses it) and reads the file each time it wakes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from approaches import Backend, Design, Reader, checkbox_at, edit

if TYPE_CHECKING:
    from bench_status_set import Layout

LOCK_TIMEOUT = 300.0


class LockedFile:
    def __init__(self, root: Path) -> None:
        self.path = root / "tasks.md"
        self.lock = FileLock(str(root / "tasks.md.lock"), timeout=LOCK_TIMEOUT)
        self.temporary = root / f".tasks.md.{os.getpid()}.{id(self)}.tmp"

    def set_status(self, task: int, char: str) -> None:
        with self.lock:
            self.temporary.write_bytes(edit(self.path.read_bytes(), task, char))
            self.temporary.replace(self.path)

    def read(self) -> bytes:
        return self.path.read_bytes()

    def close(self) -> None:
        pass


class Watcher:
    def __init__(self, root: Path) -> None:
        from tasksync.watch import _Waker  # here: a writer process does not import tasksync

        self.path = root / "tasks.md"
        self.waker = _Waker([root], inotify=True)
        if not self.waker.notified:
            raise RuntimeError("inotify is not available here")

    def arm(self, task: int, char: str) -> None:
        pass

    def wait_for(self, task: int, char: str, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            if checkbox_at(self.path.read_bytes(), task) == char:
                return time.monotonic_ns()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.waker.wait(left)  # until the directory changes (a rename lands)

    def close(self) -> None:
        self.waker.close()


class FileLockRename(Design):
    readers = ("inotify watcher",)

    def setup(self, root: Path, lay: Layout) -> None:
        (root / "tasks.md").write_bytes(lay.index)

    def open(self, root: Path) -> Backend:
        return LockedFile(root)

    def final(self, root: Path) -> bytes:
        return (root / "tasks.md").read_bytes()

    def reader(self, root: Path, variant: str) -> Reader:
        return Watcher(root)
