"""Maintenance alongside writers: git's gc, pack-refs and repack looping while writer processes
run, with tasksync's own background packing made to trigger on every write. No writer sees an
error, every acknowledged operation lands exactly once, and the repository stays sound.

``TASKSYNC_MAINTENANCE_SECONDS=300`` keeps starting rounds of writers (the maintenance loops
running throughout) until that many seconds have passed; unset, one round runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pygit2
import pytest
from conftest import git
from test_stress import (
    Record,
    Round,
    check_exactly_once,
    detached_worktrees,
    run_writer_processes,
    shared_tasks,
)

from tasksync import TaskStore
from tasksync.store import refs

REF = "refs/tasks/main"
WRITERS = 4
OPERATIONS = 80
SHARED = 4
#: Read at import: the sealed environment of each test drops TASKSYNC_* variables.
SECONDS = float(os.environ.get("TASKSYNC_MAINTENANCE_SECONDS", "0"))
TESTS = Path(__file__).resolve().parent

#: What loops beside the writers; each runs again as soon as it ends.
MAINTENANCE = {
    "gc": ("gc", "--quiet"),  # the default prune: unreachable objects older than two weeks
    "pack-refs": ("pack-refs", "--all"),
    "repack": ("repack", "-a", "-d", "-q"),
    "gc --auto": ("-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"),
}

#: A writer of tests/stress_writer.py whose every write looks at the loose objects (instead
#: of one in 64), so tasksync's own ``git gc --auto`` starts whenever git's threshold is passed.
WRITER = """
import sys
sys.path.insert(0, sys.argv.pop(1))
import tasksync.maintenance
tasksync.maintenance.sampled = lambda: True
import stress_writer
sys.exit(stress_writer.main(sys.argv))
"""


class Run(NamedTuple):
    """One run of a maintenance command."""

    started: float
    ended: float
    code: int
    stderr: str


class Maintenance:
    """Threads running each maintenance command in a loop until stopped."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.runs: dict[str, list[Run]] = {name: [] for name in MAINTENANCE}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(name,), daemon=True) for name in MAINTENANCE
        ]

    def __enter__(self) -> Maintenance:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _loop(self, name: str) -> None:
        while not self.stop.is_set():
            started = time.time()
            done = subprocess.run(
                ["git", *MAINTENANCE[name]],
                cwd=self.repo,
                capture_output=True,
                text=True,
                check=False,
            )
            self.runs[name].append(Run(started, time.time(), done.returncode, done.stderr))

    def overlapping(self, name: str, start: float, end: float) -> list[Run]:
        """The runs of ``name`` that overlapped the window from start to end."""
        return [r for r in self.runs[name] if r.started < end and r.ended > start]


def gc_runs_started_by_writers(trace: Path) -> int:
    """How many ``git gc`` processes the writers started (from git's trace2 event log)."""
    if not trace.exists():
        return 0
    count = 0
    for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "cmd_name" and event.get("name") == "gc":
            count += 1
    return count


