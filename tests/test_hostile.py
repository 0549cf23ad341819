"""Hostile input: odd trees on the tasks ref, hostile ids and titles, and fuzzed files.

The threat model (docs/reliability.md, "Hostile input"): a tasks ref fetched from a broken or
malicious remote, a file edited by hand, arguments a script passes on unchecked. Whatever
comes, a command either works, keeping every byte it did not mean to change, or stops with one
line naming a :class:`TaskSyncError`: never a traceback, a hang, a path outside the tree or
the export directory, or anything run.

Trees here are written object by object (``odb.write``), so they hold what git's own tools
refuse to write (``..`` and ``.git`` names, a ``/`` inside a name) as well as what they allow
(symbolic links, submodules, executable files, files where directories belong).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest
from conftest import git
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tasksync import (
    FormatError,
    InvalidTaskId,
    InvalidTitle,
    Status,
    TaskId,
    TaskNotFound,
    TaskStore,
    TaskSyncError,
)
from tasksync.markdown import INDEX_PATH, RECORDS_PATH, SPEC_DIR, Index, resolve_link
from tasksync.model import MAX_SLUG, check_title, slugify
from tasksync.operations import Change, Create, Delete, SetStatus, Snapshot, Update
from tasksync.records import parse as parse_records
from tasksync.spec import check_description, context, spec_title, with_context, with_title

REF = "refs/tasks/main"
LINK = pygit2.GIT_FILEMODE_LINK
GITLINK = pygit2.GIT_FILEMODE_COMMIT
TREE = pygit2.GIT_FILEMODE_TREE
FILE = pygit2.GIT_FILEMODE_BLOB
EXECUTABLE = pygit2.GIT_FILEMODE_BLOB_EXECUTABLE
MISSING_COMMIT = pygit2.Oid(hex="1" * 40)  # a submodule's commit: never in the repository

# -- trees written object by object ---------------------------------------------------------------

#: A tree as nested entries: name -> (mode, blob/commit id, or the entries of a subtree).
Entries = dict[bytes, tuple[int, "pygit2.Oid | Entries"]]


def write_tree(repo: pygit2.Repository, entries: Entries) -> pygit2.Oid:
    """Write ``entries`` as raw tree objects, in git's order, whatever the names are."""
    rows = []
    for name, (mode, value) in entries.items():
        oid = write_tree(repo, value) if isinstance(value, dict) else value
        rows.append((name + (b"/" if mode == TREE else b""), b"%o %s\0" % (mode, name) + oid.raw))
    data = b"".join(row for _, row in sorted(rows))
    return repo.odb.write(pygit2.GIT_OBJECT_TREE, data)


def read_tree(repo: pygit2.Repository, tree: pygit2.Tree) -> Entries:
    out: Entries = {}
    for entry in tree:
        name = entry.raw_name
        assert name is not None
        if entry.filemode == TREE:
            sub = repo[entry.id]
            assert isinstance(sub, pygit2.Tree)
            out[name] = (TREE, read_tree(repo, sub))
        else:
            out[name] = (entry.filemode, entry.id)
    return out


def leaves(repo: pygit2.Repository, commit: str) -> dict[bytes, tuple[int, str]]:
    """Every non-directory entry of a commit's tree: raw path -> (mode, object id)."""
    found = repo[commit]
    assert isinstance(found, pygit2.Commit)
    out: dict[bytes, tuple[int, str]] = {}

    def walk(entries: Entries, prefix: bytes) -> None:
        for name, (mode, value) in entries.items():
            if isinstance(value, dict):
                walk(value, prefix + name + b"/")
            else:
                out[prefix + name] = (mode, str(value))

    walk(read_tree(repo, found.tree), b"")
    return out


def commit_tree(repo: pygit2.Repository, tree: pygit2.Oid, parents: list[str]) -> str:
    who = pygit2.Signature("Hostile", "hostile@example.com", 1700000000, 0)
    oids = [pygit2.Oid(hex=p) for p in parents]
    return str(repo.create_commit(None, who, who, "odd tree\n", tree, oids))


def with_tip_tree(path: Path, mutate: Callable[[pygit2.Repository, Entries], None]) -> str:
    """Commit the tip's tree changed by ``mutate`` on top of the tip; the ref moves there."""
    repo = pygit2.Repository(str(path))
    tip = git(path, "rev-parse", REF).strip()
    found = repo[tip]
    assert isinstance(found, pygit2.Commit)
    entries = read_tree(repo, found.tree)
    mutate(repo, entries)
    commit = commit_tree(repo, write_tree(repo, entries), [tip])
    git(path, "update-ref", REF, commit, tip)
    return commit


def process(entries: Entries) -> Entries:
    value = entries[b"process"][1]
    assert isinstance(value, dict)
    return value


def specs(entries: Entries) -> Entries:
    value = process(entries)[b"tasks"][1]
    assert isinstance(value, dict)
    return value


def blob(repo: pygit2.Repository, data: bytes) -> pygit2.Oid:
    return repo.create_blob(data)


# -- running commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    out: str
    err: str


def run(path: Path, *args: str, stdin: str = "") -> Ran:
    """``git tasks -C PATH ARGS`` in this process, through the CLI's own error handling."""
    from tasksync.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        main(["-C", str(path), *args])
    except SystemExit as done:
        code = done.code
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    assert isinstance(code, int)
    return Ran(code, out.getvalue(), err.getvalue())


def refused(path: Path, error: str, *args: str) -> Ran:
    """``run`` of a command that must fail: exit 1 and one line, which starts with ``error``."""
    ran = run(path, *args)
    assert ran.code == 1, ran
    assert ran.err.startswith(error) and len(ran.err.splitlines()) == 1, ran
    return ran


def assert_clean_outcome(ran: Ran, what: str) -> None:
    """Success, or one TaskSyncError line (exit 1): never exit 3, a traceback or a usage
    error that a hostile ref could provoke."""
    assert "Traceback" not in ran.err, f"{what}: {ran.err}"
    assert ran.code in (0, 1), f"{what}: exit {ran.code}: {ran.err}"
    if ran.code == 1:
        lines = ran.err.splitlines()
        assert lines, f"{what}: exit 1 and nothing said"
        assert all(line.startswith(("error: ", "warning: ")) for line in lines), (
            f"{what}: {ran.err}"
        )
        assert any(line.startswith("error: ") for line in lines), f"{what}: {ran.err}"


