"""Spec files: the title heading and the ``## Context`` section."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasksync.errors import InvalidDescription, TaskSyncError
from tasksync.model import TaskId
from tasksync.spec import check_description, context, new_spec, spec_title, with_context, with_title

SPEC = (
    "# Task #157: Enhance Task Operations Synchronization Across Workspaces\n"
    "\n"
    "## Context\n"
    "\n"
    "Sessions must see each other's updates at once.\n"
    "\n"
    "### Background\n"
    "\n"
    "Two workspaces created the same id.\n"
    "\n"
    "## Status\n"
    "\n"
    "DONE\n"
    "\n"
    "## Requirements\n"
    "\n"
    "- one\n"
)

# -- titles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Task #157: Enhance sync\n", "Enhance sync"),
        ("# Task md#157: Enhance sync\n", "Enhance sync"),
        ("# Task #001: Fix: the colon\n", "Fix: the colon"),
        ("# Task: Enhance sync\n", "Enhance sync"),
        ("# Enhance sync\n", "Enhance sync"),
        ("# Enhance sync", "Enhance sync"),
        ("# Task #157: Enhance sync\r\n\r\n## Context\r\n", "Enhance sync"),
        ("Intro line\n\n# Task: Later heading\n", "Later heading"),
        ("# First\n# Second\n", "First"),
        ("## Only a section\n\ntext\n", None),
        ("", None),
        ("#NoSpace\n", None),
        (SPEC, "Enhance Task Operations Synchronization Across Workspaces"),
    ],
)
def test_spec_title(text: str, title: str | None) -> None:
    assert spec_title(text) == title


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Task #157: Old\n\nbody\n", "# Task #157: New title\n\nbody\n"),
        ("# Task: Old\n\nbody\n", "# Task: New title\n\nbody\n"),
        ("# Old\n\nbody\n", "# New title\n\nbody\n"),
        ("# Old\r\n\r\nbody\r\n", "# New title\r\n\r\nbody\r\n"),
        ("# Old", "# New title"),
        ("Intro\n# Task: Old\n## Context\n", "Intro\n# Task: New title\n## Context\n"),
    ],
)
def test_with_title_keeps_the_headings_form(text: str, expected: str) -> None:
    assert with_title(text, TaskId(157), "New title") == expected
    assert spec_title(expected) == "New title"


def test_with_title_writes_the_md_style_id() -> None:
    assert with_title("# Task md#157: Old\n", TaskId(157, "md#"), "New") == "# Task md#157: New\n"


@pytest.mark.parametrize("heading", ["# Task list: cleanup", "# Task force: meeting notes"])
def test_with_title_keeps_a_plain_heading_that_starts_with_task(heading: str) -> None:
    text = f"{heading}\n\nbody\n"
    assert spec_title(text) == heading[2:]
    assert with_title(text, TaskId(157), "New") == "# New\n\nbody\n"


def test_with_title_adds_a_heading_when_there_is_none() -> None:
    edited = with_title("Just text.\n", TaskId(157), "New")
    assert spec_title(edited) == "New"
    assert edited.startswith("# Task #157: New\n")
    assert edited.endswith("Just text.\n")


def test_with_title_touches_only_the_first_heading() -> None:
    edited = with_title(SPEC, TaskId(157), "Renamed")
    old_lines, new_lines = SPEC.splitlines(), edited.splitlines()
    assert new_lines[0] == "# Task #157: Renamed"
    assert new_lines[1:] == old_lines[1:]


# -- context ------------------------------------------------------------------------------------


def test_context_runs_to_the_next_section_and_keeps_subsections() -> None:
    assert context(SPEC) == (
        "Sessions must see each other's updates at once.\n"
        "\n"
        "### Background\n"
        "\n"
        "Two workspaces created the same id."
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("# T\n\n## Context\n\nLast section.\n", "Last section."),
        ("# T\n\n## Context\n", ""),
        ("# T\n\n## context\n\nlower case heading\n", "lower case heading"),
        ("# T\r\n\r\n## Context\r\n\r\none\r\ntwo\r\n\r\n## Next\r\n", "one\ntwo"),
        ("# T\n\n## Status\n\nTODO\n", None),
        ("# T\n\n## Contextual\n\nnot it\n", None),
        ("# T\n\n## Context\n\n# h1 stays\n## Next\n", "# h1 stays"),
        ("", None),
    ],
)
def test_context(text: str, found: str | None) -> None:
    assert context(text) == found


def test_status_section_is_not_the_description() -> None:
    assert "DONE" not in (context(SPEC) or "")


def test_with_context_replaces_only_the_context_body() -> None:
    edited = with_context(SPEC, "New context.\nSecond line.")
    assert context(edited) == "New context.\nSecond line."
    before, _, after = SPEC.partition("## Status\n")
    assert edited.endswith("## Status\n" + after)
    assert edited.startswith(before.split("## Context\n")[0] + "## Context\n")
    assert spec_title(edited) == spec_title(SPEC)


def test_with_context_keeps_crlf() -> None:
    text = "# T\r\n\r\n## Context\r\n\r\nold\r\n\r\n## Next\r\n\r\nkeep\r\n"
    edited = with_context(text, "a\nb")
    assert context(edited) == "a\nb"
    assert "\n" not in edited.replace("\r\n", "")
    assert edited.endswith("## Next\r\n\r\nkeep\r\n")


@pytest.mark.parametrize(
    "text",
    [
        "# Task #157: T\n\n## Requirements\n\n- r\n",
        "# Task #157: T\n",
        "# Task #157: T",
        "# Task #157: T\n\nintro prose\n",
        "no heading at all\n",
        "",
    ],
)
def test_with_context_adds_a_missing_section(text: str) -> None:
    edited = with_context(text, "Added.")
    assert context(edited) == "Added."
    assert spec_title(edited) == spec_title(text)
    for line in text.splitlines():
        assert line in edited.splitlines()
    if "## Requirements" in text:
        assert edited.index("## Context") < edited.index("## Requirements")
        assert edited.endswith("## Requirements\n\n- r\n")


@pytest.mark.parametrize(
    "description",
    [
        "## Requirements",
        "intro\n## Status\nDONE",
        "# A new title",
        "text\r\n## Sneaky\r\n",
        "  ## indented first line is stripped",
    ],
)
def test_check_description_rejects_lines_that_start_a_section(description: str) -> None:
    with pytest.raises(InvalidDescription) as caught:
        check_description(description)
    assert isinstance(caught.value, TaskSyncError)
    assert caught.value.reason


@pytest.mark.parametrize(
    ("description", "stored"),
    [
        ("plain", "plain"),
        ("\n\n  surrounded by blanks  \n\n", "surrounded by blanks"),
        ("one\r\ntwo\r\n", "one\ntwo"),
        ("### a subsection", "### a subsection"),
        ("text ## mid-line", "text ## mid-line"),
        ("first\n  ## indented", "first\n  ## indented"),
        ("#hashtag", "#hashtag"),
        ("", ""),
    ],
)
def test_check_description_accepts(description: str, stored: str) -> None:
    assert check_description(description) == stored


def test_new_spec() -> None:
    text = new_spec(TaskId(157), "Enhance sync", "Line one.\nLine two.")
    assert text.startswith("# Task #157: Enhance sync\n")
    assert spec_title(text) == "Enhance sync"
    assert context(text) == "Line one.\nLine two."
    assert context(new_spec(TaskId(3, "md#"), "T", "")) == ""
    assert new_spec(TaskId(3, "md#"), "T", "").startswith("# Task md#003: T\n")


descriptions = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(["text", "\r", "\n", "\r\n", " ", "## x", "#", "### s"])).map("".join),
)
spec_texts = st.sampled_from(
    [
        SPEC,
        SPEC.replace("\n", "\r\n"),
        "# Task: T\n",
        "# T\n\n## Requirements\n\n- r\n",
        "",
        "## Context\n\nonly\n",
    ]
)


@given(descriptions, spec_texts)
def test_accepted_description_reads_back_from_context(description: str, spec: str) -> None:
    try:
        stored = check_description(description)
    except InvalidDescription:
        return
    edited = with_context(spec, stored)
    assert context(edited) == stored.strip()
    assert spec_title(edited) == spec_title(spec)
    assert context(new_spec(TaskId(1), "T", stored)) == stored.strip()


def test_description_with_extra_carriage_return_reads_back() -> None:
    stored = check_description("one\r\r\ntwo")
    assert "\r\n" not in stored
    assert context(with_context("# T\n\n## Context\n\nold\n", stored)) == stored


@given(st.text(max_size=60))
def test_description_check_fails_only_with_invalid_description(description: str) -> None:
    try:
        stored = check_description(description)
    except InvalidDescription:
        return
    assert stored == stored.strip()
    for line in stored.split("\n"):
        assert not line.startswith(("# ", "## "))


@given(st.text(max_size=200))
def test_spec_readers_never_raise(text: str) -> None:
    title = spec_title(text)
    found = context(text)
    assert title is None or "\n" not in title
    assert found is None or found == found.strip()
