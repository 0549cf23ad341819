"""Semantic events between two states of the tasks tree: pure, over texts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasksync import records
from tasksync.events import KINDS, Event, conflict_text, diff
from tasksync.markdown import INDEX_PATH, RECORDS_PATH, Index
from tasksync.model import Status, TaskId
from tasksync.operations import Change, Create, Delete, SetStatus, Snapshot, Update
from tasksync.records import Conflict

State = dict[str, str]
EMPTY: State = {INDEX_PATH: "# Tasks\n"}
Op = Create | SetStatus | Update | Delete


def apply(state: State, *operations: Op) -> State:
    """The state after ``operations``, applied as the store applies them (pure)."""
    for operation in operations:
        snap = Snapshot(Index.parse(state.get(INDEX_PATH, "")), state.get, "tip")
        change = operation.apply(snap)
        if not isinstance(change, Change):  # a no-op returns the task
            continue
        state = dict(state)
        if change.index is not None:
            state[INDEX_PATH] = change.index.text
        for path, text in change.files:
            if text is None:
                state.pop(path, None)
            else:
                state[path] = text
    return state


def brief(events: list[Event]) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(e.kind, None if e.task is None else str(e.task), e.before, e.after) for e in events]


def changed(a: State, b: State) -> frozenset[str]:
    return frozenset(p for p in {*a, *b} if a.get(p) != b.get(p))


def events(a: State, b: State) -> list[Event]:
    """diff with and without the changed paths: both must say the same."""
    full = diff(a.get, b.get)
    assert diff(a.get, b.get, changed(a, b)) == full
    return full


ONE = apply(EMPTY, Create("Fix login", description="Users get logged out."))
SPEC_1 = "process/tasks/001-fix-login.md"


# -- one operation, one event -------------------------------------------------------------------


def test_create() -> None:
    assert brief(events(EMPTY, ONE)) == [("created", "#001", None, "Fix login")]
    (event,) = diff(EMPTY.get, ONE.get)
    assert (event.title, event.status, event.commit) == ("Fix login", "TODO", "")


def test_create_with_a_status_says_it() -> None:
    after = apply(EMPTY, Create("Fix login", status=Status.BLOCKED))
    (event,) = events(EMPTY, after)
    assert (event.kind, event.status) == ("created", "BLOCKED")


def test_status() -> None:
    after = apply(ONE, SetStatus(TaskId(1), Status.IN_PROGRESS))
    assert brief(events(ONE, after)) == [("status", "#001", "TODO", "IN-PROGRESS")]


def test_title_is_one_event_though_the_spec_heading_changes() -> None:
    after = apply(ONE, Update(TaskId(1), title="Fix the login"))
    assert after[SPEC_1] != ONE[SPEC_1]  # the heading was rewritten
    assert brief(events(ONE, after)) == [("title", "#001", "Fix login", "Fix the login")]


def test_description() -> None:
    after = apply(ONE, Update(TaskId(1), description="Sessions expire early."))
    assert brief(events(ONE, after)) == [
        ("description", "#001", "Users get logged out.", "Sessions expire early.")
    ]


def test_title_and_description_at_once() -> None:
    after = apply(ONE, Update(TaskId(1), title="Fix the login", description="New."))
    assert [e.kind for e in events(ONE, after)] == ["title", "description"]


def test_spec_text_outside_title_and_context() -> None:
    text = ONE[SPEC_1] + "## Notes\n\nTried a longer timeout.\n"
    after = apply(ONE, Update(TaskId(1), spec=text))
    assert brief(events(ONE, after)) == [("spec", "#001", ONE[SPEC_1], text)]


def test_a_new_spec_with_another_context_is_both() -> None:
    text = "# Task #001: Fix login\n\n## Context\n\nOther.\n\n## Notes\n\nMore.\n"
    after = apply(ONE, Update(TaskId(1), spec=text))
    assert [e.kind for e in events(ONE, after)] == ["description", "spec"]


def test_delete() -> None:
    after = apply(ONE, Delete(TaskId(1)))
    assert brief(events(ONE, after)) == [("deleted", "#001", "Fix login", None)]
    (event,) = diff(ONE.get, after.get)
    assert (event.title, event.status) == ("Fix login", "TODO")


def test_a_spec_made_for_a_description_is_the_description_event() -> None:
    # A task whose link names a spec that is not there: setting a description writes one.
    before = {INDEX_PATH: "# Tasks\n- [ ] Fix login [#001](process/tasks/001-fix-login.md)\n"}
    after = apply(before, Update(TaskId(1), description="Why."))
    assert SPEC_1 in after
    assert brief(events(before, after)) == [("description", "#001", "", "Why.")]


def test_a_removed_spec_is_a_spec_event() -> None:
    after = {INDEX_PATH: ONE[INDEX_PATH]}
    assert brief(events(ONE, after)) == [
        ("description", "#001", "Users get logged out.", ""),
        ("spec", "#001", ONE[SPEC_1], None),
    ]


def test_description_bullets_in_the_index() -> None:
    line = "- [ ] Fix login [#001](https://example.com/1)\n"
    before = {INDEX_PATH: f"# Tasks\n{line}  - one\n"}
    after = {INDEX_PATH: f"# Tasks\n{line}  - one\n  - two\n"}
    assert brief(events(before, after)) == [("description", "#001", "one", "one\ntwo")]


def test_a_spec_renamed_with_its_title_is_a_title_event() -> None:
    # As a merge renames a spec file when a task's title and link change together.
    before = {
        INDEX_PATH: "# Tasks\n- [ ] Old [#001](process/tasks/001-old.md)\n",
        "process/tasks/001-old.md": "# Task #001: Old\n\n## Context\n\nWhy.\n",
    }
    after = {
        INDEX_PATH: "# Tasks\n- [ ] New [#001](process/tasks/001-new.md)\n",
        "process/tasks/001-new.md": "# Task #001: New\n\n## Context\n\nWhy.\n",
    }
    assert brief(events(before, after)) == [("title", "#001", "Old", "New")]
    notes = after["process/tasks/001-new.md"] + "\n## Notes\n\nMore.\n"
    edited = {**after, "process/tasks/001-new.md": notes}
    assert [e.kind for e in events(before, edited)] == ["title", "spec"]
    more = {**after, "process/tasks/001-new.md": after["process/tasks/001-new.md"] + "More.\n"}
    assert [e.kind for e in events(before, more)] == ["title", "description"]


def test_unchanged_specs_are_never_read() -> None:
    state = apply(EMPTY, *(Create(f"Task {n}", description=f"d{n}") for n in range(1, 6)))
    after = apply(state, SetStatus(TaskId(3), Status.DONE), Update(TaskId(4), title="Four"))
    read: list[str] = []

    def reader(source: State) -> Callable[[str], str | None]:
        def read_path(path: str) -> str | None:
            read.append(path)
            return source.get(path)

        return read_path

    found = diff(reader(state), reader(after), changed(state, after))
    assert brief(found) == [
        ("status", "#003", "TODO", "DONE"),
        ("title", "#004", "Task 4", "Four"),
    ]
    assert set(read) == {INDEX_PATH, "process/tasks/004-task-4.md"}
    assert diff(reader(state), reader(after), frozenset()) == []


def test_order_after_file_order_then_deletions_then_conflicts() -> None:
    state = apply(EMPTY, Create("A"), Create("B"), Create("C"))
    after = apply(
        state,
        Delete(TaskId(1)),
        Create("D"),
        SetStatus(TaskId(3), Status.DONE),
        Update(TaskId(2), title="B2"),
        SetStatus(TaskId(2), Status.BLOCKED),
    )
    kept = records.parse(after[RECORDS_PATH])
    conflict = Conflict(TaskId(3), "status", "TODO", "DONE", "BLOCKED", "DONE")
    after[RECORDS_PATH] = records.render(kept.with_conflicts((conflict,))) or ""
    assert brief(events(state, after)) == [
        ("status", "#002", "TODO", "BLOCKED"),
        ("title", "#002", "B", "B2"),
        ("status", "#003", "TODO", "DONE"),
        ("created", "#004", None, "D"),
        ("deleted", "#001", "A", None),
        ("conflict", "#003", None, "#003 status: kept DONE (set aside: BLOCKED)"),
    ]


def test_only_new_conflicts_are_events() -> None:
    first = Conflict(TaskId(1), "title", "A", "B", "C", "B")
    second = Conflict(None, "text", None, "x", "y", "x")
    base = records.parse(ONE[RECORDS_PATH])
    before = {**ONE, RECORDS_PATH: records.render(base.with_conflicts((first,))) or ""}
    both = base.with_conflicts((first, second))
    after = {**ONE, RECORDS_PATH: records.render(both) or ""}
    (event,) = events(before, after)
    assert (event.kind, event.task, event.before) == ("conflict", None, None)
    assert event.after == conflict_text(second) == "lines outside tasks: kept x (set aside: y)"
    assert (event.title, event.status) == ("", "")
    assert events(after, before) == []  # a resolved conflict is no event


def test_conflict_texts() -> None:
    spec = Conflict(TaskId(2), "spec", "a", "b", "c", "b")
    deleted = Conflict(TaskId(2), "deleted", "a", None, "c", "c")
    long = Conflict(TaskId(2), "description", None, "x" * 80, "one\ntwo\nthree", "x" * 80)
    assert conflict_text(spec).startswith("#002 spec: both sides changed the same lines")
    assert conflict_text(deleted) == (
        "#002: deleted on one side, changed on the other; kept the change"
    )
    assert conflict_text(long) == (
        f"#002 description: kept {'x' * 59}… (set aside: one (+2 lines))"
    )


def test_repeated_ids_are_matched_by_rank() -> None:
    line = "- [{}] Same [#001](https://example.com)\n"
    before = {INDEX_PATH: line.format(" ") + line.format(" ")}
    after = {INDEX_PATH: line.format(" ") + line.format("x")}
    assert brief(events(before, after)) == [("status", "#001", "TODO", "DONE")]


def test_to_json() -> None:
    event = Event("status", TaskId(7, "md#"), "TODO", "DONE", "c0ffee", title="T", status="DONE")
    assert event.to_json() == {
        "kind": "status",
        "task": "md#007",
        "before": "TODO",
        "after": "DONE",
        "commit": "c0ffee",
        "title": "T",
        "status": "DONE",
        "operation": "",
        "workspace": "",
        "author": "",
        "time": 0,
        "offset_minutes": 0,
    }
    assert Event("conflict", None, None, "x").to_json()["task"] is None


# -- properties -----------------------------------------------------------------------------------

titles = (
    st.text(alphabet="abcdefghij XYZ-.!0123", min_size=1, max_size=12).map(str.strip).filter(bool)
)
statuses = st.sampled_from(list(Status))


@st.composite
def stores(draw: st.DrawFn) -> State:
    count = draw(st.integers(min_value=0, max_value=6))
    made = [Create(draw(titles), draw(st.sampled_from(("", "why")))) for _ in range(count)]
    return apply(EMPTY, *made)


@given(stores())
def test_no_change_no_events(state: State) -> None:
    assert diff(state.get, state.get) == []
    assert diff(state.get, state.get, frozenset()) == []


@given(stores(), st.data())
def test_created_and_deleted_swap(state: State, data: st.DataObject) -> None:
    ids = [entry.id for entry in Index.parse(state[INDEX_PATH]).tasks]
    gone = data.draw(st.lists(st.sampled_from(ids), unique=True) if ids else st.just([]))
    added = data.draw(st.lists(titles, max_size=3))
    after = apply(state, *(Delete(i) for i in gone), *(Create(t) for t in added))
    forward, backward = events(state, after), events(after, state)
    assert sorted((e.task, e.after) for e in forward if e.kind == "created") == sorted(
        (e.task, e.before) for e in backward if e.kind == "deleted"
    )
    assert sorted((e.task, e.before) for e in forward if e.kind == "deleted") == sorted(
        (e.task, e.after) for e in backward if e.kind == "created"
    )
    assert {e.kind for e in forward} <= {"created", "deleted"}
    assert len(forward) == len(gone) + len(added)


@given(stores(), st.data())
def test_status_and_title_edits_are_exactly_those_events(state: State, data: st.DataObject) -> None:
    entries = Index.parse(state[INDEX_PATH]).tasks
    expected = []
    operations: list[Op] = []
    for entry in entries:
        status = data.draw(st.none() | statuses)
        title = data.draw(st.none() | titles)
        if status is not None:
            operations.append(SetStatus(entry.id, status))
            if status is not entry.status:
                expected.append(("status", str(entry.id), entry.status.value, status.value))
        if title is not None:
            operations.append(Update(entry.id, title=title))
            if title != entry.title:
                expected.append(("title", str(entry.id), entry.title, title))
    assert brief(events(state, apply(state, *operations))) == expected


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_two_indexes_give_events_without_failing(one: str, two: str) -> None:
    found = diff({INDEX_PATH: one}.get, {INDEX_PATH: two}.get)
    assert {e.kind for e in found} <= set(KINDS)
    assert diff({INDEX_PATH: one}.get, {INDEX_PATH: one}.get) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_documented(kind: str) -> None:
    from pathlib import Path

    usage = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text("utf-8")
    assert f"| `{kind}` |" in usage, f"docs/usage.md's table of watch events lacks {kind}"
