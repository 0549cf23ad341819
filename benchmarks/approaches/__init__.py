"""Small prototypes of alternative designs for shared task state, for ``bench_approaches.py``.

Every design keeps the same ``process/tasks.md`` content (one line per task, as
``bench_status_set.layout`` builds it) and offers the same operation, setting one task's
checkbox character. A design is used in three steps: ``setup`` once builds its shared state
under a directory, ``open`` gives a writer its :class:`Backend` (in any process, any number of
times), and ``final`` reads the state the design considers authoritative, as tasks.md bytes, for
the checker. ``stop`` ends whatever ``setup`` started. ``reader`` gives another workspace's
reader (in another process) for the visibility measurement, one per name in ``readers``. The
prototypes are faithful to their
design's mechanism (what is written, what is locked, which process owns what) and nothing more:
no error messages for users, no recovery.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bench_status_set import Layout

PACKAGE_DIR = Path(__file__).resolve().parent

# key -> (module, class name): imported on first use, so a writer process loads only its design.
DESIGNS: dict[str, tuple[str, str]] = {
    "status-quo": ("approaches.status_quo", "StatusQuo"),
    "A-server": ("approaches.server", "Server"),
    "B-clone-push": ("approaches.clone_push", "ClonePush"),
    "B-clone-push-nolock": ("approaches.clone_push", "ClonePushNoLock"),
    "C-event-log": ("approaches.event_log", "EventLog"),
    "D-sqlite-wal": ("approaches.sqlite_wal", "SqliteWal"),
    "E-filelock-rename": ("approaches.filelock_rename", "FileLockRename"),
    "tasksync": ("approaches.tasksync_store", "Tasksync"),
    "tasksync-nolock": ("approaches.tasksync_store", "TasksyncNoLock"),
    "tasksync-fsync": ("approaches.tasksync_store", "TasksyncFsync"),
}


class Backend(Protocol):
    """One writer's handle on a design's shared state."""

    def set_status(self, task: int, char: str) -> None:
        """Set the checkbox character of task ``task``; return only once it is stored."""

    def read(self) -> bytes:
        """tasks.md as this writer sees it now."""

    def close(self) -> None:
        """Release what the handle holds."""


class Reader(Protocol):
    """A reader in another workspace, waiting to see one write."""

    def arm(self, task: int, char: str) -> None:
        """Get ready to see the next write (called before it starts)."""

    def wait_for(self, task: int, char: str, timeout: float) -> int | None:
        """The monotonic clock (ns) when this reader first saw task ``task``'s checkbox be
        ``char``; None when it did not within ``timeout`` seconds."""

    def close(self) -> None:
        """Release what the reader holds."""


class PollingReader:
    """A reader that looks again and again, as fast as it can (no pause between looks)."""

    def __init__(self, look: Callable[[int], str | None], close: Callable[[], None]) -> None:
        self._look = look  # the checkbox of a task as the reader sees it now
        self._close = close
        self._stale = False

    def arm(self, task: int, char: str) -> None:
        # Every write changes the checkbox: a reader that sees the new one before the write is
        # behind (it missed the write before), and cannot tell this write apart.
        self._stale = self._look(task) == char

    def wait_for(self, task: int, char: str, timeout: float) -> int | None:
        if self._stale:
            return None
        deadline = time.monotonic() + timeout
        while True:
            if self._look(task) == char:
                return time.monotonic_ns()
            if time.monotonic() > deadline:
                return None

    def close(self) -> None:
        self._close()


class Design:
    """A design: how its shared state is built, opened by a writer, read back and stopped."""

    key = ""
    #: The readers of the visibility measurement: names for ``reader``, the first the default.
    readers: tuple[str, ...] = ("read() loop",)

    def setup(self, root: Path, lay: Layout) -> None:
        raise NotImplementedError

    def open(self, root: Path) -> Backend:
        raise NotImplementedError

    def final(self, root: Path) -> bytes:
        raise NotImplementedError

    def stop(self, root: Path) -> None:
        """End what ``setup`` started (nothing, unless the design runs a process)."""

    #: The configurations of the disk measurement; the first is the design as set up.
    disk_variants: tuple[str, ...] = ("as set up",)

    def for_disk(self, root: Path, variant: str) -> None:
        """Configure the store set up in ``root`` as ``variant`` of :attr:`disk_variants`."""

    def settle(self, root: Path) -> None:
        """Wait until what the design does in the background after writes (if anything) ends."""

    def audit(self, root: Path, acknowledged: list[int]) -> dict[str, int] | None:
        """What the design's history says about the acknowledged operations, if it keeps one."""
        return None

    def reader(self, root: Path, variant: str) -> Reader:
        """A reader in another workspace: by default, another writer's ``read()`` in a loop."""
        backend = self.open(root)
        return PollingReader(lambda task: checkbox_at(backend.read(), task), backend.close)