@pytest.mark.slow
@pytest.mark.parametrize("file_lock", ["true", "false"])
def test_gc_pack_refs_and_repack_beside_writers_surface_no_error(
    repo: Path, tmp_path: Path, file_lock: str
) -> None:
    git(repo, "config", "tasks.fileLock", file_lock)
    if file_lock == "false":
        # Without the lock writers only retry the swap, and on a loaded machine one can lose
        # races to the others for seconds (optimistic swaps are not fair): that is contention,
        # which tasks.retryTimeout caps, not an error of maintenance.
        git(repo, "config", "tasks.retryTimeout", "60")
    git(repo, "config", "gc.auto", "1")  # tasksync's packing and `gc --auto` always have work
    shared_tasks(repo, SHARED)
    trace = tmp_path / "writers-trace2.json"
    # Made before maintenance starts (a gc beside a worktree being added trips over its
    # half-written files: git's own race, not tasksync's).
    worktrees = detached_worktrees(repo, tmp_path / "checkouts", WRITERS)
    records: dict[str, list[Record]] = {}
    began = time.monotonic()
    with Maintenance(repo) as maintenance:
        rounds: list[Round] = []
        while not rounds or time.monotonic() - began < SECONDS:
            done = run_writer_processes(
                worktrees,
                OPERATIONS,
                round_number=len(rounds),
                launcher=(sys.executable, "-c", WRITER, str(TESTS)),
                env={"GIT_TRACE2_EVENT": str(trace)},  # records the gc runs the writers start
                timeout=300,
            )
            rounds.append(done)
            records.update(done.records)
    # Every command ran while all writers of a round were writing, and succeeded at times (a
    # gc refuses to start while another runs: git's, or the one a writer started).
    for name in MAINTENANCE:
        overlapped = [maintenance.overlapping(name, r.started, r.finished) for r in rounds]
        assert sum(map(len, overlapped)) >= 1, (name, maintenance.runs[name][-3:])
        assert any(r.code == 0 for r in maintenance.runs[name]), maintenance.runs[name][-3:]
    summary = {
        "rounds": len(rounds),
        "operations": sum(map(len, records.values())),
        "acknowledged": sum(1 for rs in records.values() for r in rs if r["commit"]),
        "gc started by writers": gc_runs_started_by_writers(trace),
        **{
            name: f"{sum(1 for r in runs if r.code == 0)} ok / {len(runs)}"
            for name, runs in maintenance.runs.items()
        },
        # What git said when a maintenance command failed (gc refuses to run beside another).
        "maintenance failures": Counter(
            f"{name}: {re.sub(r'[0-9]+', 'N', (r.stderr.strip().splitlines() or ['?'])[0])}"
            for name, runs in maintenance.runs.items()
            for r in runs
            if r.code != 0
        ),
    }
    print(json.dumps(summary))

    check_exactly_once(repo, records, SHARED)


# -- each danger point, forced at the moment between a write's objects and its swap ---------------


def packs(repo: Path) -> set[str]:
    return {path.name for path in (repo / ".git" / "objects" / "pack").glob("*.pack")}


def test_a_swap_lands_on_a_ref_pack_refs_moved_after_it_was_read(
    store: TaskStore, repo: Path
) -> None:
    task = store.create("One")
    swaps: list[None] = []

    def pack_refs() -> None:
        swaps.append(None)
        git(repo, "pack-refs", "--all")  # the ref is now in packed-refs only
        assert not (repo / ".git" / REF).exists()

    store._tx.before_swap = pack_refs
    store.set_status(task.id, "DONE")
    assert len(swaps) == 1  # the first swap landed: libgit2 compares against the packed value
    assert git(repo, "rev-parse", REF).strip() == store.head() == store.last_commit
    assert REF in (repo / ".git" / "packed-refs").read_text(encoding="utf-8")
    assert TaskStore.open(repo).get(task.id).status.value == "DONE"


def test_a_swap_refused_by_a_ref_lock_git_holds_is_retried_not_surfaced(
    store: TaskStore, repo: Path
) -> None:
    # pack-refs holds the ref's lock while it prunes the loose file: a swap then fails.
    task = store.create("One")
    lock = repo / ".git" / (REF + ".lock")
    swaps: list[None] = []

    def held_for_the_first_swap() -> None:
        swaps.append(None)
        if len(swaps) == 1:
            lock.write_bytes(b"")
        else:
            lock.unlink()

    store._tx.before_swap = held_for_the_first_swap
    store.set_status(task.id, "DONE")
    assert len(swaps) == 2
    assert git(repo, "rev-parse", REF).strip() == store.last_commit
    assert int(git(repo, "rev-list", "--count", REF)) == 3  # init, create, this: once


