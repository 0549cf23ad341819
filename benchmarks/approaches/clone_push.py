"""B: a clone per writer. Each operation fetches, resets hard to the shared branch, edits,
commits and pushes to one shared bare repository, all under a lock file created with
``O_EXCL`` (and removed after). Without the lock, a push that lost the race is rejected as
not a fast-forward and the writer is told the operation failed."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from approaches import Backend, Design, commit_message, edit, git, wait_for_gc

GC_AS_DEFAULT = "gc-as-default"  # present: clones keep git's automatic gc (the disk measurement)

if TYPE_CHECKING:
    from bench_status_set import Layout

INDEX_PATH = "process/tasks.md"
LOCK_TIMEOUT = 300.0  # seconds a writer waits for the lock file
_clones = itertools.count()


@contextlib.contextmanager
def lock_file(path: Path) -> Iterator[None]:
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} held for {LOCK_TIMEOUT:g} s") from None
            time.sleep(0.001)
            continue
        os.close(fd)
        break
    try:
        yield
    finally:
        path.unlink()


class Clone:
    def __init__(self, root: Path, locked: bool) -> None:
        self.lock = root / "shared.lock" if locked else None
        self.path = root / "clones" / f"{os.getpid()}-{next(_clones)}"
        self.path.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["git", "clone", "-q", str(root / "shared.git"), str(self.path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if not (root / GC_AS_DEFAULT).exists():
            git(self.path, "config", "gc.auto", "0")

    def set_status(self, task: int, char: str) -> None:
        with contextlib.nullcontext() if self.lock is None else lock_file(self.lock):
            git(self.path, "fetch", "-q", "origin")
            git(self.path, "reset", "-q", "--hard", "origin/main")
            index = self.path / INDEX_PATH
            index.write_bytes(edit(index.read_bytes(), task, char))
            git(self.path, "commit", "-q", "-a", "-m", commit_message(task, char))
            git(self.path, "push", "-q", "origin", "HEAD:main")

    def read(self) -> bytes:
        git(self.path, "fetch", "-q", "origin")
        return git(self.path, "show", f"origin/main:{INDEX_PATH}")

    def close(self) -> None:
        pass


class ClonePush(Design):
    locked = True
    readers = ("own clone + git fetch loop",)

    def setup(self, root: Path, lay: Layout) -> None:
        from bench_status_set import build_working_tree

        build_working_tree(root / "seed", lay, 0)
        git(root, "clone", "-q", "--bare", str(root / "seed"), str(root / "shared.git"))
        git(root / "shared.git", "config", "gc.auto", "0")

    def open(self, root: Path) -> Backend:
        return Clone(root, self.locked)

    def for_disk(self, root: Path, variant: str) -> None:
        git(root / "shared.git", "config", "--unset", "gc.auto")  # git's own gc --auto
        (root / GC_AS_DEFAULT).touch()

    def settle(self, root: Path) -> None:
        wait_for_gc(root / "shared.git")
        for clone in (root / "clones").glob("*"):
            wait_for_gc(clone / ".git")

    def final(self, root: Path) -> bytes:
        return git(root / "shared.git", "show", f"main:{INDEX_PATH}")


class ClonePushNoLock(ClonePush):
    locked = False
    disk_variants = ()  # the same files as B's: not measured again