def wait_for_gc(git_dir: Path, timeout: float = 600.0) -> None:
    """Wait until no background ``git gc`` holds the repository at ``git_dir``."""
    deadline = time.monotonic() + timeout
    while (git_dir / "gc.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def design(key: str) -> Design:
    module_name, class_name = DESIGNS[key]
    cls = getattr(importlib.import_module(module_name), class_name)
    made = cls()
    assert isinstance(made, Design)
    made.key = key
    return made


def child_env() -> dict[str, str]:
    """The environment of a process that imports this package (a writer, the server)."""
    env = dict(os.environ)
    paths = [str(PACKAGE_DIR.parent), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def python() -> str:
    return sys.executable


def task_marker(task: int) -> bytes:
    return f"[#{task:03d}](".encode()


def checkbox_offset(text: bytes, task: int) -> int:
    """Byte offset of task ``task``'s checkbox character: its line starts ``- [``."""
    at = text.find(task_marker(task))
    if at < 0:
        raise KeyError(f"task #{task:03d} is not in tasks.md")
    start = text.rfind(b"\n", 0, at) + 1
    if text[start : start + 3] != b"- [":
        raise ValueError(f"the line of task #{task:03d} is not a task line")
    return start + 3


def checkbox_at(text: bytes, task: int) -> str | None:
    """Task ``task``'s checkbox character in ``text``, or None when its line is gone."""
    try:
        return chr(text[checkbox_offset(text, task)])
    except (KeyError, ValueError, IndexError):
        return None


def edit(text: bytes, task: int, char: str) -> bytes:
    """tasks.md with task ``task``'s checkbox set to ``char`` (one ASCII character)."""
    at = checkbox_offset(text, task)
    return text[:at] + char.encode("ascii") + text[at + 1 :]


def checkbox_offsets(text: bytes) -> dict[int, int]:
    """Task number -> offset of its checkbox, for every task line (``- [c] … [#NNN](…)``)."""
    out: dict[int, int] = {}
    start = 0
    while start < len(text):
        end = text.find(b"\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end]
        marker = line.find(b"[#")
        if line.startswith(b"- [") and marker > 0:
            digits = line[marker + 2 : line.find(b"]", marker)]
            if digits.isdigit():
                out[int(digits)] = start + 3
        start = end
    return out


def git(cwd: Path, *args: str) -> bytes:
    """Run git in ``cwd``; its standard output. Raises GitFailed when git fails."""
    import subprocess

    done = subprocess.run(["git", *args], cwd=cwd, check=False, capture_output=True)
    if done.returncode != 0:
        raise GitFailed(args, done.returncode, done.stderr.decode(errors="replace").strip())
    return done.stdout


class GitFailed(Exception):
    """A git command a prototype ran failed: what a writer is told when its operation failed."""

    def __init__(self, args: tuple[str, ...], code: int, stderr: str) -> None:
        super().__init__(f"git {args[0]} exited with {code}: {stderr}")


def commit_message(task: int, char: str) -> str:
    return f"#{task:03d}: checkbox [{char}]"
