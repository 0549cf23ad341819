"""Packing the loose objects writes leave: git gc --auto, started now and then, never pruning
what a concurrent writer may still need."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import git

from tasksync import ConfigError, Status, TaskStore, maintenance


def _loose(repo: Path) -> int:
    objects = repo / ".git" / "objects"
    return sum(1 for folder in objects.iterdir() if len(folder.name) == 2 for _ in folder.iterdir())


def _wait_for_gc(repo: Path, timeout: float = 60.0) -> None:
    """Until a pack exists and no gc holds the repository (git detaches it)."""
    git_dir = repo / ".git"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        packs = list((git_dir / "objects" / "pack").glob("*.pack"))
        if packs and not (git_dir / "gc.pid").exists():
            return
        time.sleep(0.05)
    raise AssertionError("no gc finished in time")


def _fill_until_sampled_dir_has_objects(store: TaskStore, repo: Path) -> None:
    """Write until objects/17 (the directory git samples) holds more objects than git's
    threshold at ``gc.auto=1`` (one, rounded up to a directory's share)."""
    store.create("Busy")
    status = Status.TODO
    for _ in range(3000):
        if len(list((repo / ".git" / "objects" / "17").glob("*"))) > 1:
            return
        status = Status.DONE if status is Status.TODO else Status.TODO
        store.set_status(1, status)
    raise AssertionError("objects/17 stayed empty")


def test_the_estimate_counts_the_sampled_directory(tmp_path: Path) -> None:
    assert maintenance.loose_estimate(tmp_path) == 0
    folder = tmp_path / "objects" / "17"
    folder.mkdir(parents=True)
    for n in range(3):
        (folder / f"{n:038x}").write_bytes(b"")
    (folder / "tmp_obj_123").write_bytes(b"")  # a temporary file is no object
    assert maintenance.loose_estimate(tmp_path) == 3 * 256


def test_a_write_past_the_threshold_packs_and_loses_nothing(store: TaskStore, repo: Path) -> None:
    git(repo, "config", "gc.auto", "1")
    store = TaskStore.open(repo)  # settings are read when a store is opened
    _fill_until_sampled_dir_has_objects(store, repo)
    before = _loose(repo)
    head_before = store.head()
    store._tx.pack_sample = lambda: True
    store.create("After the fill")
    _wait_for_gc(repo)
    assert _loose(repo) < before
    assert store.head() != head_before
    assert [t.title for t in store.list(include_done=True)] == ["Busy", "After the fill"]
    git(repo, "fsck", "--no-progress")
    assert int(git(repo, "rev-list", "--count", "refs/tasks/main")) > 2


def test_the_gc_never_prunes_a_young_unreachable_object(store: TaskStore, repo: Path) -> None:
    """What a writer wrote and has not swapped in yet is unreachable and young: it stays,
    even where the repository asks gc to prune everything unreachable at once."""
    git(repo, "config", "gc.auto", "1")
    git(repo, "config", "gc.pruneExpire", "now")
    store = TaskStore.open(repo)
    _fill_until_sampled_dir_has_objects(store, repo)
    blob = repo / "pending.txt"
    blob.write_text("a writer's object, not yet reachable\n", encoding="utf-8")
    pending = git(repo, "hash-object", "-w", str(blob)).strip()
    assert maintenance.after_write(repo / ".git", 1, lambda: True)
    _wait_for_gc(repo)
    assert git(repo, "cat-file", "-t", pending).strip() == "blob"


def test_packing_can_be_turned_off(store: TaskStore, repo: Path) -> None:
    git(repo, "config", "tasks.autoPack", "false")
    assert TaskStore.open(repo).workspace.pack_threshold == 0
    git(repo, "config", "--unset", "tasks.autoPack")
    git(repo, "config", "gc.auto", "0")
    assert TaskStore.open(repo).workspace.pack_threshold == 0
    assert not maintenance.after_write(repo / ".git", 0, lambda: True)
    git(repo, "config", "gc.auto", "lots")
    with pytest.raises(ConfigError, match=r"gc\.auto"):
        TaskStore.open(repo)


def test_no_git_on_path_is_no_error(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert maintenance.start_gc(repo / ".git") is False
