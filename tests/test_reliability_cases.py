"""Reliability corner cases: the writers' kernel lock, stale ref locks and doctor's repair.

Each case is a way a lock could be kept forever, or a live holder's lock removed, that the
main tests of those modules (``test_lock.py``, ``test_stale_lock.py``, ``test_doctor.py``) do
not reach: an interrupt at the instant the kernel grants the lock, ``git update-ref`` working
in a worktree the repository's own directories do not name, and a repair where the writers'
lock cannot be taken.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import commit_held, git, hold_ref_lock, kill, run_main, wait_until_older
from test_lock import descriptors_on, free

from tasksync import ContentionTimeout, TaskStore
from tasksync import lock as lock_module
from tasksync.lock import KernelLock

REF = "refs/tasks/main"
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(),
    reason="live holders are found through /proc, which this platform lacks",
)
pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock(2) is POSIX")


class _Interrupted(Exception):
    pass


def tip(repo: Path) -> str:
    return git(repo, "rev-parse", REF).strip()


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    """``git update-ref --stdin`` processes a test starts; any still running at the end are
    killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            kill(proc)


def a_store(work: Path) -> TaskStore:
    """The store of ``work`` with one task, a 100 ms ``tasks.staleLockAfter`` and a 1 s cap."""
    git(work, "commit", "-q", "--allow-empty", "-m", "first")
    git(work, "config", "tasks.staleLockAfter", "100ms")
    git(work, "config", "tasks.retryTimeout", "1")
    store = TaskStore.open(work)
    store.init()
    store.create("Before")
    return store


def assert_kept_while_held(
    store: TaskStore, work: Path, lock: Path, holder: subprocess.Popen[str]
) -> None:
    """A write times out naming ``holder``, whose lock stays; its own update then lands."""
    wait_until_older(lock, 0.3)
    with pytest.raises(ContentionTimeout) as caught:
        store.create("While it is held")
    assert f"process {holder.pid} " in str(caught.value)
    assert lock.exists()
    commit_held(holder)
    assert tip(work) == git(work, "rev-parse", "HEAD").strip()


# -- the writers' kernel lock -----------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")
def test_an_interrupt_as_the_lock_is_granted_never_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait is interrupted (Ctrl-C, a signal handler raising) at the very moment the kernel
    # hands the lock to the waiting thread: the descriptor, and with it the lock, must go.
    path = tmp_path / "refs%tasks%main.lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(holder, fcntl.LOCK_EX)

    class GrantedThenInterrupted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            os.close(holder)  # the holder lets go: the kernel grants the waiting thread
            assert super().wait(10)
            raise _Interrupted  # as an interrupt arriving at that instant

    original = lock_module._Waiter.__init__

    def waiter(self: lock_module._Waiter, fd: int, fcntl_module: ModuleType) -> None:
        original(self, fd, fcntl_module)
        self._granted.__class__ = GrantedThenInterrupted  # its thread is blocked in flock

    monkeypatch.setattr(lock_module._Waiter, "__init__", waiter)
    with pytest.raises(_Interrupted), KernelLock(path, time.monotonic() + 30):
        pytest.fail("entered a lock whose wait was interrupted")  # pragma: no cover
    assert descriptors_on(path) == 0
    assert free(path)


# -- live holders the repository's own directories do not name --------------------------------


@needs_proc
def test_a_live_update_ref_in_a_separate_git_dir_worktree_keeps_its_lock(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    # `git init --separate-git-dir` (and a submodule, under .git/modules/): the worktree is
    # named only by its own `.git` file, and git runs there.
    work, git_dir = tmp_path / "work", tmp_path / "elsewhere.git"
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(git_dir), str(work))
    store = a_store(work)
    head = git(work, "rev-parse", "HEAD").strip()
    holder = hold_ref_lock(work, f"update {REF} {head} {tip(work)}")
    holders.append(holder)
    assert_kept_while_held(store, work, git_dir / "refs" / "tasks" / "main.lock", holder)


@needs_proc
def test_a_live_update_ref_in_a_worktree_added_later_keeps_its_lock(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    # A long-lived handle judged a lock once, then a worktree was added beside the repository.
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    store = a_store(work)
    head = git(work, "rev-parse", "HEAD").strip()
    lock = work / ".git" / "refs" / "tasks" / "main.lock"
    kill(hold_ref_lock(work, f"update {REF} {head} {tip(work)}"))
    wait_until_older(lock, 0.2)
    store.create("After a stale lock")  # removed as stale by this handle
    assert not lock.exists()

    linked = tmp_path / "linked"
    git(work, "worktree", "add", "-q", "--detach", str(linked))
    holder = hold_ref_lock(linked, f"update {REF} {head} {tip(work)}")
    holders.append(holder)
    assert_kept_while_held(store, work, lock, holder)


@needs_proc
def test_a_live_update_ref_given_a_relative_git_dir_keeps_its_lock(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    # GIT_DIR=../work/.git, from a directory outside the repository: relative to the
    # process's own directory, not to the judge's.
    work, beside = tmp_path / "work", tmp_path / "beside"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    beside.mkdir()
    store = a_store(work)
    head = git(work, "rev-parse", "HEAD").strip()
    holder = subprocess.Popen(
        ["git", "update-ref", "--stdin"],
        cwd=beside,
        env={**os.environ, "GIT_DIR": "../work/.git"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holders.append(holder)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"start\nupdate {REF} {head} {tip(work)}\nprepare\n")
    holder.stdin.flush()
    assert [holder.stdout.readline(), holder.stdout.readline()] == ["start: ok\n", "prepare: ok\n"]
    assert_kept_while_held(store, work, work / ".git" / "refs" / "tasks" / "main.lock", holder)


# -- doctor --repair --------------------------------------------------------------------------


def test_repair_without_the_writers_lock_removes_nothing(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Where the writers' lock cannot be taken (another user's file, a filesystem without
    # locks), writers leave a stale lock file alone, and so must --repair: a writer that can
    # take the lock may be inside its swap, in a process this one cannot see.
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    git(repo, "config", "tasks.retryTimeout", "300ms")
    store.create("Existing")
    head = git(repo, "rev-parse", "HEAD").strip()
    kill(hold_ref_lock(repo, f"update {REF} {head} {tip(repo)}"))
    lock = repo / ".git" / "refs" / "tasks" / "main.lock"
    writer_lock = repo / ".git" / "tasksync" / "refs%tasks%main.lock"
    writer_lock.unlink()
    writer_lock.mkdir()  # a path nobody can open and lock
    wait_until_older(lock, 0.3)

    with pytest.raises(ContentionTimeout, match="kernel lock could not be taken here"):
        TaskStore.open(repo).create("Blocked")
    code, out, _ = run_main(capsys, "-C", str(repo), "doctor", "--repair")
    assert code == 1
    assert lock.exists()
    [line] = out.splitlines()
    assert line.startswith(f"problem: stale lock file {lock} (")
    assert f"not removed: the writers' lock {writer_lock} cannot be taken here" in line
    assert line.endswith(f"remove it: `rm {shlex.quote(str(lock))}`")

    writer_lock.rmdir()
    code, out, _ = run_main(capsys, "-C", str(repo), "doctor", "--repair")
    assert code == 0
    assert out.startswith(f"repaired: removed the stale lock file {lock} (")
    assert not lock.exists()
