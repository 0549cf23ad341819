"""The writers' kernel file lock: the one platform adapter of tasksync.

On POSIX systems the lock is ``flock(2)`` on a file in the common git dir, taken directly
through :mod:`fcntl`: importing filelock costs more than a whole uncontended operation (about
13 ms against a ~100 ms command), and ``git tasks`` runs once per operation. Elsewhere
filelock provides the same semantics. Either way the kernel drops the lock when its holder dies,
and the lock is advisory: the compare-and-swap on the ref is what keeps updates.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType, TracebackType

_FIRST_POLL = 0.0005
_LAST_POLL = 0.005


class LockTimeout(Exception):
    """The lock was not had before the deadline."""


class KernelLock:
    """An exclusive, advisory, per-file-description lock that waits until a deadline.

    When the lock file cannot be created or locked at all (a read-only directory, a
    filesystem without locks), entering does nothing: the caller goes on unserialized.
    """

    def __init__(self, path: Path, deadline: float) -> None:
        self.path = path
        self.deadline = deadline
        self._release: object | None = None

    def __enter__(self) -> KernelLock:
        if os.name == "posix":
            self._enter_posix()
        else:  # pragma: no cover - exercised on Windows only
            self._enter_portable()
        return self

    def _enter_posix(self) -> None:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:
                return
        except OSError:
            return
        try:
            held = self._wait(fd, fcntl)
        except BaseException:  # a timeout, or an interrupt while waiting: never leak the fd
            os.close(fd)
            raise
        if held:
            self._release = fd
        else:
            os.close(fd)  # locks unsupported here: go on without

    def _wait(self, fd: int, fcntl: ModuleType) -> bool:
        """Poll for the lock until the deadline; False when this filesystem has no locks."""
        poll = _FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    raise LockTimeout from None
                time.sleep(min(poll, remaining))
                poll = min(poll * 2, _LAST_POLL)
                continue
            except OSError:
                return False
            return True

    def _enter_portable(self) -> None:  # pragma: no cover - exercised on Windows only
        import filelock

        lock = filelock.FileLock(str(self.path), is_singleton=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=max(0.0, self.deadline - time.monotonic()), poll_interval=0.001)
        except filelock.Timeout:
            raise LockTimeout from None
        except OSError:
            return
        self._release = lock

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        held, self._release = self._release, None
        if isinstance(held, int):
            os.close(held)  # closing the only descriptor drops the flock
        elif held is not None:  # pragma: no cover - Windows
            import filelock

            if isinstance(held, filelock.BaseFileLock):
                held.release()
