"""The writers' kernel lock: hand-over to a blocked waiter, deadlines, interrupts."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

from tasksync.lock import KernelLock, LockTimeout

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock(2) is POSIX")


class _Interrupted(Exception):
    pass


@contextmanager
def held(path: Path) -> Iterator[int]:
    """The lock held through a descriptor of this test's own."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def free(path: Path) -> bool:
    """Whether the lock can be taken right now (taken and dropped at once)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def eventually(condition: object, seconds: float = 5.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


def descriptors_on(path: Path) -> int:
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        try:
            if entry.readlink() == path:
                count += 1
        except OSError:
            continue
    return count


def test_uncontended_lock_is_held_until_exit(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    with KernelLock(path, time.monotonic() + 5):
        assert not free(path)
    assert free(path)


def test_missing_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "tasksync" / "writer.lock"
    with KernelLock(path, time.monotonic() + 5):
        assert not free(path)
    assert path.is_file()


def test_a_blocked_waiter_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    entered = threading.Event()

    def wait() -> None:
        with KernelLock(path, time.monotonic() + 30):
            entered.set()

    with held(path):
        waiter = threading.Thread(target=wait)
        waiter.start()
        assert not entered.wait(0.2)  # blocked while the lock is held
        released = time.monotonic()
    assert entered.wait(10)
    waiter.join(10)
    # Handed over by the kernel, not found by a poll: well under a second even on a busy machine.
    assert time.monotonic() - released < 1.0
    assert free(path)


def test_a_deadline_raises_and_the_abandoned_wait_never_keeps_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    with held(path):
        started = time.monotonic()
        with pytest.raises(LockTimeout), KernelLock(path, started + 0.2):
            pytest.fail("entered a held lock")  # pragma: no cover
        assert 0.15 < time.monotonic() - started < 5
    # The waiter's thread gets the lock now, and drops it at once.
    assert eventually(lambda: free(path))
    with KernelLock(path, time.monotonic() + 5):
        assert not free(path)


def test_a_passed_deadline_raises_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    with held(path), pytest.raises(LockTimeout), KernelLock(path, time.monotonic() - 1):
        pytest.fail("entered a held lock")  # pragma: no cover
    assert free(path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_an_interrupted_wait_leaves_no_descriptor_and_no_lock(tmp_path: Path) -> None:
    path = tmp_path / "refs%tasks%main.lock"

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with held(path):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            with pytest.raises(_Interrupted), KernelLock(path, time.monotonic() + 30):
                pytest.fail("entered a held lock")  # pragma: no cover
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # Once the holder let go, the abandoned wait took the lock and closed its descriptor.
    assert eventually(lambda: descriptors_on(path) == 0)
    assert free(path)


def test_waiters_are_served_in_turn_not_starved(tmp_path: Path) -> None:
    # One thread takes the lock back to back; another waits once. With waiters that polled,
    # the busy thread re-took the lock whenever the waiter slept; blocked in the kernel, the
    # waiter is handed the lock at a release.
    path = tmp_path / "writer.lock"
    stop = threading.Event()
    rounds = 0

    def busy() -> None:
        nonlocal rounds
        while not stop.is_set():
            with KernelLock(path, time.monotonic() + 30):
                time.sleep(0.002)
                rounds += 1

    runner = threading.Thread(target=busy)
    runner.start()
    try:
        assert eventually(lambda: rounds > 3)
        before = rounds
        with KernelLock(path, time.monotonic() + 10):
            waited_rounds = rounds - before
    finally:
        stop.set()
        runner.join(10)
    assert waited_rounds < 50


def test_a_filesystem_without_locks_goes_on_unserialized(tmp_path: Path) -> None:
    # A directory that cannot hold the lock file: entering does nothing, and the caller goes on.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with KernelLock(blocker / "writer.lock", time.monotonic() + 1):
        pass
