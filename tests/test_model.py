"""Statuses, task ids, titles and slugs."""

from __future__ import annotations

import string

import pytest
from conftest import CHECKBOXES, ID_FORMS
from hypothesis import given
from hypothesis import strategies as st

from tasksync.errors import InvalidStatus, InvalidTaskId, InvalidTitle, TaskSyncError
from tasksync.model import CHECKBOX_CHARS, Status, TaskId, check_title, slugify

STATUS_NAMES = ("TODO", "IN-PROGRESS", "IN-REVIEW", "DONE", "BLOCKED", "CLOSED")

# -- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "status"),
    CHECKBOXES,
)
def test_checkbox_character_maps_to_status(char: str, status: Status) -> None:
    assert Status.from_checkbox(char) is status


@pytest.mark.parametrize("char", ["?", "*", "o", "/", "v", "", "  ", "xx", "\t"])
def test_unknown_checkbox_character_has_no_status(char: str) -> None:
    assert Status.from_checkbox(char) is None


def test_checkbox_chars_are_exactly_the_documented_ones() -> None:
    assert frozenset(" +-xX~!") == CHECKBOX_CHARS


@pytest.mark.parametrize(
    ("status", "char"),
    [
        (Status.TODO, " "),
        (Status.IN_PROGRESS, "+"),
        (Status.IN_REVIEW, "-"),
        (Status.DONE, "x"),
        (Status.BLOCKED, "~"),
        (Status.CLOSED, "!"),
    ],
)
def test_status_writes_its_checkbox(status: Status, char: str) -> None:
    assert status.checkbox == char
    assert Status.from_checkbox(status.checkbox) is status


def test_status_names_are_upper_case_with_hyphen() -> None:
    assert tuple(s.value for s in Status) == STATUS_NAMES


def test_only_done_and_closed_are_finished() -> None:
    assert {s for s in Status if s.is_finished} == {Status.DONE, Status.CLOSED}


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("todo", Status.TODO),
        ("Todo", Status.TODO),
        ("TODO", Status.TODO),
        ("in-progress", Status.IN_PROGRESS),
        ("In-Progress", Status.IN_PROGRESS),
        ("in_progress", Status.IN_PROGRESS),
        ("IN-REVIEW", Status.IN_REVIEW),
        ("in-review", Status.IN_REVIEW),
        ("done", Status.DONE),
        ("Blocked", Status.BLOCKED),
        ("cLoSeD", Status.CLOSED),
        (" done ", Status.DONE),
    ],
)
def test_status_parse_accepts_names_in_any_case(text: str, status: Status) -> None:
    assert Status.parse(text) is status


@given(st.sampled_from(list(Status)), st.lists(st.booleans(), min_size=12, max_size=12))
def test_status_parse_any_casing(status: Status, upper: list[bool]) -> None:
    text = "".join(c.upper() if u else c.lower() for c, u in zip(status.value, upper, strict=False))
    assert Status.parse(text) is status


@pytest.mark.parametrize("text", ["", "started", "DONEE", "in progres", "#1", "todo!", "WIP"])
def test_unknown_status_is_an_error_listing_every_valid_name(text: str) -> None:
    with pytest.raises(InvalidStatus) as caught:
        Status.parse(text)
    error = caught.value
    assert isinstance(error, TaskSyncError)
    assert isinstance(error, ValueError)
    assert error.text == text
    assert error.valid == STATUS_NAMES
    for name in STATUS_NAMES:
        assert name in str(error)
    assert repr(text) in str(error)


@given(st.text(max_size=20))
def test_status_parse_fails_only_with_invalid_status(text: str) -> None:
    try:
        status = Status.parse(text)
    except InvalidStatus as error:
        assert error.valid == STATUS_NAMES
    else:
        assert isinstance(status, Status)


# -- task ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "text", "digits"),
    [
        (TaskId(1), "#001", "001"),
        (TaskId(157), "#157", "157"),
        (TaskId(1042), "#1042", "1042"),
        (TaskId(157, "md#"), "md#157", "157"),
        (TaskId(9, "md#"), "md#009", "009"),
    ],
)
def test_task_id_is_written_zero_padded(task_id: TaskId, text: str, digits: str) -> None:
    assert str(task_id) == text
    assert task_id.digits == digits


@pytest.mark.parametrize(("text", "expected"), ID_FORMS)
def test_task_id_input_forms(text: str, expected: TaskId) -> None:
    parsed = TaskId.parse(text)
    assert parsed == expected
    assert parsed.prefix == expected.prefix


