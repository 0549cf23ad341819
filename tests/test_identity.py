"""Creation identities: histories that gave one task different ids still merge it as one.

Each case is one an independent review of the identity change found broken; every merged
state must also keep spec files with their tasks and let no stand-in id reach a file.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import git

from tasksync import TaskStore

REF = "refs/tasks/main"
STAND_IN = re.compile(r"[0-9]{16,}")


def clones(root: Path, *names: str) -> list[Path]:
    """Repositories that share no hub (as on separate machines), each with a task store."""
    out = []
    for name in names:
        path = root / name
        git(root, "init", "-q", str(path))
        git(path, "config", "tasks.hub", "none")
        out.append(path)
    return out


def merge_from(into: Path, other: Path) -> None:
    git(into, "fetch", "-q", str(other), f"+{REF}:refs/peer/{other.name}")
    TaskStore.open(into).merge(f"refs/peer/{other.name}")


def files(path: Path) -> dict[str, str]:
    names = git(path, "ls-tree", "-r", "--name-only", REF).split()
    return {name: git(path, "show", f"{REF}:{name}") for name in names}


def assert_sound(path: Path) -> None:
    store = TaskStore.open(path)
    assert store.check() == []
    on_ref = files(path)
    linked = {t.spec_path for t in store.list(include_done=True)}
    specs = {name for name in on_ref if name.startswith("process/tasks/")}
    assert specs <= linked, f"orphan spec files: {specs - linked}"
    for name, text in on_ref.items():
        assert not STAND_IN.search(name), name
        assert not STAND_IN.search(text), f"a stand-in id in {name}"


def test_one_title_created_on_two_clones_keeps_both_specs(tmp_path: Path) -> None:
    a, b = clones(tmp_path, "a", "b")
    for path, words in ((a, "one"), (b, "two")):
        store = TaskStore.open(path)
        store.init()
        store.create("Same", description=words)
    merge_from(b, a)
    store = TaskStore.open(b)
    assert sorted(t.description for t in store.list()) == ["one", "two"]
    assert_sound(b)


def test_a_spec_edit_reaches_a_history_that_renumbered_the_task(tmp_path: Path) -> None:
    a, b, c = clones(tmp_path, "a", "b", "c")
    TaskStore.open(a).init()
    for path in (b, c):
        git(path, "fetch", "-q", str(a), f"{REF}:{REF}")
    TaskStore.open(a).create("U", description="u0")
    TaskStore.open(c).create("W", description="w0")
    merge_from(b, a)
    merge_from(b, c)  # W gets #002 here; c still has it as #001
    TaskStore.open(c).update(1, description="w1, edited where it is #001")
    merge_from(b, c)
    store = TaskStore.open(b)
    assert {t.title: t.description for t in store.list()} == {
        "U": "u0",
        "W": "w1, edited where it is #001",
    }
    assert_sound(b)


def test_a_delete_reaches_a_history_that_renumbered_the_task(tmp_path: Path) -> None:
    a, b, c = clones(tmp_path, "a", "b", "c")
    TaskStore.open(a).init()
    for path in (b, c):
        git(path, "fetch", "-q", str(a), f"{REF}:{REF}")
    TaskStore.open(a).create("Zed")
    TaskStore.open(c).create("Ant")
    merge_from(b, a)
    merge_from(b, c)  # Zed moves to #002 here
    TaskStore.open(a).delete(1)  # where it is #001
    merge_from(b, a)
    store = TaskStore.open(b)
    assert [t.title for t in store.list()] == ["Ant"]
    assert not [c for c in store.conflicts() if c.field == "deleted"]
    assert_sound(b)


def test_merges_in_both_directions_agree_and_leak_nothing(tmp_path: Path) -> None:
    a, b = clones(tmp_path, "a", "b")
    TaskStore.open(a).init()
    git(b, "fetch", "-q", str(a), f"{REF}:{REF}")
    for title in ("A", "D", "E", "X"):
        TaskStore.open(a).create(title)
    git(b, "fetch", "-q", str(a), f"+{REF}:{REF}")
    TaskStore.open(a).delete(2)
    TaskStore.open(a).create("From a")
    TaskStore.open(b).set_status(2, "DONE")
    TaskStore.open(b).create("From b")
    git(a, "fetch", "-q", str(b), f"+{REF}:refs/peer/b")
    git(b, "fetch", "-q", str(a), f"+{REF}:refs/peer/a")
    TaskStore.open(a).merge("refs/peer/b")
    TaskStore.open(b).merge("refs/peer/a")
    tree = [git(path, "rev-parse", f"{REF}^{{tree}}").strip() for path in (a, b)]
    assert tree[0] == tree[1]
    for path in (a, b):
        assert_sound(path)
        for conflict in TaskStore.open(path).conflicts():
            assert not STAND_IN.search(repr(conflict))
