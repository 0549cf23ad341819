"""History: reading the past (--at), the log of every operation, and undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, run_main, tasks_md

from tasksync import Status, TaskStore
from tasksync.errors import NotInHistory, TaskNotFound, UndoRefused


def _tip(repo: Path) -> str:
    return git(repo, "rev-parse", "refs/tasks/main").strip()


def test_get_list_and_spec_at_a_past_state(store: TaskStore, repo: Path) -> None:
    store.create("First", description="one")
    created = store.head()
    assert created is not None
    store.set_status(1, Status.DONE)
    store.update(1, title="First, renamed", description="two")
    store.delete(1)
    with pytest.raises(TaskNotFound):
        store.get(1)
    assert store.get(1, at=created).status is Status.TODO
    assert store.get(1, at=created[:8]).title == "First"
    assert store.get(1, at="@{1}").title == "First, renamed"
    assert store.get(1, at="@{2}").status is Status.DONE
    assert "one" in store.spec(1, at=created)
    assert [t.title for t in store.list(at="@{1}", include_done=True)] == ["First, renamed"]
    assert store.index_text(at="@{0}") == tasks_md(repo)
    assert store.state("@{0}") == _tip(repo)


def test_at_refuses_what_is_not_a_state_of_the_ref(store: TaskStore, repo: Path) -> None:
    store.create("First")
    code_commit = git(repo, "rev-parse", "HEAD").strip()
    for wrong in (code_commit, "main", "@{99}", "nonsense", "0" * 40):
        with pytest.raises(NotInHistory, match="is not a state of refs/tasks/main"):
            store.get(1, at=wrong)


def test_a_state_the_ref_left_is_still_readable_through_the_reflog(
    store: TaskStore, repo: Path
) -> None:
    store.create("First")
    old = _tip(repo)
    store.create("Second")
    init = git(repo, "rev-list", "--max-parents=0", "refs/tasks/main").strip()
    git(repo, "update-ref", "refs/tasks/main", init, _tip(repo))  # a rewind by hand
    assert store.get(1, at=old).title == "First"


def test_log_lists_what_merges_brought_in(store: TaskStore, repo: Path, tmp_path: Path) -> None:
    store.create("Here")
    other_path = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other_path))
    git(other_path, "config", "tasks.hub", "none")
    git(other_path, "fetch", "-q", "origin", "refs/tasks/main:refs/tasks/main")
    other = TaskStore.open(other_path)
    assert other.hub is None
    other.create("There")
    git(repo, "fetch", "-q", str(other_path), "refs/tasks/main:refs/remotes/other/tasks")
    store.create("Here again")
    store.merge("refs/remotes/other/tasks")
    summaries = [e.summary for e in store.history()]
    assert summaries[0].startswith("tasks: merged")
    assert any("created \u201cThere\u201d" in s for s in summaries)
    assert len(summaries) == len(git(repo, "rev-list", "refs/tasks/main").split())
    # Ids as each operation gave them: "Here again" was #002 here before the merge moved it.
    assert sorted(e.summary for e in store.history(2)) == [
        "#002: created \u201cHere again\u201d (TODO)",
        "#002: created \u201cThere\u201d (TODO)",
    ]


def test_undo_a_status_change(store: TaskStore, repo: Path) -> None:
    store.create("First")
    store.create("Second")
    store.set_status(1, Status.IN_PROGRESS)
    target = _tip(repo)
    store.set_status(2, Status.DONE)
    before = _tip(repo)
    new = store.undo(target).commit
    assert git(repo, "rev-parse", f"{new}^").strip() == before  # a new commit, never a reset
    assert store.get(1).status is Status.TODO
    assert store.get(2).status is Status.DONE
    entry = store.history(limit=1)[0]
    assert entry.operation == "undo"
    assert entry.trailer("Tasksync-Undone") == target
    assert entry.task_ids == ("#001",)
    # Undoing the undo brings the change back.
    store.undo(new)
    assert store.get(1).status is Status.IN_PROGRESS


def test_undo_refused_when_a_later_operation_touched_the_same_field(
    store: TaskStore, repo: Path
) -> None:
    store.create("First")
    store.set_status(1, Status.IN_PROGRESS)
    target = _tip(repo)
    store.update(1, title="Renamed")  # another field: not in the way
    store.set_status(1, Status.DONE)
    blocker = _tip(repo)
    before = tasks_md(repo)
    with pytest.raises(UndoRefused) as raised:
        store.undo(target)
    assert raised.value.later == ((blocker, "#001", "status"),)
    assert blocker[:10] in str(raised.value) and "#001 status" in str(raised.value)
    assert _tip(repo) == blocker and tasks_md(repo) == before
    # Once the later change is undone, the earlier one can be.
    store.undo(blocker)
    store.undo(target)
    task = store.get(1)
    assert (task.status, task.title) == (Status.TODO, "Renamed")


def test_undo_of_another_field_is_not_refused(store: TaskStore) -> None:
    store.create("First", description="old words")
    store.update(1, description="new words")
    target = store.head()
    assert target is not None
    store.set_status(1, Status.DONE)
    store.undo(target)
    task = store.get(1)
    assert (task.status, task.description) == (Status.DONE, "old words")


def test_undo_create_and_delete(store: TaskStore, repo: Path) -> None:
    store.create("Keep")
    store.create("Gone soon", description="words")
    created = _tip(repo)
    store.delete(2)
    deleted = _tip(repo)
    store.undo(deleted)
    task = store.get(2)
    assert (task.title, task.description) == ("Gone soon", "words")
    store.update(2, title="Gone later")
    with pytest.raises(UndoRefused, match="#002 title"):
        store.undo(created)  # the task changed since it was created
    store.undo("@{0}")  # the rename, taken back; the delete and its undo cancel out
    store.undo(created)
    with pytest.raises(TaskNotFound):
        store.get(2)
    assert store.create("Third").id.number == 3  # the undone task's id is not given again


def test_undo_refuses_the_first_commit_and_unknown_ones(store: TaskStore, repo: Path) -> None:
    store.create("First")
    root = git(repo, "rev-list", "--max-parents=0", "refs/tasks/main").strip()
    with pytest.raises(UndoRefused, match="created the task store"):
        store.undo(root)
    with pytest.raises(NotInHistory):
        store.undo(git(repo, "rev-parse", "HEAD").strip())


def test_undo_rechecks_when_the_ref_moves_under_it(store: TaskStore, repo: Path) -> None:
    store.create("First")
    store.set_status(1, Status.IN_PROGRESS)
    target = _tip(repo)
    other = TaskStore.open(repo)
    other._tx.file_lock = False  # it writes while this handle holds the lock
    fired: list[str] = []

    def race() -> None:
        if not fired:
            fired.append("x")
            other.set_status(1, Status.DONE)

    store._tx.before_swap = race
    with pytest.raises(UndoRefused, match="#001 status"):
        store.undo(target)
    assert store.get(1).status is Status.DONE


def test_cli_undo_and_at(
    store: TaskStore,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.create("First")
    store.set_status(1, Status.DONE)
    monkeypatch.chdir(repo)
    code, out, _ = run_main(capsys, "get", "1", "--at", "@{1}", "--json")
    assert code == 0 and json.loads(out)["status"] == "TODO"
    code, out, _ = run_main(capsys, "list", "--at", "@{1}")
    assert code == 0 and "First" in out
    code, out, _ = run_main(capsys, "undo", "@{0}")
    assert code == 0 and "undid" in out
    assert store.get(1).status is Status.TODO
    code, out, _ = run_main(capsys, "log", "-n", "1")
    assert code == 0 and "undid" in out and "Test Author" in out
    code, _, err = run_main(capsys, "undo", "nonsense")
    assert code == 1 and err.startswith("error: ") and "git tasks log" in err
    code, _, err = run_main(capsys, "get", "1", "--at", "HEAD")
    assert code == 1 and "not a state" in err