# -- odd trees -------------------------------------------------------------------------------


def _symlink_index(repo: pygit2.Repository, e: Entries) -> None:
    process(e)[b"tasks.md"] = (LINK, blob(repo, b"../../../../etc/passwd"))


def _symlink_spec(repo: pygit2.Repository, e: Entries) -> None:
    specs(e)[b"001-one.md"] = (LINK, blob(repo, b"/etc/passwd"))


def _symlink_spec_dir(repo: pygit2.Repository, e: Entries) -> None:
    process(e)[b"tasks"] = (LINK, blob(repo, b"/etc"))


def _submodule_index(repo: pygit2.Repository, e: Entries) -> None:
    process(e)[b"tasks.md"] = (GITLINK, MISSING_COMMIT)


def _submodule_spec(repo: pygit2.Repository, e: Entries) -> None:
    specs(e)[b"001-one.md"] = (GITLINK, MISSING_COMMIT)


def _submodule_beside(repo: pygit2.Repository, e: Entries) -> None:
    specs(e)[b"vendored"] = (GITLINK, MISSING_COMMIT)
    e[b"lib"] = (GITLINK, MISSING_COMMIT)


def _executable_spec(repo: pygit2.Repository, e: Entries) -> None:
    _, oid = specs(e)[b"001-one.md"]
    assert not isinstance(oid, dict)
    specs(e)[b"001-one.md"] = (EXECUTABLE, oid)


def _executable_index(repo: pygit2.Repository, e: Entries) -> None:
    _, oid = process(e)[b"tasks.md"]
    assert not isinstance(oid, dict)
    process(e)[b"tasks.md"] = (EXECUTABLE, oid)


def _directory_index(repo: pygit2.Repository, e: Entries) -> None:
    process(e)[b"tasks.md"] = (TREE, {b"x.md": (FILE, blob(repo, b"x"))})


def _directory_spec(repo: pygit2.Repository, e: Entries) -> None:
    specs(e)[b"001-one.md"] = (TREE, {b"x.md": (FILE, blob(repo, b"x"))})


def _file_process(repo: pygit2.Repository, e: Entries) -> None:
    e[b"process"] = (FILE, blob(repo, b"not a directory"))


def _file_spec_dir(repo: pygit2.Repository, e: Entries) -> None:
    process(e)[b"tasks"] = (FILE, blob(repo, b"not a directory"))


def _unexpected_files(repo: pygit2.Repository, e: Entries) -> None:
    e[b"README.md"] = (FILE, blob(repo, b"a file at the root\n"))
    e[b"run.sh"] = (EXECUTABLE, blob(repo, b"#!/bin/sh\ntouch /tmp/tasksync-ran-me\n"))
    process(e)[b"notes.txt"] = (FILE, blob(repo, b"notes\n"))
    specs(e)[b"notes.txt"] = (FILE, blob(repo, b"more notes\n"))
    specs(e)[b"x\xff\xfe.md"] = (FILE, blob(repo, b"# a spec whose name is not UTF-8\n"))
    specs(e)[b"esc\x1b[2J.md"] = (FILE, blob(repo, b"# a name that clears a terminal\n"))


def _dot_names(repo: pygit2.Repository, e: Entries) -> None:
    escape: Entries = {b"escaped.md": (FILE, blob(repo, b"# written outside\n"))}
    for _ in range(6):  # process/tasks/../../../../../../escaped.md
        escape = {b"..": (TREE, escape)}
    specs(e).update(escape)
    specs(e)[b"."] = (FILE, blob(repo, b"dot\n"))
    specs(e)[b".git"] = (TREE, {b"config.md": (FILE, blob(repo, b"[core]\n\tbare = true\n"))})
    specs(e)[b".GIT"] = (TREE, {b"hooks.md": (FILE, blob(repo, b"#!/bin/sh\n"))})


def _slash_in_name(repo: pygit2.Repository, e: Entries) -> None:
    specs(e)[b"../../../../../../escaped.md"] = (FILE, blob(repo, b"# written outside\n"))
    specs(e)[b"/tmp/absolute.md"] = (FILE, blob(repo, b"# absolute\n"))


def _invalid_utf8_index(repo: pygit2.Repository, e: Entries) -> None:
    text = b"# Tasks\n\n- [ ] one [#001](process/tasks/001-one.md)\n\xff\xfe not text\n"
    process(e)[b"tasks.md"] = (FILE, blob(repo, text))


def _invalid_utf8_spec(repo: pygit2.Repository, e: Entries) -> None:
    text = b"# Task #001: one\n\n## Context\n\n\xc3\x28 broken\n"
    specs(e)[b"001-one.md"] = (FILE, blob(repo, text))


def _hostile_links(repo: pygit2.Repository, e: Entries) -> None:
    text = (
        b"# Tasks\n\n"
        b"- [ ] one [#001](process/tasks/001-one.md)\n"
        b"- [ ] two [#002](process/tasks/../../../../etc/passwd)\n"
        b"- [ ] three [#003](/etc/passwd)\n"
        b"- [ ] four [#004](process/tasks.md)\n"
        b"- [ ] five [#005](file:///etc/passwd)\n"
        b"- [ ] six [#006](process/tasks/006-\x1b]0;pwned\x07.md)\n"
        b"- [ ] \x1b[31mred\x1b[0m [#007](process/tasks/007-red.md)\n"
    )
    process(e)[b"tasks.md"] = (FILE, blob(repo, text))


def _records_directory(repo: pygit2.Repository, e: Entries) -> None:
    e[b".tasksync"] = (TREE, {b"records.json": (TREE, {b"x": (FILE, blob(repo, b"x"))})})


def _records_garbage(repo: pygit2.Repository, e: Entries) -> None:
    garbage = blob(repo, b'{"conflicts": [[[' * 50)
    e[b".tasksync"] = (TREE, {b"records.json": (FILE, garbage)})


