"""Pure task operations over a snapshot of the ref."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasksync import records
from tasksync.errors import (
    AmbiguousTaskId,
    InvalidDescription,
    InvalidTitle,
    PreconditionFailed,
    TaskNotFound,
)
from tasksync.markdown import RECORDS_PATH, Index
from tasksync.model import Status, Task, TaskId
from tasksync.operations import (
    Change,
    Create,
    Delete,
    SetStatus,
    Snapshot,
    Update,
    initial_change,
    task_record,
)
from tasksync.spec import context, spec_title

SPEC_157 = "process/tasks/157-enhance-task-sync.md"
INDEX = (
    "# Tasks\n"
    "\n"
    "Intro prose that must survive.\n"
    "\n"
    "- [x] Add BLOCKED Status Support [#155](process/tasks/155-add-blocked-status-support.md)\n"
    "- [+] Add Google Tasks Backend Support "
    "[#154](process/tasks/154-add-google-tasks-backend-support.md)\n"
    f"- [ ] Enhance task sync [#157]({SPEC_157}) (see #154)\n"
    "  - Sessions must see each other's updates.\n"
    "  - Ids are allocated under CAS.\n"
    "\n"
    "```\n"
    "- [ ] Example [#999](process/tasks/999-example.md)\n"
    "```\n"
)
SPEC_TEXT = (
    "# Task #157: Enhance task sync\n"
    "\n"
    "## Context\n"
    "\n"
    "The spec's context.\n"
    "\n"
    "## Requirements\n"
    "\n"
    "- r1\n"
)


def snapshot(index: str = INDEX, files: Mapping[str, str] | None = None) -> Snapshot:
    stored = dict(files if files is not None else {SPEC_157: SPEC_TEXT})
    return Snapshot(Index.parse(index), stored.get)


def as_change(result: Change | Task) -> Change:
    assert isinstance(result, Change), f"expected a Change, got {result!r}"
    return result


def trailers(change: Change) -> dict[str, str]:
    return dict(change.trailers)


# -- create -------------------------------------------------------------------------------------


def test_create_allocates_the_next_id_and_writes_a_spec() -> None:
    change = Create("Split the store", description="Why:\nit is too big.").apply(snapshot())
    assert change.index is not None
    new_line = "- [ ] Split the store [#158](process/tasks/158-split-the-store.md)"
    assert change.index.text == INDEX.replace(
        "  - Ids are allocated under CAS.\n", f"  - Ids are allocated under CAS.\n{new_line}\n"
    )
    ((path, text), (kept_path, kept)) = change.files
    assert kept_path == RECORDS_PATH
    assert 158 in records.parse(kept).uid_map()  # the new task's identity
    assert path == "process/tasks/158-split-the-store.md"
    assert text is not None
    assert text.startswith("# Task #158: Split the store\n")
    assert spec_title(text) == "Split the store"
    assert context(text) == "Why:\nit is too big."
    assert change.task == Task(
        TaskId(158), "Split the store", Status.TODO, path, "Why:\nit is too big."
    )
    assert change.summary == "#158: created \u201cSplit the store\u201d (TODO)"
    assert change.trailers == (
        ("Tasksync-Operation", "create"),
        ("Tasksync-Task", "#158"),
        ("Tasksync-Title", "Split the store"),
        ("Tasksync-Status", "TODO"),
    )


def test_create_in_an_empty_index() -> None:
    change = Create("First").apply(snapshot("# Tasks\n", {}))
    assert change.index is not None
    assert change.index.text == "# Tasks\n\n- [ ] First [#001](process/tasks/001-first.md)\n"
    assert change.files[0][0] == "process/tasks/001-first.md"
    assert change.summary.startswith("#001: created ")


def test_create_follows_md_id_style_and_relative_links() -> None:
    index = "- [ ] A [md#041](tasks/041-a.md)\n\n- [x] B [md#042](tasks/042-b.md)\n"
    change = Create("New one!", status=Status.IN_PROGRESS).apply(snapshot(index, {}))
    assert change.index is not None
    assert change.index.text == index + "\n- [+] New one! [md#043](tasks/043-new-one-.md)\n"
    assert change.files[0][0] == "process/tasks/043-new-one-.md"
    assert change.task is not None
    assert change.task.id == TaskId(43, "md#")
    assert change.task.status is Status.IN_PROGRESS
    assert trailers(change)["Tasksync-Task"] == "md#043"
    assert trailers(change)["Tasksync-Status"] == "IN-PROGRESS"
    assert change.summary == "md#043: created \u201cNew one!\u201d (IN-PROGRESS)"


def test_create_skips_ids_of_unknown_checkbox_lines() -> None:
    index = "- [ ] A [#001](process/tasks/001-a.md)\n- [?] Idea [#009](process/tasks/009-idea.md)\n"
    change = Create("B").apply(snapshot(index, {}))
    assert change.task is not None
    assert change.task.id == TaskId(10)


def test_create_with_a_given_spec_retitles_it_and_sets_context() -> None:
    given_spec = "# Task: Draft\n\n## Requirements\n\n- keep me\n"
    change = Create("Final", description="ctx", spec=given_spec).apply(snapshot("", {}))
    ((_, text), _) = change.files
    assert text is not None
    assert text.startswith("# Task: Final\n")
    assert context(text) == "ctx"
    assert "## Requirements\n\n- keep me\n" in text


@pytest.mark.parametrize("title", ["", "  ", "a\nb", "tab\there", "rtl\u202eoverride", "x](y"])
def test_create_rejects_bad_titles(title: str) -> None:
    with pytest.raises(InvalidTitle):
        Create(title).apply(snapshot())


def test_create_rejects_a_description_that_starts_a_section() -> None:
    with pytest.raises(InvalidDescription):
        Create("T", description="ok\n## Requirements").apply(snapshot())


# -- set status ---------------------------------------------------------------------------------


def test_set_status_changes_one_character() -> None:
    change = as_change(SetStatus(TaskId.parse("157"), Status.IN_PROGRESS).apply(snapshot()))
    assert change.index is not None
    new = change.index.text
    assert len(new) == len(INDEX)
    assert [i for i, (a, b) in enumerate(zip(INDEX, new, strict=True)) if a != b] == [
        INDEX.index("- [ ] Enhance") + 3
    ]
    assert change.files == ()
    assert change.summary == "#157: status TODO \u2192 IN-PROGRESS"
    assert change.trailers == (
        ("Tasksync-Operation", "set-status"),
        ("Tasksync-Task", "#157"),
        ("Tasksync-Status", "TODO -> IN-PROGRESS"),
    )
    assert change.message == (
        "#157: status TODO \u2192 IN-PROGRESS\n"
        "\n"
        "Tasksync-Operation: set-status\n"
        "Tasksync-Task: #157\n"
        "Tasksync-Status: TODO -> IN-PROGRESS\n"
    )
    assert change.task is not None
    assert change.task.status is Status.IN_PROGRESS
    assert change.task.description == "The spec's context."


def test_set_status_done_writes_lower_case_x() -> None:
    change = as_change(SetStatus(TaskId(154), Status.DONE).apply(snapshot()))
    assert change.index is not None
    assert "- [x] Add Google Tasks Backend Support [#154]" in change.index.text


def test_set_status_with_matching_expectation() -> None:
    change = as_change(
        SetStatus(TaskId(154), Status.IN_REVIEW, expect=Status.IN_PROGRESS).apply(snapshot())
    )
    assert change.task is not None
    assert change.task.status is Status.IN_REVIEW


def test_set_status_expectation_mismatch_names_the_current_status() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        SetStatus(TaskId(157), Status.DONE, expect=Status.IN_PROGRESS).apply(snapshot())
    error = caught.value
    assert error.task_id == "#157"
    assert error.field == "status"
    assert error.expected == "IN-PROGRESS"
    assert error.actual == "TODO"
    assert "TODO" in str(error)
    assert "#157" in str(error)


def test_set_status_to_the_current_status_is_a_no_op() -> None:
    result = SetStatus(TaskId(155), Status.DONE).apply(snapshot())
    assert not isinstance(result, Change)
    assert result == Task(
        TaskId(155),
        "Add BLOCKED Status Support",
        Status.DONE,
        "process/tasks/155-add-blocked-status-support.md",
        "",
    )


def test_set_status_on_upper_case_x_to_done_is_a_no_op() -> None:
    index = "- [X] Done [#001](process/tasks/001-done.md)\n"
    result = SetStatus(TaskId(1), Status.DONE).apply(snapshot(index, {}))
    assert isinstance(result, Task)
    assert result.status is Status.DONE


def test_set_status_of_unknown_id_raises_task_not_found() -> None:
    with pytest.raises(TaskNotFound) as caught:
        SetStatus(TaskId(42), Status.DONE).apply(snapshot())
    assert caught.value.task_id == "#042"


def test_set_status_of_duplicate_id_is_ambiguous() -> None:
    index = "- [ ] A [#003](a.md)\n- [ ] B [#003](b.md)\n"
    with pytest.raises(AmbiguousTaskId):
        SetStatus(TaskId(3), Status.DONE).apply(snapshot(index, {}))


def test_fenced_example_cannot_be_changed() -> None:
    with pytest.raises(TaskNotFound):
        SetStatus(TaskId(999), Status.DONE).apply(snapshot())


# -- delete -------------------------------------------------------------------------------------


def test_delete_removes_line_bullets_and_spec() -> None:
    change = Delete(TaskId.parse("#157")).apply(snapshot())
    assert change.index is not None
    assert change.index.text == (
        "# Tasks\n"
        "\n"
        "Intro prose that must survive.\n"
        "\n"
        "- [x] Add BLOCKED Status Support [#155](process/tasks/155-add-blocked-status-support.md)\n"
        "- [+] Add Google Tasks Backend Support "
        "[#154](process/tasks/154-add-google-tasks-backend-support.md)\n"
        "\n"
        "```\n"
        "- [ ] Example [#999](process/tasks/999-example.md)\n"
        "```\n"
    )
    assert change.files[0] == (SPEC_157, None)
    assert change.files[1][0] == RECORDS_PATH  # #157 is never given to another task
    assert records.parse(change.files[1][1]).highest == 157
    assert change.summary == "#157: deleted \u201cEnhance task sync\u201d"
    assert change.trailers == (
        ("Tasksync-Operation", "delete"),
        ("Tasksync-Task", "#157"),
        ("Tasksync-Title", "Enhance task sync"),
    )
    assert change.task is not None
    assert change.task.title == "Enhance task sync"


def test_delete_without_a_spec_file_removes_only_the_line() -> None:
    change = Delete(TaskId(154)).apply(snapshot())
    assert [path for path, _ in change.files] == [RECORDS_PATH]
    assert change.index is not None
    assert "[#154]" not in change.index.text


def test_delete_with_relative_link_removes_the_spec_under_process() -> None:
    index = "- [ ] A [#001](tasks/001-a.md)\n- [ ] B [#002](tasks/002-b.md)\n"
    change = Delete(TaskId(1)).apply(snapshot(index, {"process/tasks/001-a.md": "# A\n"}))
    assert change.files[0] == ("process/tasks/001-a.md", None)
    assert change.index is not None
    assert change.index.text == "- [ ] B [#002](tasks/002-b.md)\n"


# -- update -------------------------------------------------------------------------------------


def test_update_title_rewrites_the_title_and_the_spec_heading() -> None:
    change = as_change(Update(TaskId(157), title="Sync tasks everywhere").apply(snapshot()))
    assert change.index is not None
    assert change.index.text == INDEX.replace(
        "- [ ] Enhance task sync [#157]", "- [ ] Sync tasks everywhere [#157]"
    )
    ((path, text),) = change.files
    assert path == SPEC_157
    assert text == SPEC_TEXT.replace("Enhance task sync", "Sync tasks everywhere")
    assert change.summary == (
        "#157: changed title \u201cEnhance task sync\u201d \u2192 \u201cSync tasks everywhere\u201d"
    )
    assert trailers(change) == {
        "Tasksync-Operation": "update",
        "Tasksync-Task": "#157",
        "Tasksync-Fields": "title",
        "Tasksync-Title": "Sync tasks everywhere",
    }
    assert change.task is not None
    assert change.task.title == "Sync tasks everywhere"


def test_update_description_sets_context_and_bullets() -> None:
    change = as_change(Update(TaskId(157), description="New one.\nNew two.").apply(snapshot()))
    assert change.index is not None
    assert change.index.text == INDEX.replace(
        "  - Sessions must see each other's updates.\n  - Ids are allocated under CAS.\n",
        "  - New one.\n  - New two.\n",
    )
    ((path, text),) = change.files
    assert path == SPEC_157
    assert text is not None
    assert context(text) == "New one.\nNew two."
    assert text.endswith("## Requirements\n\n- r1\n")
    assert text.startswith("# Task #157: Enhance task sync\n")
    assert change.summary == "#157: changed description"
    assert trailers(change)["Tasksync-Fields"] == "description"
    assert change.task is not None
    assert change.task.description == "New one.\nNew two."


def test_update_description_when_only_the_bullets_differ() -> None:
    spec = SPEC_TEXT.replace("The spec's context.", "Wanted.")
    change = as_change(
        Update(TaskId(157), description="Wanted.").apply(snapshot(files={SPEC_157: spec}))
    )
    assert change.index is not None
    assert "  - Wanted.\n" in change.index.text
    assert change.files == ()
    assert change.summary == "#157: changed description"
    assert trailers(change)["Tasksync-Fields"] == "description"


def test_update_description_creates_a_missing_spec() -> None:
    change = as_change(Update(TaskId(154), description="Now described.").apply(snapshot()))
    ((path, text),) = change.files
    assert path == "process/tasks/154-add-google-tasks-backend-support.md"
    assert text is not None
    assert spec_title(text) == "Add Google Tasks Backend Support"
    assert context(text) == "Now described."
    assert change.index is None


def test_update_description_keeps_prose_of_a_spec_without_context() -> None:
    spec = "# Task #157: Enhance task sync\n\nNotes written by hand.\n\n## Requirements\n\n- r1\n"
    snap = snapshot(files={SPEC_157: spec})
    first = as_change(Update(TaskId(157), description="First.").apply(snap))
    assert first.task is not None
    assert first.task.description == "First."
    ((_, text),) = first.files
    assert text is not None
    assert "Notes written by hand." in text
    assert first.index is not None
    second = as_change(
        Update(TaskId(157), description="Second.").apply(
            Snapshot(first.index, {SPEC_157: text}.get)
        )
    )
    ((_, final),) = second.files
    assert final is not None
    assert "Notes written by hand." in final
    assert context(final) == "Second."


def test_update_spec_replaces_the_file() -> None:
    new_spec = "# Task #157: Enhance task sync\n\nfree text\n"
    change = as_change(Update(TaskId(157), spec=new_spec).apply(snapshot()))
    assert change.files == ((SPEC_157, new_spec),)
    assert change.index is None
    assert change.summary == "#157: changed spec"
    assert trailers(change)["Tasksync-Fields"] == "spec"


def test_update_with_current_values_is_a_no_op() -> None:
    result = Update(
        TaskId(157), title="Enhance task sync", description="The spec's context."
    ).apply(
        snapshot(
            INDEX.replace(
                "  - Sessions must see each other's updates.\n  - Ids are allocated under CAS.\n",
                "",
            )
        )
    )
    assert isinstance(result, Task)
    assert result.title == "Enhance task sync"
    assert result.description == "The spec's context."


def test_update_rejects_bad_title_and_description() -> None:
    with pytest.raises(InvalidTitle):
        Update(TaskId(157), title="two\nlines").apply(snapshot())
    with pytest.raises(InvalidDescription):
        Update(TaskId(157), description="# Heading").apply(snapshot())


def test_update_unknown_id() -> None:
    with pytest.raises(TaskNotFound):
        Update(TaskId(7), title="x").apply(snapshot())


# -- records and init ---------------------------------------------------------------------------


def test_task_description_comes_from_context_else_bullets() -> None:
    snap = snapshot()
    entry = snap.index.find(TaskId(157))
    assert snap.task(entry).description == "The spec's context."
    assert task_record(entry, lambda path: None).description == (
        "Sessions must see each other's updates.\nIds are allocated under CAS."
    )
    no_context = {SPEC_157: "# Task #157: Enhance task sync\n\n## Requirements\n"}
    assert task_record(entry, no_context.get).description == (
        "Sessions must see each other's updates.\nIds are allocated under CAS."
    )


def test_initial_change() -> None:
    change = initial_change()
    assert change.index is not None
    assert change.index.text == "# Tasks\n"
    assert change.summary == "tasks: initialized the task store"
    assert change.trailers == (("Tasksync-Operation", "init"),)
    assert change.message == "tasks: initialized the task store\n\nTasksync-Operation: init\n"


# -- sequences of operations --------------------------------------------------------------------

op_titles = st.lists(
    st.sampled_from(["Fix", "sync", "Ünïcode", "[WIP]", "C++", "a/b", "日本", "again)", "#3"]),
    min_size=1,
    max_size=4,
).map(" ".join)
op_descriptions = st.lists(
    st.sampled_from(["line one", "line two", "### sub", "- bullet", ""]), max_size=3
).map("\n".join)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), op_titles, op_descriptions),
        st.tuples(st.just("status"), st.integers(0, 20), st.sampled_from(list(Status))),
        st.tuples(st.just("title"), st.integers(0, 20), op_titles),
        st.tuples(st.just("describe"), st.integers(0, 20), op_descriptions),
        st.tuples(st.just("delete"), st.integers(0, 20), st.none()),
    ),
    max_size=10,
)
PROSE_LINES = ("# Tasks", "", "Prose kept between edits.", "<!-- note -->")


Model = dict[int, list[object]]


def run_operation(
    op: str, arg: object, value: object, snap: Snapshot, model: Model, *, given: list[int]
) -> object:
    """Apply one generated operation to ``snap`` and to ``model``; return the result.

    ``given`` holds the highest id ever given out: a deleted task's id is never given again.
    """
    if op == "create":
        assert isinstance(arg, str)
        assert isinstance(value, str)
        number = max(max(model, default=0), given[0]) + 1
        given[0] = number
        change = Create(arg, description=value).apply(snap)
        assert change.task is not None
        assert change.task.id.number == number
        model[number] = [arg, Status.TODO, value.strip()]
        return change
    if not model:
        return None
    assert isinstance(arg, int)
    numbers = sorted(model)
    number = numbers[arg % len(numbers)]
    task_id = TaskId.parse(str(number))
    if op == "status":
        assert isinstance(value, Status)
        result = SetStatus(task_id, value).apply(snap)
        assert isinstance(result, Change) == (model[number][1] is not value)
        model[number][1] = value
        return result
    if op == "title":
        assert isinstance(value, str)
        model[number][0] = value
        return Update(task_id, title=value).apply(snap)
    if op == "describe":
        assert isinstance(value, str)
        model[number][2] = value.strip()
        return Update(task_id, description=value).apply(snap)
    del model[number]
    given[0] = max(given[0], number)
    return Delete(task_id).apply(snap)


@given(
    operations,
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["#", "md#"]),
)
def test_operation_sequences_match_a_simple_model(
    ops: list[tuple[str, object, object]],
    eol: str,
    blank_separated: bool,
    final_newline: bool,
    prefix: str,
) -> None:
    lines = [*PROSE_LINES, ""]
    model: Model = {}
    for number in (1, 2, 5):
        if blank_separated and number != 1:
            lines.append("")
        lines.append(f"- [ ] Task {number} [{prefix}{number:03d}](tasks/{number:03d}-task.md)")
        model[number] = [f"Task {number}", Status.TODO, ""]
        if number == 2:
            lines.extend(["  - seed one", "  - seed two"])
            model[number][2] = "seed one\nseed two"
    text = eol.join(lines) + (eol if final_newline else "")
    files: dict[str, str] = {}

    style = prefix
    given = [5]
    for op, arg, value in ops:
        if op == "create" and not model:
            style = "#"  # a file without tasks has no id style: new ids are #NNN
        snap = Snapshot(Index.parse(text), files.get)
        result = run_operation(op, arg, value, snap, model, given=given)
        if isinstance(result, Change):
            if result.index is not None:
                text = result.index.text
            for path, content in result.files:
                if content is None:
                    files.pop(path, None)
                else:
                    files[path] = content
            assert result.message.startswith(result.summary + "\n\n")
            assert result.message.endswith("\n")

        after = Snapshot(Index.parse(text), files.get)
        assert after.index.text == text
        assert [
            [t.id.number, t.title, t.status, after.task(t).description] for t in after.index.tasks
        ] == [[n, *fields] for n, fields in sorted(model.items())]
        assert all(t.id.prefix == style for t in after.index.tasks)
        assert text.startswith(eol.join(PROSE_LINES))
        if text:
            assert text.endswith(eol) == final_newline
        assert "\n" not in text.replace(eol, "")
