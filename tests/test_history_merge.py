"""Merging two histories of refs/tasks/main: clones that wrote tasks apart, then meet again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import git, tasks_md

from tasksync import Status, TaskStore
from tasksync.cli import cli, main
from tasksync.errors import CannotResolve, NoConflict, NotTasksHistory, UnknownRevision
from tasksync.model import TaskId
from tasksync.records import Conflict

REF = "refs/tasks/main"
THEIRS = "refs/remotes/origin/tasks"
RECORDS = ".tasksync/records.json"
SPEC_BODY = (
    "\n"
    "## Context\n"
    "\n"
    "Why it matters.\n"
    "\n"
    "## Requirements\n"
    "\n"
    "- alpha\n"
    "- bravo\n"
    "- charlie\n"
    "- delta\n"
    "- echo\n"
    "- foxtrot\n"
    "- golf\n"
)


# -- helpers --------------------------------------------------------------------------------------


def clone(origin: Path, name: str) -> Path:
    """A clone of ``origin`` with its tasks ref fetched as the clone's own: as on another
    machine, so not sharing ``origin``'s ref as a session clone on this one would."""
    path = origin.parent / name
    git(origin.parent, "clone", "-q", str(origin), str(path))
    git(path, "config", "tasks.hub", "none")
    git(path, "fetch", "-q", "origin", f"{REF}:{REF}")
    return path


def fetch(into: Path, other: Path, ref: str = THEIRS) -> str:
    """Fetch ``other``'s tasks ref into ``ref`` of ``into``; returns the commit fetched."""
    git(into, "fetch", "-q", str(other), f"+{REF}:{ref}")
    return tip(into, ref)


def tip(path: Path, ref: str = REF) -> str:
    return git(path, "rev-parse", "-q", "--verify", ref, check=False).strip()


def tree_of(path: Path, commit: str) -> str:
    return git(path, "rev-parse", f"{commit}^{{tree}}").strip()


def paths(path: Path, ref: str = REF) -> list[str]:
    return git(path, "ls-tree", "-r", "--name-only", ref).split()


def records_on_ref(path: Path, ref: str = REF) -> dict[str, list[dict[str, str | None]]]:
    """``.tasksync/records.json`` on the ref, read with the git CLI; {} when absent."""
    if RECORDS not in paths(path, ref):
        return {}
    data = json.loads(git(path, "show", f"{ref}:{RECORDS}"))
    assert isinstance(data, dict)
    return data


def count(path: Path, ref: str = REF) -> int:
    return int(git(path, "rev-list", "--count", ref))


def merge_both_ways(a: Path, b: Path) -> tuple[str, str]:
    """Merge b's tip into a and a's tip into b, both from the same two tips; the two merges."""
    fetch(a, b)
    fetch(b, a)
    first = TaskStore.open(a).merge(THEIRS)
    second = TaskStore.open(b).merge(THEIRS)
    assert first.outcome == second.outcome == "merged"
    assert first.commit is not None
    assert second.commit is not None
    return first.commit, second.commit


@pytest.fixture
def ours(repo: Path) -> Path:
    """An initialized repository with three tasks (one with a long spec) and a clone of it."""
    store = TaskStore.open(repo)
    store.init()
    store.create("First task", description="The first one")
    store.create("Second task")
    store.create("Third task", spec="# Task: Third task\n" + SPEC_BODY)
    return repo


@pytest.fixture
def theirs(ours: Path) -> Path:
    return clone(ours, "theirs")