ODD_TREES: dict[str, Callable[[pygit2.Repository, Entries], None]] = {
    "symlink index": _symlink_index,
    "symlink spec": _symlink_spec,
    "symlink spec directory": _symlink_spec_dir,
    "submodule index": _submodule_index,
    "submodule spec": _submodule_spec,
    "submodules beside": _submodule_beside,
    "executable spec": _executable_spec,
    "executable index": _executable_index,
    "directory index": _directory_index,
    "directory spec": _directory_spec,
    "file process": _file_process,
    "file spec directory": _file_spec_dir,
    "unexpected files": _unexpected_files,
    "dot names": _dot_names,
    "slash in name": _slash_in_name,
    "invalid utf8 index": _invalid_utf8_index,
    "invalid utf8 spec": _invalid_utf8_spec,
    "hostile links": _hostile_links,
    "records directory": _records_directory,
    "records garbage": _records_garbage,
}

#: What the commands below may rewrite: the index, the records and the specs of tasks 1-3.
#: Every other entry of an odd tree must come through a write with its mode and object.
MEANT = (INDEX_PATH.encode(), RECORDS_PATH.encode())
MEANT_SPECS = tuple(f"{SPEC_DIR}/00{n}-".encode() for n in (1, 2, 3))
ZERO = "0" * 40


def two_tasks(path: Path) -> tuple[TaskStore, str]:
    """A store with tasks one and two (each with a spec); returns it and its tip."""
    store = TaskStore.open(path)
    store.init()
    store.create("one", description="first")
    store.create("two", description="second")
    tip = store.head()
    assert tip is not None
    return store, tip


def assert_kept(path: Path, odd: str, written: str, what: str) -> None:
    """Every entry of ``odd`` a command did not mean to change is in ``written`` unchanged."""
    repo = pygit2.Repository(str(path))
    after = leaves(repo, written)
    for name, (mode, oid) in leaves(repo, odd).items():
        if name in MEANT or name.startswith(MEANT_SPECS):
            continue
        assert after.get(name) == (mode, oid), f"{what}: {name!r} was not kept"


def watch_step(store: TaskStore, since: str, until: str) -> list[object]:
    """The events a watch started after ``since`` hands out up to commit ``until`` (or the
    error it stops with): a handshake on the watch's own progress, not a sleep."""
    stop = threading.Event()
    found: list[object] = []
    done = threading.Event()
    watch = store.watch(since, poll=True, interval=0.01, stop=stop)

    def follow() -> None:
        try:
            for event in watch:
                found.append(event)
                if watch.last == until:
                    break
        except Exception as error:  # the test inspects what came out
            found.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    # A commit that yields no event moves ``last`` without handing anything out.
    for _ in range(1000):
        if done.wait(0.01) or watch.last == until:
            break
    stop.set()
    watch.stop()
    thread.join(10)
    assert not thread.is_alive(), "the watch did not stop"
    return found


@pytest.mark.parametrize("name", sorted(ODD_TREES))
def test_every_command_on_an_odd_tree_works_or_says_one_line(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    mark = tmp_path / "ran"
    monkeypatch.setenv("TASKSYNC_HOSTILE_MARK", str(mark))
    (repo / SPEC_DIR).mkdir(parents=True)  # in-tree files for migrate to import
    (repo / INDEX_PATH).write_text("# Tasks\n\n- [ ] in tree [#009](process/tasks/009-x.md)\n")
    (repo / SPEC_DIR / "009-x.md").write_text("# Task #009: in tree\n")
    git(repo, "add", "process")
    git(repo, "commit", "-q", "-m", "in-tree tasks")
    store, created_two = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES[name])
    copy = tmp_path / "copy"
    outside = (copy / SPEC_DIR / ("../" * 6) / "escaped.md").resolve()
    assert not outside.exists()

    def check(args: tuple[str, ...], stdin: str = "") -> Ran:
        ran = run(repo, *args, stdin=stdin)
        what = f"{name}: git tasks {' '.join(args)}"
        assert_clean_outcome(ran, what)
        tip = git(repo, "rev-parse", REF).strip()
        if tip != odd:
            assert ran.code == 0, f"{what}: the ref moved, yet it failed"
            assert_kept(repo, odd, tip, what)
            git(repo, "update-ref", REF, odd, tip)
        return ran

    for args in (
        ("list",),
        ("list", "--all", "--json"),
        ("get", "1"),
        ("get", "2", "--json"),
        ("spec", "1"),
        ("status", "get", "2"),
        ("status", "set", "2", "DONE"),
        ("create", "three", "-d", "third"),
        ("edit", "2", "--title", "two again"),
        ("edit", "1", "--description", "first again"),
        ("delete", "2", "--force"),
        ("log",),
        ("log", "--json"),
        ("conflicts",),
        ("migrate",),
        ("undo", created_two),
        ("export", "--to", str(copy)),
    ):
        check(args)
    if (copy / INDEX_PATH).is_file():  # exported: edit the copy and land it
        with (copy / INDEX_PATH).open("a", encoding="utf-8") as index:
            index.write("\nA note written in the copy.\n")
        check(("apply", "--from", str(copy)))
    # The pre-push check of the odd state: refused or accepted, in its own words.
    check(("hooks", "pre-push", "origin", "url"), stdin=f"{REF} {odd} {REF} {ZERO}\n")
    # A watch replaying the commit that made the tree odd.
    for item in watch_step(store, created_two, odd):
        assert not isinstance(item, Exception) or isinstance(item, TaskSyncError), repr(item)
    # Merging the odd state into a history that went on without it.
    git(repo, "update-ref", REF, created_two, odd)
    assert run(repo, "status", "set", "1", "IN-PROGRESS").code == 0
    ours = git(repo, "rev-parse", REF).strip()
    merged = run(repo, "merge", odd)
    assert_clean_outcome(merged, f"{name}: git tasks merge")
    tip = git(repo, "rev-parse", REF).strip()
    if tip != ours:
        assert_kept(repo, odd, tip, f"{name}: git tasks merge")
    assert not mark.exists(), "something from the ref was run"
    assert not outside.exists(), "a file was written outside the export directory"


# -- what each odd tree does, in detail -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "what"),
    [
        ("symlink index", INDEX_PATH, "a symbolic link"),
        ("submodule index", INDEX_PATH, "a submodule"),
        ("directory index", INDEX_PATH, "a directory"),
        ("file process", "process", "a file"),
    ],
)
def test_an_index_that_is_not_a_file_stops_every_read_naming_it(
    repo: Path, name: str, path: str, what: str
) -> None:
    store, _ = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES[name])
    for call in (store.list, lambda: store.get(1), lambda: store.create("three")):
        with pytest.raises(FormatError) as caught:
            call()
        assert caught.value.path == path
        assert what in str(caught.value)
        assert "\n" not in str(caught.value)
    assert store.head() == odd  # nothing written
    # Never the target of the link read as if it were the file.
    assert "passwd" not in run(repo, "list", "--all").out