@pytest.mark.parametrize(
    "text",
    [
        "",
        "#",
        "md#",
        "task#",
        "abc",
        "1.5",
        "#-1",
        "-1",
        "12a",
        "x#12",
        "md157",
        "# 1",
        "1 2",
        "##1",
    ],
)
def test_invalid_task_id_forms(text: str) -> None:
    with pytest.raises(InvalidTaskId) as caught:
        TaskId.parse(text)
    assert caught.value.text == text
    assert isinstance(caught.value, ValueError)
    assert repr(text) in str(caught.value)


@given(st.integers(min_value=0, max_value=999_999_999), st.sampled_from(["#", "md#"]))
def test_task_id_reads_back_what_it_writes(number: int, prefix: str) -> None:
    task_id = TaskId(number, prefix)
    assert TaskId.parse(str(task_id)) == task_id
    assert TaskId.parse(task_id.digits) == TaskId(number)
    assert TaskId.parse(f"task#{number}") == TaskId(number)


@given(st.text(max_size=16))
def test_task_id_parse_fails_only_with_invalid_task_id(text: str) -> None:
    try:
        parsed = TaskId.parse(text)
    except InvalidTaskId as error:
        assert error.text == text
    else:
        assert parsed.prefix in ("#", "md#")
        assert parsed.number >= 0


# -- slugs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        (
            "Enhance Task Operations Synchronization Across Workspaces",
            "enhance-task-operations-synchronization-across-workspaces",
        ),
        ("Add BLOCKED Status Support", "add-blocked-status-support"),
        ("Add Google Tasks Backend Support", "add-google-tasks-backend-support"),
        ("Fix: the bug!", "fix-the-bug-"),
        ("(WIP) thing", "-wip-thing"),
        ("...dots...", "-dots-"),
        ("a  --  b", "a-b"),
        ("Version 2.0 release", "version-2-0-release"),
        ("Ünïcode café", "-n-code-caf-"),
        ("", ""),
        ("!!!", "-"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


_SLUG_CHARS = string.ascii_lowercase + string.digits


@given(st.text(max_size=40))
def test_slug_properties(title: str) -> None:
    slug = slugify(title)
    assert set(slug) <= set(_SLUG_CHARS + "-")
    assert "--" not in slug
    lowered = title.lower()
    assert slug.replace("-", "") == "".join(c for c in lowered if c in _SLUG_CHARS)
    if lowered:
        assert slug.startswith("-") == (lowered[0] not in _SLUG_CHARS)
        assert slug.endswith("-") == (lowered[-1] not in _SLUG_CHARS)


# -- titles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "",
        "   ",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\x00b",
        "a\x1bb",
        "a\x7fb",
        "a\x85b",
        "a\u2028b",
        "a\u2029b",
        "a\u202eb",
        "a\u202db",
        "a\u2066b",
        "a\u2067b",
        "a\u2068b",
        "a\u2069b",
        "a\u200fb",
        "see [x](http://example.com)",
        "a](b",
    ],
)
def test_check_title_rejects(title: str) -> None:
    with pytest.raises(InvalidTitle) as caught:
        check_title(title)
    assert caught.value.title == title
    assert caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("title", "stored"),
    [
        ("Add BLOCKED Status Support", "Add BLOCKED Status Support"),
        ("  padded  ", "padded"),
        ("Fix ünïcode — 日本語 🚀", "Fix ünïcode — 日本語 🚀"),
        ("C++ [draft] v2 (beta)", "C++ [draft] v2 (beta)"),
        ("Use `code` and *emphasis*", "Use `code` and *emphasis*"),
        ("Ref #157 and md#12", "Ref #157 and md#12"),
        ("x", "x"),
        ("עברית", "עברית"),
    ],
)
def test_check_title_accepts_ordinary_text(title: str, stored: str) -> None:
    assert check_title(title) == stored


@given(st.text(max_size=30))
def test_check_title_fails_only_with_invalid_title(title: str) -> None:
    try:
        stored = check_title(title)
    except InvalidTitle as error:
        assert error.title == title
    else:
        assert stored
        assert stored == stored.strip()
        assert stored in title
        assert "](" not in stored
        assert not any(c in stored for c in "\n\r\t\x00\u2028\u2029\u202e")


def test_bracket_then_spaced_parenthesis_is_not_a_link_and_is_accepted() -> None:
    # CommonMark needs "](" with nothing between for a link; "[WIP] (again)" is plain text.
    assert check_title("[WIP] (again)") == "[WIP] (again)"