def cli_ok(path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["-C", str(path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


# -- outcomes -------------------------------------------------------------------------------------


def test_merging_an_ancestor_is_up_to_date(ours: Path, theirs: Path) -> None:
    old = fetch(ours, theirs)
    store = TaskStore.open(ours)
    store.set_status(1, Status.DONE)
    before = tip(ours)
    assert before != old

    done = store.merge(THEIRS)

    assert done.outcome == "up-to-date"
    assert (done.commit, done.conflicts, done.renumbered) == (None, (), ())
    assert store.last_commit is None
    assert tip(ours) == before
    assert store.merge(before).outcome == "up-to-date"  # merging itself
    assert cli_ok(ours, "merge", THEIRS) == "up-to-date\n"


def test_fast_forward_moves_the_ref_without_a_new_commit(ours: Path, theirs: Path) -> None:
    TaskStore.open(theirs).set_status(2, Status.IN_PROGRESS)
    other = fetch(ours, theirs)
    commits = count(ours, "--all")

    done = TaskStore.open(ours).merge(THEIRS)

    assert done.outcome == "fast-forward"
    assert done.commit == other
    assert tip(ours) == other
    assert count(ours, "--all") == commits
    assert "- [+] Second task [#002]" in tasks_md(ours)


def test_diverged_histories_get_a_merge_commit_with_two_parents(ours: Path, theirs: Path) -> None:
    TaskStore.open(theirs).set_status(2, Status.DONE)
    other = fetch(ours, theirs)
    store = TaskStore.open(ours)
    store.set_status(1, Status.IN_PROGRESS)
    old = tip(ours)

    done = store.merge(THEIRS)

    assert done.outcome == "merged"
    assert done.commit == tip(ours) == store.last_commit
    assert git(ours, "rev-list", "--parents", "-n1", REF).split() == [done.commit, old, other]
    assert done.conflicts == ()
    message = git(ours, "log", "-1", "--format=%B", REF)
    assert message.startswith(f"tasks: merged {THEIRS}\n")
    assert "Tasksync-Operation: merge" in message
    assert f"Tasksync-Merged: {other}" in message
    assert store.history(limit=1)[0].operation == "merge"


def test_merge_into_a_repository_without_tasks_takes_the_other(ours: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", "-b", "main", str(empty))
    other = fetch(empty, ours)
    assert tip(empty) == ""

    done = TaskStore.open(empty).merge(THEIRS)

    assert done.outcome == "fast-forward"
    assert tip(empty) == other == done.commit
    assert tasks_md(empty) == tasks_md(ours)


def test_unrelated_histories_keep_every_task(tmp_path: Path) -> None:
    sides = []
    for name, titles in (("left", ("Left one", "Left two")), ("right", ("Right one",))):
        path = tmp_path / name
        git(tmp_path, "init", "-q", "-b", "main", str(path))
        store = TaskStore.open(path)
        store.init()
        for title in titles:
            store.create(title, description=f"from {name}")
        sides.append(path)
    left, right = sides
    other = fetch(left, right)
    old = tip(left)

    done = TaskStore.open(left).merge(THEIRS)

    assert done.outcome == "merged"
    assert git(left, "rev-list", "--parents", "-n1", REF).split() == [done.commit, old, other]
    store = TaskStore.open(left)
    tasks = {t.title: t for t in store.list()}
    assert set(tasks) == {"Left one", "Left two", "Right one"}
    assert len({t.id.number for t in tasks.values()}) == 3
    assert [(r.old, r.new) for r in done.renumbered] == [(TaskId(1), TaskId(3))]
    renumbered = tasks[done.renumbered[0].title]
    assert renumbered.id == TaskId(3)
    assert renumbered.spec_path is not None
    assert renumbered.spec_path.startswith("process/tasks/003-")
    for task in tasks.values():  # each kept its own spec, description included
        assert task.description == ("from right" if task.title == "Right one" else "from left")
    assert tasks_md(left).count("# Tasks\n") == 1
    assert sorted(p for p in paths(left) if p.startswith("process/tasks/")) == sorted(
        t.spec_path for t in tasks.values() if t.spec_path is not None
    )


# -- tasks.md -------------------------------------------------------------------------------------


def test_neighbouring_ticks_merge_without_conflict(ours: Path, theirs: Path) -> None:
    TaskStore.open(theirs).set_status(2, Status.DONE)
    fetch(ours, theirs)
    store = TaskStore.open(ours)
    store.set_status(1, Status.DONE)

    done = store.merge(THEIRS)

    assert done.conflicts == ()
    assert [t.status for t in store.list(include_done=True)] == [
        Status.DONE,
        Status.DONE,
        Status.TODO,
    ]
    assert not records_on_ref(ours).get("conflicts")
    assert store.conflicts() == ()


@pytest.mark.parametrize(
    "case",
    [
        (Status.BLOCKED, Status.TODO, Status.IN_PROGRESS, Status.IN_PROGRESS),
        (Status.TODO, Status.IN_PROGRESS, Status.BLOCKED, Status.BLOCKED),
        (Status.TODO, Status.IN_REVIEW, Status.BLOCKED, Status.IN_REVIEW),
        (Status.TODO, Status.IN_REVIEW, Status.CLOSED, Status.CLOSED),
        (Status.TODO, Status.DONE, Status.CLOSED, Status.DONE),
    ],
    ids=lambda case: "-".join(s.value for s in case),
)
def test_status_conflict_keeps_the_further_status_and_a_record(
    ours: Path, theirs: Path, case: tuple[Status, Status, Status, Status]
) -> None:
    start, mine, yours, kept = case
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    if start is not Status.TODO:
        a.set_status(1, start)
        b.set_status(1, start)
        fetch(ours, theirs)
        assert a.merge(THEIRS).outcome == "merged"  # two equal writes, a merge commit
        fetch(theirs, ours)
        assert b.merge(THEIRS).outcome == "fast-forward"
    a.set_status(1, mine)
    b.set_status(1, yours)
    fetch(ours, theirs)

    done = a.merge(THEIRS)

    lost = yours if kept is mine else mine
    # As stored, "ours" is the value the merge kept and "theirs" the one set aside.
    expected = Conflict(TaskId(1), "status", start.value, kept.value, lost.value, kept.value)
    assert done.conflicts == (expected,)
    assert a.get(1).status is kept
    assert a.conflicts() == (expected,)
    assert a.conflicts(1) == (expected,)
    assert a.conflicts("#001") == (expected,)
    assert a.conflicts(2) == ()
    assert records_on_ref(ours)["conflicts"] == [
        {
            "task": "#001",
            "field": "status",
            "base": start.value,
            "ours": kept.value,
            "theirs": lost.value,
            "kept": kept.value,
        }
    ]
    listed = cli_ok(ours, "conflicts", "1")
    assert listed.startswith("#001 status: kept ")
    assert kept.value in listed
    assert lost.value in listed
    assert cli_ok(ours, "conflicts", "2") == "no conflicts\n"
    assert "conflict: #001 status" in cli_ok(ours, "get", "1")


def test_the_merged_tree_is_the_same_whichever_clone_merges(ours: Path, theirs: Path) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    a.set_status(1, Status.DONE)
    b.set_status(1, Status.BLOCKED)
    a.set_status(2, Status.IN_PROGRESS)
    b.update(1, title="First task, renamed")

    first, second = merge_both_ways(ours, theirs)

    assert git(ours, "show", f"{first}:process/tasks.md") == git(
        theirs, "show", f"{second}:process/tasks.md"
    )
    fetch(ours, theirs, "refs/remotes/theirs/merged")
    assert git(ours, "diff", "--name-only", first, second).split() == []
    assert tree_of(ours, first) == tree_of(theirs, second)


def test_same_id_created_on_both_sides_is_renumbered(ours: Path, theirs: Path) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    a.create("Apples", description="ours")
    b.create("Bananas", description="theirs")
    fetch(ours, theirs)

    done = a.merge(THEIRS)

    assert len(done.renumbered) == 1
    moved = done.renumbered[0]
    assert (moved.old, moved.new, moved.title) == (TaskId(4), TaskId(5), "Bananas")
    assert (moved.old_path, moved.new_path) == (
        "process/tasks/004-bananas.md",
        "process/tasks/005-bananas.md",
    )
    files = paths(ours)
    assert "process/tasks/004-apples.md" in files
    assert "process/tasks/005-bananas.md" in files
    assert "process/tasks/004-bananas.md" not in files
    assert "- [ ] Bananas [#005](process/tasks/005-bananas.md)\n" in tasks_md(ours)
    spec = git(ours, "show", f"{REF}:process/tasks/005-bananas.md")
    assert spec.startswith("# Task #005: Bananas\n")
    assert "theirs" in spec
    assert a.get(5).description == "theirs"
    assert a.get(4).title == "Apples"
    message = git(ours, "log", "-1", "--format=%B", REF)
    assert "Tasksync-Renumbered: #004 -> #005" in message
    stored = a.renumbered(4)
    assert [(r.old, r.new, r.title, r.old_path, r.new_path) for r in stored] == [
        (moved.old, moved.new, moved.title, moved.old_path, moved.new_path)
    ]
    assert [r.new for r in a.renumbered(5)] == [TaskId(5)]  # where #005 came from
    assert a.renumbered(2) == ()
    shown = cli_ok(ours, "get", "4")
    assert "#005" in shown
    assert "Bananas" in shown
    assert "#004" in cli_ok(ours, "get", "5")


def test_the_same_task_is_renumbered_whichever_clone_merges(ours: Path, theirs: Path) -> None:
    TaskStore.open(ours).create("Apples")
    TaskStore.open(theirs).create("Bananas")

    first, second = merge_both_ways(ours, theirs)

    for path, commit in ((ours, first), (theirs, second)):
        text = git(path, "show", f"{commit}:process/tasks.md")
        assert "- [ ] Apples [#004](process/tasks/004-apples.md)\n" in text
        assert "- [ ] Bananas [#005](process/tasks/005-bananas.md)\n" in text


def test_merge_command_prints_renumberings_and_conflicts(ours: Path, theirs: Path) -> None:
    TaskStore.open(ours).create("Apples")
    TaskStore.open(ours).set_status(1, Status.DONE)
    TaskStore.open(theirs).create("Bananas")
    TaskStore.open(theirs).set_status(1, Status.CLOSED)
    fetch(ours, theirs)

    out = json.loads(cli_ok(ours, "merge", THEIRS, "--json"))

    assert out["outcome"] == "merged"
    assert out["commit"] == tip(ours)
    assert [(r["old"], r["new"]) for r in out["renumbered"]] == [("#004", "#005")]
    assert [(c["task"], c["field"], c["kept"]) for c in out["conflicts"]] == [
        ("#001", "status", "DONE")
    ]


def test_delete_against_modify_keeps_the_modified_task(ours: Path, theirs: Path) -> None:
    a = TaskStore.open(ours)
    a.delete(1)
    TaskStore.open(theirs).set_status(1, Status.IN_PROGRESS)
    fetch(ours, theirs)

    done = a.merge(THEIRS)

    assert [(c.task, c.field) for c in done.conflicts] == [(TaskId(1), "deleted")]
    deleted = a.conflicts(1)[0]
    assert deleted.kept == deleted.ours
    assert deleted.ours is not None
    assert deleted.ours.startswith("- [+] First task [#001]")
    assert deleted.theirs is None  # the side that deleted it
    assert [c["field"] for c in records_on_ref(ours)["conflicts"]] == ["deleted"]
    assert "- [+] First task [#001](process/tasks/001-first-task.md)" in tasks_md(ours)
    task = a.get(1)
    assert (task.title, task.status) == ("First task", Status.IN_PROGRESS)
    # The surviving task keeps its spec file, and with it its description.
    assert "process/tasks/001-first-task.md" in paths(ours)
    assert task.description == "The first one"


def test_delete_against_unchanged_removes_the_task_and_its_spec(ours: Path, theirs: Path) -> None:
    b = TaskStore.open(theirs)
    b.delete(2)
    TaskStore.open(theirs).set_status(1, Status.DONE)
    a = TaskStore.open(ours)
    a.set_status(3, Status.DONE)
    fetch(ours, theirs)

    done = a.merge(THEIRS)

    assert done.conflicts == ()
    assert "#002" not in tasks_md(ours)
    assert not any(p.startswith("process/tasks/002-") for p in paths(ours))
    assert [t.id.number for t in a.list(include_done=True)] == [1, 3]


# -- spec files -----------------------------------------------------------------------------------


def test_spec_edits_on_different_lines_merge_cleanly(ours: Path, theirs: Path) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    spec = a.spec(3)
    a.update(3, spec=spec.replace("- alpha\n", "- alpha, by us\n"))
    b.update(3, spec=spec.replace("- golf\n", "- golf, by them\n"))
    fetch(ours, theirs)

    done = a.merge(THEIRS)

    merged = a.spec(3)
    assert "- alpha, by us\n" in merged
    assert "- golf, by them\n" in merged
    assert merged == spec.replace("- alpha\n", "- alpha, by us\n").replace(
        "- golf\n", "- golf, by them\n"
    )
    assert done.conflicts == ()
    assert a.conflicts() == ()


def test_spec_edits_on_the_same_lines_keep_one_side_and_record_both(
    ours: Path, theirs: Path
) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    spec = a.spec(3)
    mine = spec.replace("- delta\n", "- delta as A wrote it\n")
    yours = spec.replace("- delta\n", "- delta as B wrote it\n")
    a.update(3, spec=mine)
    b.update(3, spec=yours)

    first, second = merge_both_ways(ours, theirs)

    path = "process/tasks/003-third-task.md"
    here = git(ours, "show", f"{first}:{path}")
    there = git(theirs, "show", f"{second}:{path}")
    assert "<<<<<<<" not in here
    assert "=======" not in here
    assert here == there
    assert here in (mine, yours)
    recorded = [c for c in TaskStore.open(ours).conflicts(3) if c.field == "spec"]
    assert len(recorded) == 1
    assert {recorded[0].ours, recorded[0].theirs} == {mine, yours}
    assert recorded[0].ours == here  # as stored: the version kept, then the one set aside
    assert recorded[0].base == spec
    assert recorded[0].kept == here
    assert [c.field for c in TaskStore.open(theirs).conflicts(3)] == ["spec"]


# -- records --------------------------------------------------------------------------------------


def test_a_conflict_resolved_on_one_side_stays_resolved(ours: Path, theirs: Path) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    a.set_status(1, Status.DONE)
    b.set_status(1, Status.BLOCKED)
    fetch(ours, theirs)
    a.merge(THEIRS)
    fetch(theirs, ours)
    assert b.merge(THEIRS).outcome == "fast-forward"
    assert len(b.conflicts(1)) == 1

    a.resolve(1)  # resolved here; the other side still has the record
    b.set_status(2, Status.DONE)
    fetch(ours, theirs)
    done = a.merge(THEIRS)

    assert done.outcome == "merged"
    assert a.conflicts() == ()
    assert not records_on_ref(ours).get("conflicts")
    assert a.get(2).status is Status.DONE
    fetch(theirs, ours)
    assert b.merge(THEIRS).outcome == "fast-forward"
    assert b.conflicts() == ()


def test_renumberings_survive_merges_and_resolves(ours: Path, theirs: Path) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    a.create("Apples")
    b.create("Bananas")
    fetch(ours, theirs)
    a.merge(THEIRS)
    b.set_status(1, Status.DONE)
    fetch(ours, theirs)
    a.merge(THEIRS)
    assert [(r.old, r.new) for r in a.renumbered(4)] == [(TaskId(4), TaskId(5))]
    assert len(records_on_ref(ours)["renumbered"]) == 1


# -- resolve --------------------------------------------------------------------------------------


@pytest.fixture
def status_conflict(ours: Path, theirs: Path) -> TaskStore:
    """Task #001 DONE here, BLOCKED there, merged here: a status conflict kept DONE."""
    a = TaskStore.open(ours)
    a.set_status(1, Status.DONE)
    TaskStore.open(theirs).set_status(1, Status.BLOCKED)
    fetch(ours, theirs)
    a.merge(THEIRS)
    assert [c.field for c in a.conflicts(1)] == ["status"]
    return a


def test_resolve_clears_the_records_and_writes_nothing_else(
    ours: Path, status_conflict: TaskStore
) -> None:
    before = tip(ours)
    text = tasks_md(ours)

    cleared = status_conflict.resolve(1)

    assert [(c.task, c.field, c.kept) for c in cleared] == [(TaskId(1), "status", "DONE")]
    after = tip(ours)
    assert after == status_conflict.last_commit
    assert git(ours, "rev-list", "--parents", "-n1", after).split() == [after, before]
    assert git(ours, "diff", "--name-only", before, after).split() == [RECORDS]
    assert tasks_md(ours) == text
    assert status_conflict.conflicts() == ()
    assert status_conflict.get(1).status is Status.DONE
    with pytest.raises(NoConflict):
        status_conflict.resolve(1)
    assert tip(ours) == after


def test_resolve_take_theirs_writes_the_recorded_value(
    ours: Path, status_conflict: TaskStore
) -> None:
    status_conflict.resolve(1, take="theirs")

    assert status_conflict.get(1).status is Status.BLOCKED
    assert "- [~] First task [#001]" in tasks_md(ours)
    assert status_conflict.conflicts() == ()
    assert not records_on_ref(ours).get("conflicts")


def test_resolve_take_a_value(ours: Path, status_conflict: TaskStore) -> None:
    status_conflict.set_status(1, Status.IN_REVIEW)
    status_conflict.resolve("#001", take="DONE")

    assert status_conflict.get(1).status is Status.DONE
    assert status_conflict.conflicts() == ()


def test_resolve_take_ours_keeps_the_value_and_clears(
    ours: Path, status_conflict: TaskStore
) -> None:
    text = tasks_md(ours)
    status_conflict.resolve(1, take="ours")
    assert tasks_md(ours) == text
    assert status_conflict.conflicts() == ()


def test_resolve_with_two_fields_in_conflict_needs_a_field(ours: Path, theirs: Path) -> None:
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    a.set_status(1, Status.DONE)
    a.update(1, title="Ours title")
    b.set_status(1, Status.BLOCKED)
    b.update(1, title="Theirs title")
    fetch(ours, theirs)
    a.merge(THEIRS)
    # The title is also the spec's heading, so the spec conflicts too.
    assert sorted(c.field for c in a.conflicts(1)) == ["spec", "status", "title"]
    before = tip(ours)

    with pytest.raises(CannotResolve, match="--field"):
        a.resolve(1, take="theirs")
    assert tip(ours) == before

    assert a.get(1).title == "Theirs title"  # the greater title was kept
    a.resolve(1, field="title", take="theirs")  # the value set aside
    assert a.get(1).title == "Ours title"
    assert sorted(c.field for c in a.conflicts(1)) == ["spec", "status"]
    a.resolve(1, field="spec")
    assert [c.field for c in a.conflicts(1)] == ["status"]
    a.resolve(1, field="status", take="theirs")
    assert a.get(1).status is Status.BLOCKED
    assert a.conflicts() == ()


def test_resolve_without_a_conflict_is_no_conflict(
    ours: Path, status_conflict: TaskStore, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tip(ours)
    with pytest.raises(NoConflict, match="#002"):
        status_conflict.resolve(2)
    with pytest.raises(NoConflict):
        status_conflict.resolve(1, field="title")
    with pytest.raises(NoConflict):
        status_conflict.resolve(None)
    assert tip(ours) == before
    with pytest.raises(SystemExit) as caught:
        main(["-C", str(ours), "resolve", "2"])
    assert caught.value.code == 1
    assert capsys.readouterr().err.startswith("error: no conflict is recorded for #002")


@pytest.fixture
def layout_conflicts(ours: Path, theirs: Path) -> TaskStore:
    """A merge with a text conflict (the heading) and a position conflict (#003 moved)."""
    a, b = TaskStore.open(ours), TaskStore.open(theirs)
    base = a.index_text()
    lines = base.splitlines(keepends=True)
    heading, blank, one, two, three = lines
    a.edit_index(base, "".join([heading.replace("Tasks", "Tasks A"), blank, three, one, two]))
    b.edit_index(base, "".join([heading.replace("Tasks", "Tasks B"), blank, one, three, two]))
    fetch(ours, theirs)
    a.merge(THEIRS)
    fields = sorted((c.task, c.field) for c in a.conflicts() if c.task is not None)
    assert fields == [(TaskId(3), "position")]
    assert [c.field for c in a.conflicts() if c.task is None] == ["text"]
    return a


def test_resolve_take_on_a_position_or_text_conflict_cannot(
    ours: Path, layout_conflicts: TaskStore
) -> None:
    before = tip(ours)
    with pytest.raises(CannotResolve, match="position"):
        layout_conflicts.resolve(3, take="theirs")
    with pytest.raises(CannotResolve, match="text"):
        layout_conflicts.resolve(None, take="ours")
    assert tip(ours) == before

    assert [c.field for c in layout_conflicts.resolve(3)] == ["position"]
    assert [c.field for c in layout_conflicts.conflicts()] == ["text"]


def test_resolve_tasks_md_through_the_cli(ours: Path, layout_conflicts: TaskStore) -> None:
    text = tasks_md(ours)
    out = cli_ok(ours, "resolve", "tasks.md")
    assert out.startswith("resolved tasks.md text")
    assert [c.field for c in layout_conflicts.conflicts()] == ["position"]
    assert tasks_md(ours) == text
    assert cli_ok(ours, "conflicts").startswith("#003 position:")


# -- errors and races -----------------------------------------------------------------------------


def test_an_unknown_revision_is_one_line(ours: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tip(ours)
    with pytest.raises(UnknownRevision) as caught:
        TaskStore.open(ours).merge("refs/remotes/nowhere/tasks")
    message = str(caught.value)
    assert "refs/remotes/nowhere/tasks" in message
    assert "\n" not in message
    assert caught.value.revision == "refs/remotes/nowhere/tasks"

    with pytest.raises(SystemExit) as exited:
        main(["-C", str(ours), "merge", "no-such-thing"])
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: 'no-such-thing' names no commit")
    assert captured.err.count("\n") == 1
    assert tip(ours) == before


def test_a_code_branch_is_not_merged(ours: Path) -> None:
    before = tip(ours)
    with pytest.raises(NotTasksHistory):
        TaskStore.open(ours).merge("main")
    assert tip(ours) == before


def test_merge_retries_when_another_writer_lands_first(ours: Path, theirs: Path) -> None:
    git(ours, "config", "tasks.fileLock", "false")
    TaskStore.open(theirs).set_status(2, Status.DONE)
    other = fetch(ours, theirs)
    merging, writer = TaskStore.open(ours), TaskStore.open(ours)
    merging.set_status(1, Status.IN_PROGRESS)
    calls: list[str] = []

    def interleave() -> None:
        calls.append(tip(ours))
        if len(calls) == 1:
            writer.create("Landed meanwhile")

    merging._tx.before_swap = interleave
    done = merging.merge(THEIRS)

    assert len(calls) == 2
    assert done.outcome == "merged"
    assert tip(ours) == done.commit
    parents = git(ours, "rev-list", "--parents", "-n1", REF).split()
    assert parents == [done.commit, writer.last_commit, other]
    assert [t.title for t in merging.list()] == ["First task", "Third task", "Landed meanwhile"]
    assert merging.get(2).status is Status.DONE
    assert merging.get(1).status is Status.IN_PROGRESS
    assert count(ours) == count(ours, writer.last_commit or "") + 2