@pytest.mark.parametrize("name", ["symlink index", "submodule index", "directory index"])
def test_a_write_handed_an_odd_tree_as_its_base_refuses_it(repo: Path, name: str) -> None:
    # Status changes write tasks.md over the tree their snapshot read, which has refused such
    # trees already; handed one directly, the write must refuse it too, not replace it.
    from tasksync.identity import Identity, Signatures
    from tasksync.markdown import Index
    from tasksync.operations import Change

    store, _ = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES[name])
    found = store._repo._repo[odd]  # the store's own repository, as a snapshot reads it
    assert isinstance(found, pygit2.Commit)
    change = Change(Index.parse("# Tasks\n"), (), "a status change", (), None)
    who = Identity("Ann", "ann@example.com")
    with pytest.raises(FormatError) as caught:
        store._repo.write_commit(odd, change, "a status change\n", Signatures(who, who), found.tree)
    assert caught.value.path == INDEX_PATH
    assert store.head() == odd


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("symlink spec", "a symbolic link"),
        ("submodule spec", "a submodule"),
        ("directory spec", "a directory"),
    ],
)
def test_a_spec_that_is_not_a_file_is_refused_and_the_other_tasks_work(
    repo: Path, name: str, what: str
) -> None:
    store, _ = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES[name])
    spec = f"{SPEC_DIR}/001-one.md"
    for call in (
        lambda: store.get(1),
        lambda: store.spec(1),
        lambda: store.update(1, description="new"),
        lambda: store.delete(1),
    ):
        with pytest.raises(FormatError, match=what) as caught:
            call()
        assert caught.value.path == spec
    assert store.head() == odd
    assert [t.title for t in store.list(descriptions=False)] == ["one", "two"]
    assert store.get(2).description == "second"
    store.set_status(2, "DONE")  # a write beside it keeps the entry as it was
    tip = store.head()
    assert tip is not None
    assert_kept(repo, odd, tip, name)
    listed = [git(repo, "ls-tree", commit, "--", spec) for commit in (odd, tip)]
    assert listed[0] == listed[1] and listed[0]


def test_an_executable_spec_is_read_and_rewritten_as_a_plain_file(repo: Path) -> None:
    store, _ = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES["executable spec"])
    spec = f"{SPEC_DIR}/001-one.md".encode()
    assert store.get(1).description == "first"
    store.set_status(1, "DONE")  # the spec untouched: its mode too
    assert leaves(pygit2.Repository(str(repo)), git(repo, "rev-parse", REF).strip())[spec][0] == (
        EXECUTABLE
    )
    store.update(1, description="rewritten")  # the file tasksync writes is a plain file
    after = leaves(pygit2.Repository(str(repo)), git(repo, "rev-parse", REF).strip())
    assert after[spec][0] == FILE
    assert odd != store.head()


def test_unexpected_files_survive_every_write_byte_for_byte(repo: Path) -> None:
    store, _ = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES["unexpected files"])
    store.set_status(1, "IN-PROGRESS")
    store.create("three", description="third")
    store.update(2, title="two again", description="second again")
    store.delete(1)
    tip = store.head()
    assert tip is not None
    assert_kept(repo, odd, tip, "unexpected files")
    kept = leaves(pygit2.Repository(str(repo)), tip)
    assert b"process/tasks/esc\x1b[2J.md" in kept  # kept as named, never shown raw
    assert b"process/tasks/x\xff\xfe.md" in kept
    assert "\x1b" not in run(repo, "list", "--all").out + run(repo, "log").out


@pytest.mark.parametrize("name", ["dot names", "slash in name"])
def test_names_no_path_reaches_are_refused_by_export_merge_and_push_checks(
    repo: Path, tmp_path: Path, name: str
) -> None:
    store, created_two = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES[name])
    copy = tmp_path / "copy"
    with pytest.raises(TaskSyncError, match="never writes"):
        store.export(copy)
    assert not any(copy.rglob("*.md"))
    problems = store.check(odd)
    assert problems and "never writes" in problems[0]
    git(repo, "update-ref", REF, created_two, odd)
    store.set_status(1, "DONE")
    with pytest.raises(FormatError, match="never writes"):
        store.merge(odd)
    # Writes on top of it keep the entries (tasksync never rebuilds a tree from paths).
    git(repo, "update-ref", REF, odd)
    store.set_status(2, "DONE")
    tip = store.head()
    assert tip is not None
    assert_kept(repo, odd, tip, name)


def test_links_that_leave_process_are_no_spec_and_control_characters_stay_off_the_terminal(
    repo: Path,
) -> None:
    store, _ = two_tasks(repo)
    with_tip_tree(repo, ODD_TREES["hostile links"])
    tasks = {t.id.number: t for t in store.list()}
    assert tasks[2].spec_path is None  # process/tasks/../../../../etc/passwd
    assert tasks[3].spec_path is None  # /etc/passwd
    assert tasks[4].spec_path is None  # the index itself
    assert tasks[5].spec_path is None  # a URL
    for number in (2, 3, 4, 5):
        assert "no spec file" in refused(repo, "error: task #00", "spec", str(number)).err
    listed = run(repo, "list", "--all")
    assert listed.code == 0
    assert "\x1b" not in listed.out and "?[31mred?[0m" in listed.out
    missing = refused(repo, "error: ", "spec", "6")
    assert "\x1b" not in missing.err and "\x07" not in missing.err
    for task in ("6", "7"):
        shown = run(repo, "get", task)
        assert shown.code == 0 and "\x1b" not in shown.out and "\x07" not in shown.out
    assert json.loads(run(repo, "get", "7", "--json").out)["title"].startswith("\x1b[31m")


# -- a tasks ref that points at something other than a commit -----------------------------------


