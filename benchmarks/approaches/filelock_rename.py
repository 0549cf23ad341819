"""E: tasks.md in the working tree, written under a ``filelock`` lock by writing a temporary
file next to it and renaming it over the old one (readers see the old or the new file, never a
mix). The watcher that would tell other workspaces about changes is not part of the prototype."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from approaches import Backend, Design, edit

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


class FileLockRename(Design):
    def setup(self, root: Path, lay: Layout) -> None:
        (root / "tasks.md").write_bytes(lay.index)

    def open(self, root: Path) -> Backend:
        return LockedFile(root)

    def final(self, root: Path) -> bytes:
        return (root / "tasks.md").read_bytes()
