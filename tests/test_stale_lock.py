"""Stale ref locks: left by a real killed holder, removed by the next writer, never while live.

A ``git update-ref --stdin`` told ``start``, ``update`` (or ``create``) and ``prepare`` holds
git's lock on the ref and waits for more input: killed there, it leaves the lock file exactly as
a crashed writer does; left alive, it is a live holder a writer must never disturb.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    commit_held,
    git,
    hold_ref_lock,
    in_threads,
    kill,
    run_main,
    update_ref_stdin,
    wait_until_older,
)

from tasksync import ConfigError, ContentionTimeout, TaskStore
from tasksync.stale import RECOVERY_LOG, LockFile, judge, look, remove, repository_roots

REF = "refs/tasks/main"
HAS_PROC = Path("/proc/self/fd").is_dir()
needs_proc = pytest.mark.skipif(
    not HAS_PROC, reason="live holders are found through /proc, which this platform lacks"
)


# -- helpers ----------------------------------------------------------------------------------


def common_dir(repo: Path) -> Path:
    return repo / ".git"


def ref_lock(repo: Path) -> Path:
    return common_dir(repo) / "refs" / "tasks" / "main.lock"


def tip(repo: Path) -> str | None:
    return git(repo, "rev-parse", "-q", "--verify", REF, check=False).strip() or None


def log_dir(repo: Path) -> Path:
    return common_dir(repo) / "tasksync"


def recovery_lines(repo: Path) -> list[str]:
    path = log_dir(repo) / RECOVERY_LOG
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture
def quiet_logger() -> Iterator[logging.Logger]:
    """The ``tasksync`` logger without handlers (as a library user's process starts), restored
    afterwards; pytest's caplog still sees its records through the root logger."""
    logger = logging.getLogger("tasksync")
    saved = logger.handlers[:]
    logger.handlers = []
    yield logger
    logger.handlers = saved


# -- a real killed holder ---------------------------------------------------------------------


def test_a_killed_update_ref_leaves_a_lock_the_next_write_removes(
    store: TaskStore, repo: Path, caplog: pytest.LogCaptureFixture, quiet_logger: logging.Logger
) -> None:
    # Default settings: tasks.staleLockAfter 2 s, tasks.retryTimeout 10 s.
    store.create("Before the crash")
    before = tip(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    holder = hold_ref_lock(repo, f"update {REF} {head} {before}")
    kill(holder)
    lock = ref_lock(repo)
    assert lock.exists()  # git never removes it
    killed = lock.stat()

    with caplog.at_level(logging.WARNING, logger="tasksync"):
        task = TaskStore.open(repo).create("After the crash")

    assert not lock.exists()
    assert tip(repo) not in (before, head)  # the killed update never landed; this one did
    assert [t.title for t in store.list()] == ["Before the crash", "After the crash"]
    assert str(task.id) == "#002"
    warnings = [r.getMessage() for r in caplog.records if r.name == "tasksync"]
    assert len(warnings) == 1
    assert f"removed the stale lock file {lock}" in warnings[0]
    lines = recovery_lines(repo)
    assert len(lines) == 1
    found = re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ pid=(\d+) removed (.+) age=([\d.]+)s size=(\d+)",
        lines[0],
    )
    assert found is not None
    assert int(found.group(1)) == os.getpid()
    assert found.group(2) == str(lock)
    assert float(found.group(3)) >= 2.0  # never removed before the threshold
    assert int(found.group(4)) == killed.st_size == len(head) + 1  # git wrote the value
    assert not list(lock.parent.glob("*.stale-*"))  # no quarantined file left behind


def test_a_killed_create_leaves_a_lock_init_removes(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    head = git(repo, "rev-parse", "HEAD").strip()
    kill(hold_ref_lock(repo, f"create {REF} {head}"))
    lock = ref_lock(repo)
    assert lock.exists()
    store = TaskStore.open(repo)
    with caplog.at_level(logging.WARNING, logger="tasksync"):
        assert store.init() is True
    assert not lock.exists()
    assert tip(repo) == store.last_commit != head
    assert any("stale lock file" in r.getMessage() for r in caplog.records)


def test_the_cli_shows_the_removal_as_one_warning_line(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str], quiet_logger: logging.Logger
) -> None:
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    store.create("Existing")
    head = git(repo, "rev-parse", "HEAD").strip()
    kill(hold_ref_lock(repo, f"update {REF} {head} {tip(repo)}"))

    code, out, err = run_main(capsys, "-C", str(repo), "status", "set", "1", "DONE")

    assert code == 0
    assert out == "#001 DONE\n"
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: removed the stale lock file {ref_lock(repo)} (")


def test_the_library_only_logs(
    store: TaskStore,
    repo: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    quiet_logger: logging.Logger,
) -> None:
    # No handler configured (a library user's process): nothing reaches stdout or stderr.
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    head = git(repo, "rev-parse", "HEAD").strip()
    kill(hold_ref_lock(repo, f"update {REF} {head} {tip(repo)}"))
    caplog.handler.setLevel(logging.CRITICAL)  # caplog itself prints nothing either
    TaskStore.open(repo).create("Quietly")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert len(recovery_lines(repo)) == 1


def test_writers_racing_for_a_stale_lock_remove_it_once(store: TaskStore, repo: Path) -> None:
    # Writers take turns on the kernel lock; the first to judge removes, the others find the
    # ref free. Every write lands, and one removal is logged.
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    head = git(repo, "rev-parse", "HEAD").strip()
    kill(hold_ref_lock(repo, f"update {REF} {head} {tip(repo)}"))
    handles = [TaskStore.open(repo) for _ in range(4)]

    def write(n: int) -> None:
        for i in range(5):
            handles[n].create(f"Writer {n} task {i}")

    assert in_threads(write, len(handles)) == []
    titles = [t.title for t in store.list()]
    assert len(titles) == len(set(titles)) == 20
    assert len([line for line in recovery_lines(repo) if " removed " in line]) == 1


# -- live holders are never disturbed ----------------------------------------------------------


@pytest.mark.parametrize(
    "threshold",
    [
        None,  # the default (2 s): the lock is younger than that all along
        pytest.param("100ms", marks=needs_proc),  # older: the live git process is what keeps it
    ],
)
def test_a_live_update_ref_lock_is_never_removed(
    store: TaskStore, repo: Path, threshold: str | None
) -> None:
    if threshold is not None:
        git(repo, "config", "tasks.staleLockAfter", threshold)
    git(repo, "config", "tasks.retryTimeout", "500ms")
    store.create("Existing")
    before = tip(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    holder = hold_ref_lock(repo, f"update {REF} {head} {before}")
    try:
        lock = ref_lock(repo)
        held = lock.stat()
        if threshold is not None:
            wait_until_older(lock, 0.1)

        with pytest.raises(ContentionTimeout) as caught:
            TaskStore.open(repo).create("Blocked")

        now = lock.stat()
        assert (now.st_ino, now.st_size, now.st_mtime_ns) == (
            held.st_ino,
            held.st_size,
            held.st_mtime_ns,
        )
        if threshold is not None:
            assert caught.value.lock_note is not None
            assert f"process {holder.pid} (git update-ref --stdin)" in caught.value.lock_note
            assert f"process {holder.pid}" in str(caught.value)
    finally:
        if holder.poll() is None:
            commit_held(holder)
    assert tip(repo) == head  # the live transaction landed as it was prepared
    assert recovery_lines(repo) == []


@needs_proc
def test_a_process_with_the_lock_file_open_holds_it(repo: Path) -> None:
    # libgit2 keeps its lock file open until it renames it: an open descriptor is a holder,
    # however old the file.
    lock = ref_lock(repo)
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        hour_ago = time.time() - 3600
        os.utime(lock, (hour_ago, hour_ago))
        found = look(lock)
        assert found is not None
        verdict = judge(found, 2.0, repository_roots(common_dir(repo)))
        assert not verdict.stale
        assert [h.pid for h in verdict.holders] == [os.getpid()]
        assert verdict.reason == f"process {os.getpid()} ({verdict.holders[0].command}) has it open"
    finally:
        os.close(fd)
    found = look(lock)
    assert found is not None
    assert judge(found, 2.0, repository_roots(common_dir(repo))).stale


def waiting_update_ref(cwd: Path) -> subprocess.Popen[str]:
    """A ``git update-ref --stdin`` that has started a transaction and holds no lock."""
    return update_ref_stdin(cwd, "start")


@needs_proc
def test_an_update_ref_in_another_repository_does_not_keep_the_lock(
    store: TaskStore, repo: Path, tmp_path: Path
) -> None:
    # Started before the lock was written, so it might be the holder by time; but it works
    # on another repository.
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    elsewhere = waiting_update_ref(other)
    try:
        head = git(repo, "rev-parse", "HEAD").strip()
        kill(hold_ref_lock(repo, f"update {REF} {head} {tip(repo)}"))
        wait_until_older(ref_lock(repo), 0.1)
        TaskStore.open(repo).create("Unblocked")  # a handle that read the setting
    finally:
        kill(elsewhere)
    assert not ref_lock(repo).exists()
    assert len(recovery_lines(repo)) == 1


@needs_proc
def test_an_update_ref_started_after_the_lock_was_written_does_not_keep_it(
    store: TaskStore, repo: Path
) -> None:
    # In this repository, but it cannot have created a file written before it started.
    lock = ref_lock(repo)
    _old_lock(lock)
    later = waiting_update_ref(repo)
    try:
        store.create("Unblocked")
    finally:
        kill(later)
    assert not lock.exists()
    assert len(recovery_lines(repo)) == 1


# -- the removal itself: exactly the file judged ------------------------------------------------


def _old_lock(path: Path, content: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))


def judged_old_lock(repo: Path) -> tuple[Path, LockFile]:
    """An hour-old ref lock that nothing holds, and what :func:`look` saw of it."""
    lock = ref_lock(repo)
    _old_lock(lock)
    judged = look(lock)
    assert judged is not None
    return lock, judged


def test_a_young_lock_is_not_stale(repo: Path) -> None:
    lock = ref_lock(repo)
    _old_lock(lock)
    os.utime(lock)  # written just now
    found = look(lock)
    assert found is not None
    verdict = judge(found, 2.0, repository_roots(common_dir(repo)))
    assert not verdict.stale
    assert verdict.reason == "younger than tasks.staleLockAfter (2 s)"


def test_a_lock_replaced_before_the_removal_is_left_alone(repo: Path) -> None:
    lock, judged = judged_old_lock(repo)
    # Its holder was alive after all and finished; another writer took the lock.
    lock.unlink()
    _old_lock(lock, b"new\n")
    replaced = lock.stat()

    removal = remove(judged, log_dir(repo))

    assert not removal.removed
    assert lock.stat().st_ino == replaced.st_ino
    assert lock.read_bytes() == b"new\n"
    assert not list(lock.parent.glob("*.stale-*"))
    assert recovery_lines(repo) == []


def test_a_lock_replaced_between_the_look_and_the_rename_is_put_back(repo: Path) -> None:
    # The swap happens after remove() looked again and before it renamed: the quarantined file
    # is not the one judged, so it goes back under its name (a link, never a rename over it).
    lock, judged = judged_old_lock(repo)
    live: list[os.stat_result] = []

    def swap_before_rename(quarantine: Path) -> None:
        # remove() has moved the path aside; model the race by moving the judged file back
        # and a live one in first: the quarantine then holds the live file.
        quarantine.rename(lock.with_name("judged.tmp"))
        _old_lock(quarantine, b"live\n")
        live.append(quarantine.stat())

    removal = remove(judged, log_dir(repo), between=swap_before_rename)

    assert not removal.removed
    assert "put back" in removal.note
    assert lock.stat().st_ino == live[0].st_ino
    assert lock.read_bytes() == b"live\n"
    assert not list(lock.parent.glob("*.stale-*"))
    assert recovery_lines(repo) == []


def test_a_lock_that_cannot_be_put_back_is_kept_aside_not_lost(repo: Path) -> None:
    # A third lock took the path during the swap: putting the live one back would clobber it,
    # so the live one stays in quarantine (a .lock name git never reads), and the log says so.
    lock, judged = judged_old_lock(repo)

    def swap_and_take(quarantine: Path) -> None:
        quarantine.unlink()
        _old_lock(quarantine, b"live\n")
        _old_lock(lock, b"third\n")

    removal = remove(judged, log_dir(repo), between=swap_and_take)

    assert not removal.removed
    assert lock.read_bytes() == b"third\n"
    kept = list(lock.parent.glob("main.stale-*.lock"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == b"live\n"
    assert str(kept[0]) in removal.note
    lines = recovery_lines(repo)
    assert len(lines) == 1
    assert f"left {kept[0]}" in lines[0]


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("3", 3.0), ("2.5s", 2.5), ("500ms", 0.5)])
def test_stale_lock_after_takes_a_duration(repo: Path, text: str, seconds: float) -> None:
    git(repo, "config", "tasks.staleLockAfter", text)
    assert TaskStore.open(repo).workspace.stale_lock_after == seconds


def test_stale_lock_after_defaults_to_two_seconds(repo: Path) -> None:
    assert TaskStore.open(repo).workspace.stale_lock_after == 2.0


@pytest.mark.parametrize("text", ["0", "-1", "soon", "2m"])
def test_an_invalid_stale_lock_after_is_a_config_error(repo: Path, text: str) -> None:
    git(repo, "config", "tasks.staleLockAfter", text)
    with pytest.raises(ConfigError) as caught:
        TaskStore.open(repo)
    assert caught.value.key == "tasks.staleLockAfter"
    assert "git config tasks.staleLockAfter" in str(caught.value)