def test_a_ref_lock_held_for_a_moment_is_waited_for_within_the_swap(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = store.create("One")
    before = store.head()
    store.set_status(task.id, "DONE")
    after = store.head()
    assert before is not None and after is not None
    handle = refs.LibgitRefs(pygit2.Repository(str(repo)), repo / ".git")
    lock = repo / ".git" / (REF + ".lock")
    paused: list[float] = []

    def let_go(seconds: float) -> None:  # git's pack-refs is done with the ref
        paused.append(seconds)
        lock.unlink()

    lock.write_bytes(b"")
    monkeypatch.setattr(refs, "_pause", let_go)
    handle.set_if_equals(REF, after, before, "moved back")
    assert paused == [refs._LOCK_PAUSES[0]]
    assert git(repo, "rev-parse", REF).strip() == before

    # A lock that stays fails the attempt after the last pause; the write loop goes on.
    lock.write_bytes(b"")
    paused.clear()
    monkeypatch.setattr(refs, "_pause", paused.append)
    with pytest.raises(refs.WriteFailed):
        handle.set_if_equals(REF, before, after, "moved forward")
    assert paused == list(refs._LOCK_PAUSES)
    lock.unlink()

    # A swap refused because the ref moved is not waited for.
    paused.clear()
    with pytest.raises(refs.WriteFailed):
        handle.set_if_equals(REF, after, before, "from a value it no longer has")
    assert paused == []
    assert git(repo, "rev-parse", REF).strip() == before


def test_a_held_packed_refs_lock_does_not_stop_a_swap_of_a_packed_ref(
    store: TaskStore, repo: Path
) -> None:
    task = store.create("One")
    git(repo, "pack-refs", "--all")
    held = repo / ".git" / "packed-refs.lock"
    held.write_bytes(b"")
    try:
        store.set_status(task.id, "DONE")  # writes a loose ref; packed-refs is not rewritten
    finally:
        held.unlink()
    assert git(repo, "rev-parse", REF).strip() == store.last_commit


def test_a_write_reads_through_a_repack_that_deleted_the_packs_it_had_open(
    store: TaskStore, repo: Path
) -> None:
    task = store.create("One")
    git(repo, "repack", "-a", "-d", "-q")
    first = packs(repo)
    assert [t.title for t in store.list()] == ["One"]  # this handle has read from that pack
    TaskStore.open(repo).create("Two")
    git(repo, "repack", "-a", "-d", "-q")
    assert packs(repo).isdisjoint(first)  # every pack it knew is gone
    swaps: list[None] = []

    def repack() -> None:  # the new commit is loose and unreachable: repack -ad leaves it
        swaps.append(None)
        git(repo, "repack", "-a", "-d", "-q")

    store._tx.before_swap = repack
    store.set_status(task.id, "DONE")
    assert len(swaps) == 1
    assert [(t.title, t.status.value) for t in store.list(include_done=True)] == [
        ("One", "DONE"),
        ("Two", "TODO"),
    ]
    assert git(repo, "fsck", "--no-dangling", "--no-progress") == ""


def test_a_default_gc_between_the_objects_and_the_swap_keeps_them(
    store: TaskStore, repo: Path
) -> None:
    task = store.create("One")

    def gc() -> None:  # the default prune: unreachable objects older than two weeks
        git(repo, "gc", "--quiet")

    store._tx.before_swap = gc
    store.set_status(task.id, "DONE")
    assert git(repo, "fsck", "--no-dangling", "--no-progress") == ""


def test_a_swap_onto_a_commit_pruned_before_it_is_refused_and_retried(
    store: TaskStore, repo: Path
) -> None:
    # gc --prune=now deletes what a writer wrote and has not swapped in yet (it is
    # unreachable); libgit2 refuses to point a ref at a missing commit, so the write retries.
    task = store.create("One")
    swaps: list[None] = []

    def prune_once() -> None:
        swaps.append(None)
        if len(swaps) == 1:
            git(repo, "gc", "--quiet", "--prune=now")

    store._tx.before_swap = prune_once
    store.set_status(task.id, "DONE")
    assert len(swaps) == 2
    assert int(git(repo, "rev-list", "--count", REF)) == 3
    assert git(repo, "fsck", "--no-dangling", "--no-progress") == ""


def test_a_prune_that_deletes_part_of_a_write_corrupts_which_is_why_it_must_not_run(
    store: TaskStore, repo: Path
) -> None:
    # A prune walks the object directories one by one: running during a write it can delete
    # the new trees while the new commit, in a directory it had passed, survives. libgit2
    # checks only the commit, the swap lands, and the ref's tip has lost its files.
    task = store.create("One")
    deleted: list[str] = []

    def prune_the_new_trees() -> None:
        reachable = set(git(repo, "rev-list", "--objects", "--all").split())
        every = "--batch-check=%(objectname) %(objecttype)"
        for line in git(repo, "cat-file", "--batch-all-objects", every).splitlines():
            oid, kind = line.split()
            if kind == "tree" and oid not in reachable:
                (repo / ".git" / "objects" / oid[:2] / oid[2:]).unlink()
                deleted.append(oid)

    store._tx.before_swap = prune_the_new_trees
    store.set_status(task.id, "DONE")
    assert deleted
    assert git(repo, "rev-parse", REF).strip() == store.last_commit
    done = subprocess.run(
        ["git", "fsck", "--no-dangling", "--no-progress"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert any(oid in done.stdout + done.stderr for oid in deleted)