def _point_ref_at(path: Path, kind: str) -> str:
    repo = pygit2.Repository(str(path))
    tip = git(path, "rev-parse", REF).strip()
    who = pygit2.Signature("Hostile", "hostile@example.com", 1700000000, 0)
    if kind == "blob":
        target = str(blob(repo, b"- [ ] a blob [#001](process/tasks/001-a.md)\n"))
    elif kind == "tree":
        target = git(path, "rev-parse", f"{REF}^{{tree}}").strip()
    elif kind == "tag of a commit":
        target = str(repo.create_tag("t1", tip, pygit2.enums.ObjectType.COMMIT, who, "tag\n"))
    elif kind == "tag of a blob":
        oid = blob(repo, b"x")
        target = str(repo.create_tag("t2", str(oid), pygit2.enums.ObjectType.BLOB, who, "tag\n"))
    else:  # a commit the repository does not have
        target = "1" * 40
        (path / ".git" / REF).write_text(target + "\n")
        return target
    git(path, "update-ref", REF, target, tip)
    return target


@pytest.mark.parametrize(
    "kind", ["blob", "tree", "tag of a commit", "tag of a blob", "missing commit"]
)
def test_a_ref_pointing_at_no_commit_gives_one_line_and_no_write(
    repo: Path, tmp_path: Path, kind: str
) -> None:
    two_tasks(repo)
    target = _point_ref_at(repo, kind)
    for args in (
        ("list",),
        ("get", "1"),
        ("status", "set", "1", "DONE"),
        ("create", "three"),
        ("delete", "2", "--force"),
        ("log",),
        ("init",),
        ("undo", "@{1}"),
        ("export", "--to", str(tmp_path / "copy")),
    ):
        ran = run(repo, *args)
        assert_clean_outcome(ran, f"{kind}: git tasks {' '.join(args)}")
        assert git(repo, "rev-parse", REF).strip() == target, f"{kind}: {args} wrote"
    writes = [run(repo, "status", "set", "1", "DONE"), run(repo, "create", "x")]
    assert all(ran.code == 1 for ran in writes)
    stdin = f"{REF} {target} {REF} {ZERO}\n"
    pushed = run(repo, "hooks", "pre-push", "origin", "url", stdin=stdin)
    assert pushed.code == 1, pushed.err


# -- hostile ids and titles ------------------------------------------------------------------------

BAD_IDS = [
    "../1",
    "1/..",
    "-1",
    "+1",
    "#1\0",
    "1\0",
    "\u0661",
    "\uff11",
    "\u00b2",
    "1e3",
    "0x1",
    "1.0",
    "#",
    "",
    "md#",
    "task#",
    "99999999999999999999",
    "１",
    "𝟏",
    "/1",
    "1 2",
]


@pytest.mark.parametrize("text", BAD_IDS, ids=repr)
def test_an_id_that_is_not_a_number_is_refused_before_any_read(
    store: TaskStore, repo: Path, text: str
) -> None:
    store.create("one")
    tip = store.head()
    with pytest.raises(InvalidTaskId):
        store.get(text)
    with pytest.raises(InvalidTaskId):
        store.set_status(text, "DONE")
    with pytest.raises(InvalidTaskId):
        store.delete(text)
    assert store.head() == tip
    if "\0" in text:
        return  # an argument with NUL cannot reach a command line
    for args in (
        ("get", "--", text),
        ("status", "set", "--", text, "DONE"),
        ("delete", "-f", "--", text),
    ):
        refused(repo, "error: invalid task id", *args)
    assert store.head() == tip


@pytest.mark.parametrize(
    ("text", "found"),
    [("0", "#000"), ("000", "#000"), ("#0", "#000"), ("9" * 18, f"#{'9' * 18}"), (" 1 ", None)],
)
def test_edge_numbers_are_ids_looked_up_like_any_other(
    store: TaskStore, text: str, found: str | None
) -> None:
    created = store.create("one")
    if found is None:  # surrounding blanks are ignored
        assert store.get(text).id == created.id
        return
    with pytest.raises(TaskNotFound) as caught:
        store.get(text)
    assert caught.value.task_id == found


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("..", "-"),
        (".", "-"),
        ("/", "-"),
        ("/etc/passwd", "-etc-passwd"),
        ("../../x", "-x"),
        ("a/b", "a-b"),
        ("CON", "con"),
        ("NUL.md", "nul-md"),
        ("\u0661\u0662\u0663", "-"),  # Arabic-Indic digits are not [0-9]
        ("x" * 5000, "x" * MAX_SLUG),
        ("Ab " * 200, ("ab-" * 200)[:MAX_SLUG]),
    ],
)
def test_titles_give_a_bounded_slug_inside_the_spec_directory(
    store: TaskStore, repo: Path, tmp_path: Path, title: str, slug: str
) -> None:
    task = store.create(title, description="d")
    assert slugify(title) == slug
    assert task.spec_path == f"{SPEC_DIR}/001-{slug}.md"
    assert len(Path(task.spec_path).name.encode()) <= 255
    assert store.spec(task.id).startswith("# Task #001: ")
    copy = store.export(tmp_path / "copy")  # a real file system takes the name
    assert (copy.directory / task.spec_path).is_file()


@pytest.mark.parametrize(
    "title",
    [
        "a\0b",
        "line\nbreak",
        "cr\rhere",
        "tab\there",
        "\x1b[31mred",
        "bell\x07",
        "del\x7f",
        "\u202eevil",
        "\u2066isolate",
        "sep\u2028arated",
        "next\u0085line",
        "x](y",
        "   ",
        "",
        "lone \udcff surrogate",
    ],
    ids=repr,
)
def test_titles_that_would_break_the_line_or_mislead_are_refused(
    store: TaskStore, repo: Path, title: str
) -> None:
    store.create("one")
    tip = store.head()
    with pytest.raises(InvalidTitle):
        store.create(title)
    with pytest.raises(InvalidTitle):
        store.update(1, title=title)
    assert store.head() == tip
    if "\0" in title or "\udcff" in title:
        return  # cannot be an argument
    assert "\x1b" not in refused(repo, "error: invalid title", "create", title).err
    assert store.head() == tip


