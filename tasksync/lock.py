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


class LockTimeout(Exception):
    """The lock was not had before the deadline."""


class _Waiter:
    """A daemon thread blocked in ``flock(LOCK_EX)`` on a descriptor.

    ``flock`` has no timeout and cannot be interrupted from another thread, so a waiter that
    gives up (its deadline passed, or an exception such as KeyboardInterrupt reached it) leaves
    the descriptor to the thread, which closes it, dropping the lock, the moment the kernel
    grants it. An abandoned wait therefore never holds the lock for more than an instant.
    """

    def __init__(self, fd: int, fcntl: ModuleType) -> None:
        import threading

        self._fd = fd
        self._fcntl = fcntl
        self._granted = threading.Event()
        self._guard = threading.Lock()
        self._abandoned = False
        self._failed = False
        threading.Thread(target=self._run, name="tasksync-lock-wait", daemon=True).start()

    def _run(self) -> None:
        try:
            self._fcntl.flock(self._fd, self._fcntl.LOCK_EX)
        except OSError:
            self._failed = True
        with self._guard:
            if self._abandoned:
                os.close(self._fd)
            else:
                self._granted.set()

    def wait(self, deadline: float) -> bool:
        """True once the lock is held, False when locks failed here; raises LockTimeout at the
        deadline. On False the caller still owns the descriptor; on any exception it does not."""
        try:
            granted = self._granted.wait(max(0.0, deadline - time.monotonic()))
        except BaseException:
            if not self._give_up():  # granted as the exception came: drop it here
                os.close(self._fd)
            raise
        if granted or not self._give_up():
            return not self._failed
        raise LockTimeout

    def _give_up(self) -> bool:
        """Leave the descriptor to the thread; False when the lock was granted meanwhile."""
        with self._guard:
            if self._granted.is_set():
                return False
            self._abandoned = True
            return True


class KernelLock:
    """An exclusive, advisory, per-file-description lock that waits until a deadline.

    When the lock file cannot be created or locked at all (a read-only directory, a
    filesystem without locks), entering does nothing: the caller goes on unserialized.
    """

    def __init__(self, path: Path, deadline: float) -> None:
        self.path = path
        self.deadline = deadline
        self._release: object | None = None

    @property
    def held(self) -> bool:
        """Whether the lock is held now (entering goes on without it where locks fail)."""
        return self._release is not None

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
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        except OSError:
            os.close(fd)  # locks unsupported here: go on without
            return
        else:
            self._release = fd
            return
        # Contended: a helper thread blocks in flock, so that the kernel hands the lock on the
        # moment it is released. Waiters that polled instead left it to whoever asked next,
        # mostly the writer that had just released it: with eight writers one waited 250 ms
        # while the median wait was nil.
        try:
            if time.monotonic() >= self.deadline:
                raise LockTimeout
            waiter = _Waiter(fd, fcntl)
        except BaseException:
            os.close(fd)
            raise
        if waiter.wait(self.deadline):  # on an exception the descriptor is the thread's
            self._release = fd
        else:
            os.close(fd)  # locks failed here after all: go on without

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
