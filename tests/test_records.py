"""The merge records file: parse, render and three-way merge of conflicts and renumberings."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasksync import records
from tasksync.errors import FormatError, TaskSyncError
from tasksync.model import TaskId
from tasksync.records import RECORDS_PATH, Conflict, Records, Renumbering

# -- strategies -----------------------------------------------------------------------------------

task_ids = st.builds(
    TaskId, st.integers(min_value=0, max_value=10**12), st.sampled_from(("#", "md#"))
)
values = st.none() | st.text(max_size=40) | st.sampled_from(("TODO", "DONE", "- [x] A [#001](a)"))
fields = st.sampled_from(
    ("status", "title", "id", "link", "rest", "description", "deleted", "position", "spec", "text")
)
conflicts = st.builds(Conflict, st.none() | task_ids, fields, values, values, values, values)
paths = st.none() | st.from_regex(r"process/tasks/[0-9]{3}-[a-z-]{1,12}\.md", fullmatch=True)
renumberings = st.builds(
    Renumbering,
    task_ids,
    task_ids,
    st.text(min_size=1, max_size=30),
    st.sampled_from(("ours", "theirs", "")),
    paths,
    paths,
)


def order_of(c: Conflict) -> tuple[int, str, str, str, str, str]:
    """What the documented order of conflicts looks at: task number, field, values."""
    number = -1 if c.task is None else c.task.number
    return number, c.field, c.base or "", c.ours or "", c.theirs or "", c.kept or ""


def order_of_moved(r: Renumbering) -> tuple[int, int, str]:
    """What the documented order of renumberings looks at: old and new number, title."""
    return r.old.number, r.new.number, r.title


# Records that differ in what the order looks at (records that differ elsewhere only are in
# test_the_file_does_not_depend_on_the_order_of_records below).
identities = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=10**6),
        st.text(alphabet="0123456789abcdef", min_size=1, max_size=16),
    ),
    max_size=4,
    unique_by=lambda pair: pair[0],
).map(lambda pairs: tuple(sorted(pairs)))
record_sets = st.builds(
    Records,
    st.lists(conflicts, max_size=5, unique_by=order_of).map(tuple),
    st.lists(renumberings, max_size=4, unique_by=order_of_moved).map(tuple),
    st.integers(min_value=0, max_value=10**6),
    identities,
)
# Draws from a small pool, so that the three sides of a merge share records often.
pool_conflicts = st.lists(conflicts, min_size=1, max_size=6, unique_by=order_of)
pool_renumberings = st.lists(renumberings, min_size=1, max_size=4, unique_by=order_of_moved)


def subset(pool: list[Conflict]) -> st.SearchStrategy[tuple[Conflict, ...]]:
    return st.lists(st.sampled_from(pool), unique=True).map(tuple)


def rsubset(pool: list[Renumbering]) -> st.SearchStrategy[tuple[Renumbering, ...]]:
    return st.lists(st.sampled_from(pool), unique=True).map(tuple)


@st.composite
def three_sides(draw: st.DrawFn) -> tuple[Records, Records, Records]:
    cs, rs = draw(pool_conflicts), draw(pool_renumberings)
    sides = [
        Records(draw(subset(cs)), draw(rsubset(rs)), draw(st.integers(0, 999))) for _ in range(3)
    ]
    return sides[0], sides[1], sides[2]


def status(number: int | None, ours: str, theirs: str) -> Conflict:
    task = None if number is None else TaskId(number)
    return Conflict(task, "status", "TODO", ours, theirs, max(ours, theirs))


def moved(old: int, new: int, side: str = "theirs") -> Renumbering:
    return Renumbering(
        TaskId(old), TaskId(new), f"Task {new}", side, f"process/tasks/{old:03d}-t.md", None
    )


A = status(1, "DONE", "BLOCKED")
B = status(2, "IN-REVIEW", "CLOSED")
C = Conflict(None, "text", "# Tasks\n", "# Ours\n", "# Theirs\n", "# Theirs\n")
R = moved(4, 5)


# -- parse and render -----------------------------------------------------------------------------


def as_stored(kept: Records) -> tuple[Counter[Conflict], Counter[Renumbering]]:
    """What a file keeps of records: each conflict, each renumbering without its side."""
    return Counter(kept.conflicts), Counter(replace(r, side="") for r in kept.renumbered)


@given(record_sets, st.randoms(use_true_random=False))
def test_parse_of_render_gives_the_records_back(kept: Records, rnd: random.Random) -> None:
    text = records.render(kept)
    if not kept.conflicts and not kept.renumbered and not kept.highest and not kept.uids:
        assert text is None
        return
    assert text is not None
    again = records.parse(text)
    assert as_stored(again) == as_stored(kept)
    assert again.highest == kept.highest
    assert again.uids == kept.uids
    assert records.render(again) == text
    assert records.parse(records.render(again)) == again
    assert text.endswith("\n")
    assert json.loads(text)["version"] == 1
    # The file does not depend on the order the records come in.
    shuffled = Records(
        tuple(rnd.sample(kept.conflicts, len(kept.conflicts))),
        tuple(rnd.sample(kept.renumbered, len(kept.renumbered))),
        kept.highest,
        kept.uids,
    )
    assert records.render(shuffled) == text


def test_the_file_does_not_depend_on_the_order_of_records() -> None:
    one = Renumbering(
        TaskId(4), TaskId(5), "Same title", "", "process/tasks/004-a.md", "process/tasks/005-a.md"
    )
    two = replace(one, old_path="process/tasks/004-b.md", new_path="process/tasks/005-b.md")
    assert records.render(Records((), (one, two))) == records.render(Records((), (two, one)))
    plain = Conflict(TaskId(1), "status", "TODO", "DONE", "BLOCKED", "DONE")
    styled = replace(plain, task=TaskId(1, "md#"))
    assert records.render(Records((plain, styled))) == records.render(Records((styled, plain)))


def test_render_of_nothing_is_no_file() -> None:
    assert records.render(Records()) is None
    assert records.render(Records((), ())) is None
    assert records.parse(None) == Records()


def test_render_writes_the_documented_shape() -> None:
    text = records.render(Records((A, C), (R,)))
    assert text is not None
    assert json.loads(text) == {
        "version": 1,
        "conflicts": [
            {
                "task": None,
                "field": "text",
                "base": "# Tasks\n",
                "ours": "# Ours\n",
                "theirs": "# Theirs\n",
                "kept": "# Theirs\n",
            },
            {
                "task": "#001",
                "field": "status",
                "base": "TODO",
                "ours": "DONE",
                "theirs": "BLOCKED",
                "kept": "DONE",
            },
        ],
        "renumbered": [
            {
                "old": "#004",
                "new": "#005",
                "title": "Task 5",
                "old_path": "process/tasks/004-t.md",
                "new_path": None,
            }
        ],
    }


def test_parse_accepts_missing_sections_and_optional_values() -> None:
    assert records.parse("{}") == Records()
    assert records.parse('{"version": 1, "conflicts": [{"field": "text"}]}') == Records(
        (Conflict(None, "text", None, None, None, None),), ()
    )
    parsed = records.parse('{"renumbered": [{"old": "md#7", "new": "md#9", "title": "T"}]}')
    assert parsed.renumbered == (
        Renumbering(TaskId(7, "md#"), TaskId(9, "md#"), "T", "", None, None),
    )


def test_lookups_by_task_number() -> None:
    kept = Records((A, B, C, status(1, "CLOSED", "DONE")), (R, moved(4, 6), moved(2, 7)))
    assert kept.for_task(1) == (A, status(1, "CLOSED", "DONE"))
    assert kept.for_task(3) == ()
    assert kept.moved(4) == (R, moved(4, 6))  # created as #004
    assert kept.moved(5) == (R,)  # renumbered to #005
    assert kept.moved(7) == (moved(2, 7),)
    assert kept.moved(3) == ()
    assert kept.without((A, C)) == Records((B, status(1, "CLOSED", "DONE")), kept.renumbered)
    stored = Records((A,), ()).with_renumbered((R,))
    assert stored == Records((A,), (replace(R, side=""),))
    assert stored.with_renumbered((R,)) == stored


def test_a_conflict_is_stored_as_kept_then_set_aside() -> None:
    # C kept theirs: stored, "ours" is the value kept and "theirs" the value set aside.
    flipped = Conflict(None, "text", "# Tasks\n", "# Theirs\n", "# Ours\n", "# Theirs\n")
    assert records.settled(C) == flipped
    assert records.settled(flipped) == flipped
    assert records.settled(A) == A
    assert Records((A,)).with_conflicts((A, C)) == Records((A, flipped))
    assert Records((A, flipped)).with_conflicts((C,)) == Records((A, flipped))
    same = Conflict(TaskId(1), "title", "a", "b", "b", "b")
    assert records.settled(same) == same


# -- damaged files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        "[]",
        '"conflicts"',
        "null",
        '{"conflicts": 5}',
        '{"conflicts": null}',
        '{"conflicts": ["status"]}',
        '{"conflicts": [{"task": "#001"}]}',
        '{"conflicts": [{"field": 3}]}',
        '{"conflicts": [{"field": "status", "task": "one"}]}',
        '{"conflicts": [{"field": "status", "ours": ["DONE"]}]}',
        '{"renumbered": [{"old": "#1", "new": "#2", "side": "ours"}]}',
        '{"renumbered": [{"old": "#1", "title": "T"}]}',
        '{"renumbered": [{"old": "#x", "new": "#2", "title": "T", "side": "ours"}]}',
        '{"renumbered": [{"old": "#1", "new": "#2", "title": "T", "side": "ours", "old_path": 1}]}',
    ],
)
def test_a_damaged_file_is_a_format_error_naming_the_path(text: str) -> None:
    with pytest.raises(FormatError) as caught:
        records.parse(text)
    assert caught.value.path == RECORDS_PATH
    assert str(caught.value).startswith(f"{RECORDS_PATH}: cannot be read (")
    assert "\n" not in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
record_keys = st.sampled_from(
    ("task", "field", "base", "ours", "theirs", "kept", "old", "new", "title", "side", "old_path")
)
near_records = st.fixed_dictionaries(
    {},
    optional={
        "version": json_values,
        "conflicts": st.lists(st.dictionaries(record_keys, json_values, max_size=7), max_size=3)
        | json_values,
        "renumbered": st.lists(st.dictionaries(record_keys, json_values, max_size=7), max_size=3)
        | json_values,
    },
)


@given(st.text(max_size=60) | json_values.map(json.dumps) | near_records.map(json.dumps))
def test_any_text_parses_or_fails_with_format_error(text: str) -> None:
    try:
        records.parse(text)
    except FormatError as error:
        assert error.path == RECORDS_PATH
    except TaskSyncError as error:
        pytest.fail(f"{type(error).__name__} instead of FormatError: {error}")


# -- merge ----------------------------------------------------------------------------------------


def test_a_record_on_both_sides_is_kept() -> None:
    assert records.merge(Records((A,)), Records((A,)), Records((A,))) == Records((A,))
    assert records.merge(Records(), Records((A,)), Records((A,))) == Records((A,))


def test_a_record_new_on_either_side_is_kept() -> None:
    merged = records.merge(Records((A,)), Records((A, B)), Records((A, C)))
    assert merged == Records((C, A, B))


def test_a_record_resolved_on_one_side_stays_resolved() -> None:
    base = Records((A, B))
    assert records.merge(base, Records((B,)), base) == Records((B,))
    assert records.merge(base, base, Records((B,))) == Records((B,))
    assert records.merge(base, Records((A,)), Records((B,))) == Records()


def test_renumberings_are_never_dropped() -> None:
    other = moved(2, 3, "ours")
    merged = records.merge(Records((), (R,)), Records(), Records((), (other,)))
    assert merged == Records((), (other, R))
    assert records.merge(Records((), (R,)), Records((A,), ()), Records()) == Records((A,), (R,))


def test_merge_order_is_by_task_then_field() -> None:
    title = Conflict(TaskId(1), "title", "a", "b", "c", "c")
    merged = records.merge(Records(), Records((B, title, A)), Records((C,)))
    assert merged.conflicts == (C, A, title, B)


@given(three_sides())
def test_merge_does_not_depend_on_which_side_is_ours(
    sides: tuple[Records, Records, Records],
) -> None:
    base, ours, theirs = sides
    assert records.merge(base, ours, theirs) == records.merge(base, theirs, ours)


@given(three_sides())
def test_merge_follows_its_rules(sides: tuple[Records, Records, Records]) -> None:
    base, ours, theirs = sides
    merged = records.merge(base, ours, theirs)
    for c in {*base.conflicts, *ours.conflicts, *theirs.conflicts}:
        on_both = c in ours.conflicts and c in theirs.conflicts
        new = c not in base.conflicts and (c in ours.conflicts or c in theirs.conflicts)
        assert (c in merged.conflicts) == (on_both or new), c
    assert set(merged.renumbered) == {*base.renumbered, *ours.renumbered, *theirs.renumbered}
    assert len(set(merged.conflicts)) == len(merged.conflicts)
    assert len(set(merged.renumbered)) == len(merged.renumbered)
    # The fixed order: both sides of a merge render the very same file.
    shuffled = Records(ours.conflicts[::-1], ours.renumbered[::-1], ours.highest)
    again = records.merge(base, shuffled, theirs)
    assert records.render(again) == records.render(merged)
    assert merged.highest == max(side.highest for side in sides)


@given(record_sets)
def test_merging_a_side_with_itself_keeps_it(kept: Records) -> None:
    merged = records.merge(kept, kept, kept)
    assert set(merged.conflicts) == set(kept.conflicts)
    assert set(merged.renumbered) == set(kept.renumbered)
    assert merged.highest == kept.highest  # the highest id given out only grows
    assert records.merge(Records(), kept, Records()) == merged