# -- a remote holding an odd tree ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["symlink spec", "dot names", "unexpected files", "invalid utf8 spec", "hostile links"]
)
def test_sync_with_a_remote_holding_an_odd_tree_never_pushes_it_back_unsound(
    repo: Path, tmp_path: Path, name: str
) -> None:
    store, created_two = two_tasks(repo)
    odd = with_tip_tree(repo, ODD_TREES[name])
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "push", "-q", str(remote), f"{REF}:{REF}")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "config", "tasks.hub", "none")  # a remote to fetch from, not a hub to share
    git(repo, "update-ref", REF, created_two, odd)
    store.set_status(1, "IN-PROGRESS")  # local work the remote lacks: a real merge
    ours = store.head()
    assert ours is not None
    ran = run(repo, "sync")
    assert_clean_outcome(ran, f"{name}: git tasks sync")
    pushed = git(remote, "rev-parse", REF).strip()
    if pushed != odd:  # whatever sync pushed passes the checks the push hooks make
        assert store.check(pushed) == []
    tip = store.head()
    if tip != ours:
        assert tip is not None and store.is_ancestor(ours, tip)


# -- fuzzing: pure parsing and operations -------------------------------------------------------
#
# Every byte of a generated input stands for one piece of text: whole task lines, the parts task
# lines are made of, and what breaks them (NUL, a lone CR, a BOM, bidi and line-separator
# characters, escape sequences, surrogates standing for bytes that are not UTF-8). Drawing bytes
# is cheap and shrinks well, and the inputs stay a few dozen pieces long, so each example takes
# well under a millisecond and none can run long: the deep profile (HYPOTHESIS_PROFILE=deep)
# runs 100,000 of each of the pure tests below.

PIECES = (
    "\n",
    "\n",
    "\r\n",
    "\r",
    "\n- [ ] Title [#001](process/tasks/001-title.md)",
    "\n- [x] Done [#002](process/tasks/002-done.md) <!-- rest -->",
    "\n- [+] Old style [md#003](tasks/003-old-style.md)",
    "\n- [?] Unknown box [#004](process/tasks/004-unknown.md)",
    "\n- [ ] Same id again [#001](process/tasks/001-again.md)",
    "\n  - a description bullet",
    "\n\t-tabbed bullet",
    "- [ ] ",
    "- [~] ",
    "- [",
    "] ",
    " [#",
    " [md#",
    "[",
    "]",
    "(",
    ")",
    "](",
    "](process/tasks/005-x.md)",
    "](../../../etc/passwd)",
    "](process/tasks.md)",
    "](https://example.com/x)",
    "001",
    "7",
    "999999999999999999",
    "0000000000000000000001",
    "```",
    "  ```md",
    "# Tasks",
    "# Task #001: Title",
    "# Task: Title",
    "## Context",
    "## context",
    "## Other",
    "### Sub",
    "  ",
    "\t",
    " ",
    "x",
    "Fix sync",
    "#",
    "-",
    ":",
    "/",
    "\\",
    "..",
    "\0",
    "\ufeff",
    "\u202e",
    "\u2066",
    "\u2028",
    "\x85",
    "\x1b[2J",
    "\x07",
    "\udcff",
    "\ud800",
    "\U0001f680",
    "é",
    "日本",
    "\u0661",
)


def pieces_text(data: bytes) -> str:
    return "".join(PIECES[byte % len(PIECES)] for byte in data)


#: A tasks.md or a spec: pieces, or raw bytes as a store would see them decoded with
#: surrogateescape (bytes that are not UTF-8 become lone surrogates).
texts = st.one_of(
    st.binary(max_size=48).map(pieces_text),
    st.binary(max_size=160).map(lambda data: data.decode("utf-8", "surrogateescape")),
)
short_texts = st.binary(max_size=8).map(pieces_text)
#: Titles: mostly what people write, now and then what check_title refuses.
TITLE_PIECES = (
    "Fix",
    " ",
    "sync",
    "[WIP]",
    "(again)",
    "日本",
    "\U0001f680",
    "é",
    "#3",
    "a/b",
    "x)",
    "[",
    "]",
    "(",
    " [#9]",
    "C++",
    "\t",
    "](",
    "\u202e",
    "\x1b",
)


def title_text(data: bytes) -> str:
    return "".join(TITLE_PIECES[byte % len(TITLE_PIECES)] for byte in data) or "t"


def split(text: str) -> list[str]:
    from tasksync.markdown import split_lines

    return list(split_lines(text))


def nothing(path: str) -> str | None:
    """A reader of a tree without spec files."""
    return None


def content(line: str) -> str:
    """A line without its ending, as tasks.md reads it (``\n`` or ``\r\n``)."""
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


@given(texts)
def test_fuzzed_index_reads_back_exactly_and_lookups_agree_with_the_full_parse(text: str) -> None:
    index = Index.parse(text)
    assert index.text == text
    assert "".join(index.lines) == text
    for task in index.tasks[:6]:
        assert text.startswith(index.lines[task.line], task.offset)
        try:
            lazy = Index.parse(text).find(task.id)
        except TaskSyncError:
            assert sum(t.id.number == task.id.number for t in index.tasks) > 1
            continue
        assert lazy == index.find(task.id)


@given(st.binary(max_size=48).map(pieces_text), st.binary(min_size=3, max_size=10))
def test_fuzzed_operations_change_only_their_own_bytes(text: str, choice: bytes) -> None:
    which, pick, box = choice[0] % 4, choice[1], choice[2]
    title = title_text(choice[3:])
    status = list(Status)[box % len(Status)]
    index = Index.parse(text)
    if which == 0 or not index.tasks:
        try:
            created = Create(title).apply(Snapshot(index, nothing))
        except TaskSyncError:
            return
        assert created.index is not None and created.task is not None
        assert_only_inserted(text, created.index.text, created.index.find(created.task.id).line)
        return
    task = index.tasks[pick % len(index.tasks)]
    operation = (
        SetStatus(task.id, status)
        if which == 1
        else Update(task.id, title=title)
        if which == 2
        else Delete(task.id)
    )
    try:
        result = operation.apply(Snapshot(index, nothing))
    except TaskSyncError:
        return
    if not isinstance(result, Change) or result.index is None:
        return  # nothing to write
    new = result.index.text
    old_lines, new_lines = split(text), split(new)
    if isinstance(operation, SetStatus):
        at = task.offset + 3
        assert new == text[:at] + status.checkbox + text[at + 1 :]
    elif isinstance(operation, Update):
        line = old_lines[task.line]
        retitled = f"- [{task.checkbox}] {check_title(title)}{line[task.id_col :]}"
        assert new_lines == [*old_lines[: task.line], retitled, *old_lines[task.line + 1 :]]
    else:
        assert_only_removed(old_lines, new_lines, task.line, task.end)


