"""Defects an independent review of hubs, sync and hooks found, each pinned by its case."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, run_main

from tasksync import TaskStore


def test_sync_resolves_a_relative_remote_url_as_git_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(tmp_path, "init", "-q", "--bare", "R.git")
    a = tmp_path / "A"
    git(tmp_path, "init", "-q", str(a))
    git(a, "remote", "add", "origin", "../R.git")
    git(a, "config", "tasks.hub", "none")
    store = TaskStore.open(a)
    store.init()
    store.create("One")
    (a / "sub").mkdir()
    monkeypatch.chdir(a / "sub")  # git resolves ../R.git from the top, whatever the cwd
    done = TaskStore.open(".").sync()
    assert done.pushed == store.head()
    assert git(tmp_path / "R.git", "rev-parse", "refs/tasks/main").strip() == store.head()


def test_a_clone_of_a_linked_worktree_uses_the_hub(tmp_path: Path) -> None:
    main = tmp_path / "main"
    git(tmp_path, "init", "-q", "-b", "main", str(main))
    git(main, "commit", "-q", "--allow-empty", "-m", "first")
    TaskStore.open(main).init()
    git(main, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wtb")
    git(tmp_path, "clone", "-q", str(tmp_path / "wt"), str(tmp_path / "s3"))
    session = TaskStore.open(tmp_path / "s3")
    assert session.hub is not None and session.hub.repo is not None
    session.create("Through a worktree's clone")
    assert [t.title for t in TaskStore.open(main).list()] == ["Through a worktree's clone"]


def test_pushing_published_history_to_a_new_remote_is_not_refused(
    tmp_path: Path, on_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "mirror.git")
    w = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(w))
    git(w, "config", "tasks.hub", "none")
    (w / "process").mkdir()
    (w / "process" / "tasks.md").write_text("# Tasks\n", encoding="utf-8")
    git(w, "add", ".")
    git(w, "commit", "-q", "-m", "in-tree tasks")
    git(w, "push", "-q", "origin", "HEAD:main")
    git(w, "rm", "-q", "process/tasks.md")
    git(w, "commit", "-q", "-m", "moved to the ref")
    git(w, "push", "-q", "origin", "HEAD:main")
    TaskStore.open(w).init()
    assert run_main(capsys, "-C", str(w), "hooks", "install")[0] == 0
    git(w, "remote", "add", "mirror", str(tmp_path / "mirror.git"))
    git(w, "push", "-q", "mirror", "HEAD:main")  # fails (AssertionError) if refused


def test_a_task_created_after_a_delete_on_two_clones_is_kept(tmp_path: Path) -> None:
    # Both delete #001 and create a task: ids of deleted tasks are never given again, so the
    # two new tasks are two creates (one renumbered), not one task retitled on both sides.
    git(tmp_path, "init", "-q", "--bare", "R.git")
    clones = []
    for name in ("A", "B"):
        path = tmp_path / name
        git(tmp_path, "init", "-q", str(path))
        git(path, "remote", "add", "origin", str(tmp_path / "R.git"))
        git(path, "config", "tasks.hub", "none")
        clones.append(path)
    a, b = (TaskStore.open(path) for path in clones)
    a.init()
    a.create("Old")
    a.sync()
    b.sync()
    a.delete(1)
    assert a.create("Alpha from A").id.number == 2
    b.delete(1)
    b.create("Beta from B")
    a.sync()
    b.sync()
    a.sync()
    for store in (a, b):
        assert sorted(t.title for t in store.list(include_done=True)) == [
            "Alpha from A",
            "Beta from B",
        ]
        assert not [c for c in store.conflicts() if c.field == "title"]
