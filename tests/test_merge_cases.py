"""Defects an independent review of the merge found, each pinned by the case that showed it."""

from __future__ import annotations

import pytest

from tasksync import records
from tasksync.errors import FormatError
from tasksync.markdown import Index, _content, line_kind, parse_task_line
from tasksync.merge import merge3


def line(number: int, title: str, box: str = " ") -> str:
    return f"- [{box}] {title} [#{number:03d}](process/tasks/{number:03d}-x.md)\n"


@pytest.mark.parametrize(
    "text",
    [
        "- [ ] " + " [#1](a" * 20_000 + ")\n",  # many id links, one ")" at the end
        "- [ ] " + " [#1](a)" * 20_000 + "\n",
        "- [ ] " + " [#1" * 50_000 + "](x)\n",
        "- [ ] " + "x" * 200_000 + " [#1](y)\n",
    ],
)
def test_a_long_task_like_line_is_read_in_one_pass(text: str) -> None:
    # The first pattern for this rescanned the rest of the line at every position: a 56 KB
    # line took six minutes, and every merge of a file holding it with it.
    parsed = parse_task_line(_content(text))
    kind = line_kind(text)
    assert kind[1] == (0 if parsed is None else parsed[2].number)
    base = line(1, "A")
    merged = merge3(base, base + text, line(1, "A", "x"))
    assert merged.text == line(1, "A", "x") + text


def test_a_task_kept_against_a_delete_does_not_repeat_the_lines_before_it() -> None:
    base = "# Tasks\n\n" + line(1, "A") + "\n## Later\n\n" + line(2, "B")
    deleted = "# Tasks\n\n" + line(1, "A") + "\n## Later\n\n"
    ticked = "# Tasks\n\n" + line(1, "A") + "\n## Later\n\n" + line(2, "B", "x")
    for ours, theirs in ((deleted, ticked), (ticked, deleted)):
        merged = merge3(base, ours, theirs)
        assert merged.text == ticked
        assert [c.field for c in merged.conflicts] == ["deleted"]


def test_a_task_kept_against_a_delete_keeps_the_blank_line_style() -> None:
    base = line(1, "A") + "\n" + line(2, "B") + "\n" + line(3, "C")
    deleted = line(1, "A") + "\n" + line(3, "C")
    ticked = line(1, "A") + "\n" + line(2, "B", "x") + "\n" + line(3, "C")
    assert merge3(base, deleted, ticked).text == ticked
    assert merge3(base, ticked, deleted).text == ticked


def test_many_tasks_kept_against_a_delete_of_all_of_them() -> None:
    base = "".join(line(n, f"T{n}") for n in range(1, 2001))
    ticked = "".join(line(n, f"T{n}", "x") for n in range(1, 2001))
    merged = merge3(base, "", ticked)
    assert merged.text == ticked
    assert len(merged.conflicts) == 2000


def test_one_move_written_two_ways_merges_the_same_whichever_side_is_ours() -> None:
    base = line(1, "A") + line(2, "B") + line(3, "C")
    ours = line(2, "B") + line(3, "C") + "\n" + line(1, "A")
    theirs = line(2, "B") + line(3, "C") + line(1, "A") + "\n"
    one, other = merge3(base, ours, theirs), merge3(base, theirs, ours)
    assert one.text == other.text
    assert Index.parse(one.text).text == one.text
    # Both sides put #001 after #003: that is no position conflict.
    assert not [c for c in one.conflicts if c.field == "position"]


def test_the_same_task_created_around_a_line_merges_the_same_either_way() -> None:
    base = line(1, "A")
    ours = base + "note\n" + line(5, "E")
    theirs = base + line(5, "E") + "note\n"
    assert merge3(base, ours, theirs).text == merge3(base, theirs, ours).text


def test_a_deeply_nested_records_file_is_a_format_error() -> None:
    with pytest.raises(FormatError, match=r"\.tasksync/records\.json"):
        records.parse("[" * 100_000)


def test_the_line_ending_of_an_unended_last_line_does_not_depend_on_the_side() -> None:
    task = "- [ ] T1 [#007](process/tasks/007-t.md)\n  - d"
    assert merge3("", task, "\r\n").text == merge3("", "\r\n", task).text