def assert_only_inserted(old: str, new: str, at: int) -> None:
    """``new`` is ``old`` with the task line inserted as line ``at`` (and a blank line beside
    it), the old last line perhaps given an ending: no byte of ``old`` lost or changed."""
    old_lines, new_lines = split(old), split(new)
    final = not old_lines or old_lines[-1].endswith("\n")
    assert final or not new.endswith("\n"), (old, new)

    def kept(rest: list[str]) -> bool:
        return len(rest) == len(old_lines) and all(
            after == before
            or (not final and after.startswith(before) and after[len(before) :] in ("\n", "\r\n"))
            for before, after in zip(old_lines, rest, strict=True)
        )

    for added in ({at}, {at, at - 1}, {at, at + 1}):
        blank = all(not content(new_lines[i]) for i in added - {at} if 0 <= i < len(new_lines))
        rest = [line for i, line in enumerate(new_lines) if i not in added]
        if blank and kept(rest):
            return
    raise AssertionError(f"creating a task in {old!r} gave {new!r}")


def assert_only_removed(old: list[str], new: list[str], start: int, end: int) -> None:
    """Deleting lines ``start:end`` keeps every other line as it was, less a blank separator
    beside them; in a file without a final newline the new last line loses its ending (and
    blank lines left at the end go)."""
    final = old[-1].endswith("\n")
    candidates = [old[:start] + old[end:]]
    if start > 0 and not old[start - 1].strip():
        candidates.append(old[: start - 1] + old[end:])
    if end < len(old) and not old[end].strip():
        candidates.append(old[:start] + old[end + 1 :])
    for candidate in candidates:
        lines = list(candidate)
        if not final:
            while lines and not content(lines[-1]):
                lines.pop()
            if lines:
                lines[-1] = content(lines[-1])
        if lines == new:
            return
    raise AssertionError(f"deleting lines {start}:{end} of {old!r} gave {new!r}")


def context_span(lines: list[str]) -> tuple[int, int] | None:
    """Where the body of ``## Context`` is: after its heading, up to the next ``## ``."""
    for number, line in enumerate(lines):
        if content(line).rstrip("\r").strip().lower() == "## context":
            for after in range(number + 1, len(lines)):
                if lines[after].startswith("## "):
                    return number + 1, after
            return number + 1, len(lines)
    return None


@given(texts, short_texts, short_texts)
def test_fuzzed_specs_keep_what_the_edit_does_not_name(
    text: str, description: str, title: str
) -> None:
    spec_title(text)
    context(text)
    lines = split(text)
    try:
        wanted = check_description(description)
    except TaskSyncError:
        wanted = None
    if wanted is not None:
        edited = with_context(text, wanted)
        assert context(edited) == wanted
        after = split(edited)
        span = context_span(lines)
        if span is not None:  # only the section's body changes (its heading may gain an
            start, end = span  # ending, when it was the last line and had none)
            assert edited.startswith("".join(lines[:start]))
            assert after[len(after) - (len(lines) - end) :] == lines[end:]
        else:  # a section is added before the first other section: the rest is kept
            at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
            head, rest = "".join(lines[:at]), "".join(lines[at:])
            assert edited.startswith(head) and edited.endswith(rest)
            assert len(edited) > len(head) + len(rest)
    try:
        clean = check_title(title)
    except TaskSyncError:
        return
    retitled = split(with_title(text, TaskId(1), clean))
    if len(retitled) == len(lines):  # the first heading replaced, nothing else
        assert sum(a != b for a, b in zip(lines, retitled, strict=True)) <= 1
    else:  # a heading added above it all
        assert "".join(retitled).endswith(text)
    assert spec_title("".join(retitled)) in (clean, spec_title(text))


@given(st.one_of(st.text(max_size=40), short_texts))
def test_fuzzed_ids_titles_statuses_and_links_are_read_or_refused_in_our_words(
    text: str,
) -> None:
    for read in (TaskId.parse, Status.parse, check_title, check_description):
        with contextlib.suppress(TaskSyncError):
            read(text)
    try:
        task = TaskId.parse(text)
    except InvalidTaskId:
        pass
    else:
        assert 0 <= task.number < 10**18
    try:
        title = check_title(text)
    except InvalidTitle:
        pass
    else:
        assert title and title == title.strip() and "\n" not in title and "](" not in title
        assert len(slugify(title)) <= MAX_SLUG
    path = resolve_link(text)
    if path is not None:
        parts = path.split("/")
        assert parts[0] == "process" and len(parts) > 1
        assert not {"", ".", ".."} & set(parts) and "\\" not in path
        assert path not in (INDEX_PATH, SPEC_DIR)


records_texts = st.one_of(
    st.text(max_size=80),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.sampled_from(
                    [
                        "conflicts",
                        "renumbered",
                        "highest",
                        "uids",
                        "task",
                        "field",
                        "old",
                        "new",
                        "title",
                        "1",
                        "x",
                    ]
                ),
                inner,
                max_size=4,
            ),
        ),
        max_leaves=12,
    ).map(json.dumps),
)


@given(records_texts)
def test_fuzzed_records_files_are_read_or_refused_as_a_format_error(text: str) -> None:
    from tasksync.records import render

    try:
        records = parse_records(text)
    except FormatError:
        return
    again = render(records)
    assert again is None or parse_records(again) == records


# -- fuzzing: files on a real ref ---------------------------------------------------------------

#: Examples per operation on a real repository: five in CI, a thousand in the deep profile.
REPO_EXAMPLES = max(3, min(settings().max_examples // 40, 1_000))


def raw(text: str) -> bytes:
    """Text as bytes, lone surrogates included (which makes them invalid UTF-8)."""
    return text.encode("utf-8", "surrogatepass")


piece_files = st.binary(max_size=48).map(pieces_text).map(raw)
raw_files = st.one_of(piece_files, piece_files, piece_files, st.binary(max_size=160))
#: Two tasks whose specs the tree holds, between fuzzed text: most examples reach a write.
SEEDED = (
    "\n- [ ] Title [#001](process/tasks/001-title.md)"
    "\n- [x] Done [#002](process/tasks/002-done.md)\n"
)
seeded_index = st.tuples(st.binary(max_size=16), st.binary(max_size=24)).map(
    lambda parts: raw(pieces_text(parts[0]) + SEEDED + pieces_text(parts[1]))
)
index_files = st.one_of(seeded_index, seeded_index, raw_files)
SPEC_ONE = f"{SPEC_DIR}/001-title.md"
SPEC_TWO = f"{SPEC_DIR}/002-done.md"
UNTOUCHED = f"{SPEC_DIR}/notes.txt"
OPERATIONS = ("list", "get", "spec", "status", "create", "title", "describe", "delete", "export")


def put_files(repo: pygit2.Repository, files: dict[str, bytes]) -> str:
    """Commit exactly ``files`` on top of the tasks ref (a first commit when there is none)."""
    tree: Entries = {}
    for path, data in files.items():
        *dirs, name = path.encode().split(b"/")
        level = tree
        for part in dirs:
            sub = level.setdefault(part, (TREE, {}))[1]
            assert isinstance(sub, dict)
            level = sub
        level[name] = (FILE, repo.create_blob(data))
    found = repo.references.get(REF)
    parents = [] if found is None else [str(found.target)]
    commit = commit_tree(repo, write_tree(repo, tree), parents)
    repo.references.create(REF, commit, force=True)
    return commit


def files_at(repo: pygit2.Repository, commit: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path, (_, oid) in leaves(repo, commit).items():
        data = repo[oid]
        assert isinstance(data, pygit2.Blob)
        out[path.decode()] = bytes(data.data)
    return out


def pure_operation(
    name: str, number: int, status: Status, title: str
) -> Create | SetStatus | Update | Delete | None:
    """The operation a write runs, to apply to the files without git; None for a read."""
    task = TaskId(number)
    operations: dict[str, Create | SetStatus | Update | Delete] = {
        "status": SetStatus(task, status),
        "create": Create(title, description="fuzzed"),
        "title": Update(task, title=title),
        "describe": Update(task, description=title),
        "delete": Delete(task),
    }
    return operations.get(name)


def read_through_store(store: TaskStore, name: str, number: int, copy: Path) -> None:
    """The reads: each returns what it read, or raises."""
    if name == "list":
        store.list(include_done=True)
    elif name == "get":
        store.get(number)
    elif name == "spec":
        store.spec(number)
    else:
        store.export(copy)


def write_through_store(store: TaskStore, operation: Create | SetStatus | Update | Delete) -> None:
    if isinstance(operation, Create):
        store.create(operation.title, description=operation.description)
    elif isinstance(operation, SetStatus):
        store.set_status(operation.task_id, operation.status)
    elif isinstance(operation, Update):
        store.update(operation.task_id, title=operation.title, description=operation.description)
    else:
        store.delete(operation.task_id)


def expected_files(
    before: dict[str, bytes], operation: Create | SetStatus | Update | Delete
) -> dict[str, bytes]:
    """The files after ``operation``, as the pure operation makes them of the decoded files
    (the records file aside: it holds random identities)."""

    def read(path: str) -> str | None:  # decoded when read: the store read no more
        return before[path].decode("utf-8") if path in before else None

    change = operation.apply(Snapshot(Index.parse(before[INDEX_PATH].decode("utf-8")), read))
    expected = dict(before)
    if isinstance(change, Change):
        if change.index is not None:
            expected[INDEX_PATH] = raw(change.index.text)
        for path, text in change.files:
            if path == RECORDS_PATH:
                continue
            if text is None:
                expected.pop(path, None)
            else:
                expected[path] = raw(text)
    return expected


@settings(
    max_examples=REPO_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize("name", OPERATIONS)
@given(index=index_files, one=raw_files, two=raw_files, choice=st.binary(min_size=3, max_size=10))
def test_fuzzed_files_on_a_real_ref_are_edited_exactly_or_refused(
    repo: Path, tmp_path: Path, name: str, *, index: bytes, one: bytes, two: bytes, choice: bytes
) -> None:
    handle = pygit2.Repository(str(repo))
    before = {
        INDEX_PATH: index,
        SPEC_ONE: one,
        SPEC_TWO: two,
        UNTOUCHED: b"not a task file \xff\xfe, never rewritten\n",
    }
    start = put_files(handle, before)
    store = TaskStore.open(repo)
    number = 1 + choice[0] % 3
    operation = pure_operation(
        name, number, list(Status)[choice[1] % len(Status)], title_text(choice[2:])
    )
    copy = tmp_path / f"copy-{start}"
    try:
        if operation is None:
            read_through_store(store, name, number, copy)
        else:
            write_through_store(store, operation)
    except TaskSyncError as error:
        event(f"{name}: {type(error).__name__}")
        assert str(handle.references[REF].target) == start  # refused: nothing written
        return
    event(f"{name}: done")
    tip = str(handle.references[REF].target)
    if operation is None:
        assert tip == start  # a read writes nothing
        if name == "export":  # the copy holds the task files byte for byte
            for path, data in before.items():
                if path != UNTOUCHED:
                    assert (copy / path).read_bytes() == data
        return
    after = files_at(handle, tip)
    after.pop(RECORDS_PATH, None)
    assert after == expected_files(before, operation)


def test_commit_messages_and_names_from_the_ref_do_not_drive_the_terminal(
    store: TaskStore, repo: Path
) -> None:
    store.create("one")
    tip = store.head()
    assert tip is not None
    handle = pygit2.Repository(str(repo))
    found = handle[tip]
    assert isinstance(found, pygit2.Commit)
    evil = pygit2.Signature("\x1b]0;owned\x07Mallory", "m@example.com", 1700000000, 0)
    message = "\x1b[2J#001: cleared your screen\n\nTasksync-Operation: set-status\n"
    commit = handle.create_commit(None, evil, evil, message, found.tree_id, [found.id])
    git(repo, "update-ref", REF, str(commit), tip)
    shown = run(repo, "log")
    assert shown.code == 0 and "cleared your screen" in shown.out
    assert "\x1b" not in shown.out and "\x07" not in shown.out
    as_json = json.loads(run(repo, "log", "--json").out)  # JSON carries the text as it is
    assert as_json[0]["summary"].startswith("\x1b[2J")
