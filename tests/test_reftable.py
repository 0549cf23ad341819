"""Reftable repositories: refs through the git CLI, objects through libgit2.

libgit2 1.9 cannot open a repository whose refs are in reftable, so tasksync moves such refs
with ``git update-ref --stdin`` and reads them with ``git for-each-ref`` (see
tasksync/store/refs.py). Most tests here force that git backend on an ordinary repository,
through the test seam ``FORCE_GIT_REFS`` (libgit2's ref database is then removed, as for
reftable, so a ref access that bypasses git fails loudly). A crafted reftable repository
checks the error an old git gives; the end-to-end test on a real reftable repository runs
where ``git init --ref-format=reftable`` works (git 2.45 or newer).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from conftest import git, in_threads, run_main, tasks_md
from test_stress import (
    WRITER_SCRIPT,
    check_exactly_once,
    detached_worktrees,
    first_parent_trailers,
    only,
    run_writer_processes,
    shared_tasks,
)

from tasksync import Event, ReftableUnsupported, Status, Task, TaskStore
from tasksync.errors import NotARepository, NotInHistory
from tasksync.store import Repo, refs

REF = "refs/tasks/main"
# tests/stress_writer.py, run with the git backend forced in its process.
FORCED_WRITER = """
import runpy, sys
from tasksync.store import refs
refs.FORCE_GIT_REFS = True
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def git_version() -> str:
    return git(Path.cwd(), "version").strip().removeprefix("git version ")


def git_makes_reftable(tmp: Path) -> bool:
    probe = tmp / "probe"
    done = subprocess.run(
        ["git", "init", "-q", "--ref-format=reftable", str(probe)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def reftable_git(tmp_path_factory: pytest.TempPathFactory) -> bool:
    """Whether the installed git creates (and so reads) reftable repositories."""
    return git_makes_reftable(tmp_path_factory.mktemp("probe"))


@pytest.fixture
def git_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every repository opened in this test moves its refs through the git CLI."""
    monkeypatch.setattr(refs, "FORCE_GIT_REFS", True)


@pytest.fixture
def git_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A log of every git command run from here on: a ``git`` first on PATH that writes its
    arguments to the log and runs the real git with them."""
    real = git(tmp_path, "--exec-path").strip()
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "git-calls.log"
    script = shim / "git"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}/git" "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    return log


def calls(log: Path) -> list[str]:
    """The git subcommands logged so far (the word after the global options)."""
    out = []
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
        words = line.split()
        while words and (words[0].startswith("--git-dir") or words[0] == "-c"):
            words = words[2:] if words[0] in ("-c", "--git-dir") else words[1:]
        out.append(words[0] if words else "")
    return out


# -- the git backend on an ordinary repository ----------------------------------------------------


@pytest.mark.usefixtures("git_refs")
def test_operations_history_and_reflog_entries(repo: Path) -> None:
    store = TaskStore.open(repo)
    assert store.init() is True
    assert store.init() is False
    first = store.create("First", description="one")
    store.set_status(first.id, Status.IN_PROGRESS)
    store.update(first.id, title="First, renamed")
    store.create("Second")
    assert [t.title for t in TaskStore.open(repo).list()] == ["First, renamed", "Second"]
    assert store.head() == git(repo, "rev-parse", REF).strip()
    assert "First, renamed" in tasks_md(repo)

    # The reflog (started with the ref) records every state, with each operation's summary.
    reflog = git(repo, "reflog", "show", "--format=%H %gs", REF).splitlines()
    assert reflog == [f"{e.commit} {e.summary}" for e in store.history()]
    assert len(reflog) == 5
    assert store.get(1, at="@{1}").title == "First, renamed"
    assert store.get(1, at="@{2}").status is Status.IN_PROGRESS
    assert store.get(1, at="@{3}").status is Status.TODO
    with pytest.raises(NotInHistory):
        store.get(1, at="@{99}")
    with pytest.raises(NotInHistory):
        store.get(1, at="main")  # a commit, but not a state of the ref

    # A state the ref left is still readable: the reflog records it (git reflog show).
    left = store.head()
    assert left is not None
    init = git(repo, "rev-list", "--max-parents=0", REF).strip()
    git(repo, "update-ref", REF, init, left)
    assert store.get(2, at=left).title == "Second"
    git(repo, "update-ref", REF, left, init)

    entries = store.history()
    assert [e.operation for e in entries] == ["create", "update", "set-status", "create", "init"]
    store.undo("@{0}")  # the create of "Second"
    assert [t.title for t in store.list()] == ["First, renamed"]
    # The branch the store found through git is recorded in each commit.
    assert only(trailers(repo, REF), "Tasksync-Branch") == "main"


def trailers(path: Path, rev: str) -> dict[str, list[str]]:
    """The trailers of one commit, as git parses them."""
    out = git(path, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.strip():
            key, _, value = line.partition(": ")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.usefixtures("git_refs")
def test_a_write_is_one_read_and_one_update_ref(repo: Path, git_calls: Path) -> None:
    git(repo, "config", "tasks.autoPack", "false")  # no sampled `git gc --auto` in the count
    store = TaskStore.open(repo)
    store.init()
    store.create("First")
    assert calls(git_calls).count("rev-parse") == 1  # the branch, once at open
    git_calls.unlink()
    store.set_status(1, Status.DONE)
    assert calls(git_calls) == ["for-each-ref", "update-ref"]
    git_calls.unlink()
    assert store.get(1).status is Status.DONE
    assert calls(git_calls) == ["for-each-ref"]


@pytest.mark.usefixtures("git_refs")
def test_a_refused_update_ref_is_retried_on_the_new_tip(repo: Path) -> None:
    # Two handles from the same tip: B lands between A's read and A's update-ref, so git
    # refuses A's update (the ref is not at the value A read) and A applies its change again.
    git(repo, "config", "tasks.fileLock", "false")  # else B would wait for A's lock
    a = TaskStore.open(repo)
    a.init()
    b = TaskStore.open(repo)
    raced: list[Task] = []

    def land_b_first() -> None:
        if not raced:
            raced.append(b.create("From B"))

    a._tx.before_swap = land_b_first
    created = a.create("From A")
    assert raced and raced[0].id.number == 1
    assert created.id.number == 2  # allocated again on the tip B made
    chain = first_parent_trailers(repo)
    assert [only(t, "Tasksync-Operation") for _, t in chain] == ["init", "create", "create"]
    assert a.last_commit == chain[-1][0]


@pytest.mark.usefixtures("git_refs")
def test_threads_sharing_one_handle_lose_nothing(repo: Path) -> None:
    shared = TaskStore.open(repo)
    shared.init()

    def work(worker: int) -> None:
        for i in range(6):
            task = shared.create(f"w{worker}-{i}")
            shared.set_status(task.id, Status.DONE if i % 2 else Status.IN_PROGRESS)

    assert in_threads(work, 4) == []
    final = TaskStore.open(repo).list(include_done=True)
    assert len({t.id for t in final}) == len(final) == 24
    assert {t.title for t in final if t.status is Status.DONE} == {
        f"w{k}-{i}" for k in range(4) for i in range(6) if i % 2
    }


@pytest.mark.slow
@pytest.mark.parametrize("file_lock", ["true", "false"])
def test_writer_processes_lose_and_duplicate_nothing(
    repo: Path, tmp_path: Path, file_lock: str
) -> None:
    # tests/stress_writer.py in 4 processes, each through the git backend: every acknowledged
    # operation is on the first-parent chain exactly once and the file is its replay.
    writers, operations = 4, 25
    git(repo, "config", "tasks.fileLock", file_lock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(refs, "FORCE_GIT_REFS", True)
        shared_tasks(repo, 1)
    done = run_writer_processes(
        detached_worktrees(repo, tmp_path, writers),
        operations,
        launcher=(sys.executable, "-c", FORCED_WRITER, str(WRITER_SCRIPT)),
    )
    check_exactly_once(repo, done.records, shared=1)


@pytest.mark.usefixtures("git_refs")
def test_sync_through_a_bare_remote(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clones = []
    for name in ("one", "two"):
        path = tmp_path / name
        git(tmp_path, "clone", "-q", str(remote), str(path))
        git(path, "config", "tasks.hub", "none")  # as if on another machine
        git(path, "commit", "-q", "--allow-empty", "-m", "first")
        clones.append(path)
    one = TaskStore.open(clones[0])
    one.init()
    one.create("From one")
    assert one.sync().pushed == one.head()
    two = TaskStore.open(clones[1])
    two.sync()
    two.create("From two")
    one.create("From one again")
    two.sync()
    one.sync()  # merges both, pushes the merge
    two.sync()  # fast-forwards to it
    expected = {"From one", "From one again", "From two"}
    for path in clones:
        assert {t.title for t in TaskStore.open(path).list()} == expected
    assert git(remote, "rev-parse", REF) == git(clones[0], "rev-parse", REF)


@pytest.mark.usefixtures("git_refs")
def test_watch_sees_a_write_from_another_handle(repo: Path) -> None:
    store = TaskStore.open(repo)
    store.init()
    watch = store.watch(poll=True, interval=0.02)
    seen: list[Event] = []
    timer = threading.Timer(20, watch.stop)
    timer.start()
    thread = threading.Thread(target=lambda: seen.append(next(iter(watch))))
    thread.start()
    TaskStore.open(repo).create("Watched")
    thread.join()
    timer.cancel()
    assert [(e.kind, e.after) for e in seen] == [("created", "Watched")]


@pytest.mark.usefixtures("git_refs")
def test_libgit2_never_reads_the_refs(repo: Path) -> None:
    # With the ref database removed, a libgit2 ref read fails instead of answering: every read
    # above went through git. (A reftable repository is opened the same way.)
    store = Repo.discover(repo)
    with pytest.raises(pygit2.GitError):
        store._repo.references.get(REF)  # the libgit2 handle itself
    assert store.resolve_commit("main") == git(repo, "rev-parse", "main").strip()
    assert store.head_commit() == store.resolve_commit("HEAD")
    assert store.ref_lock_path(REF) == repo / ".git" / "refs" / "tasks" / "main.lock"


# -- a reftable repository this git cannot read ---------------------------------------------------


def make_reftable_looking(path: Path) -> None:
    """Turn an ordinary repository into what ``git init --ref-format=reftable`` leaves: format
    version 1 with ``extensions.refStorage = reftable``, a ``reftable/`` stack, the stub HEAD
    and the ``refs/heads`` file. Its objects stay; its refs are gone."""
    dot = path / ".git"
    git(path, "config", "core.repositoryformatversion", "1")
    git(path, "config", "extensions.refStorage", "reftable")
    for name in ("refs", "logs"):
        subprocess.run(["rm", "-rf", str(dot / name)], check=True)
    (dot / "packed-refs").unlink(missing_ok=True)
    (dot / "HEAD").write_text("ref: refs/heads/.invalid\n", encoding="utf-8")
    (dot / "refs").mkdir()
    (dot / "refs" / "heads").write_text(
        "this repository uses the reftable format\n", encoding="utf-8"
    )
    (dot / "reftable").mkdir()
    (dot / "reftable" / "tables.list").write_text("", encoding="utf-8")


@pytest.fixture
def unreadable(repo: Path, reftable_git: bool) -> Path:
    if reftable_git:
        pytest.skip(f"git {git_version()} reads reftable repositories (the end-to-end test runs)")
    make_reftable_looking(repo)
    return repo


def test_an_old_git_gives_one_clear_error(unreadable: Path) -> None:
    before = pygit2.settings.extensions
    (unreadable / "sub").mkdir()
    with pytest.raises(ReftableUnsupported) as caught:
        TaskStore.open(unreadable / "sub")  # found by walking up, as git finds it
    message = str(caught.value)
    assert "reftable" in message
    assert f"git {git_version()} cannot read them" in message
    assert "install git 2.45 or newer" in message
    assert "\n" not in message
    assert caught.value.git_version == git_version()
    # libgit2's list of extensions is left as it was.
    assert pygit2.settings.extensions == before


def test_an_old_git_error_through_the_cli(
    unreadable: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(unreadable)
    code, out, err = run_main(capsys, "list")
    assert code == 1
    assert out == ""
    assert "reftable" in err and "2.45" in err and "Traceback" not in err
    assert "not a git repository" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_old_git_error_from_a_linked_worktree(
    repo: Path, worktree: Path, reftable_git: bool
) -> None:
    # The worktree's git dir names the common dir (commondir), whose config has the extension.
    if reftable_git:
        pytest.skip(f"git {git_version()} reads reftable repositories (the end-to-end test runs)")
    make_reftable_looking(repo)
    with pytest.raises(ReftableUnsupported):
        TaskStore.open(worktree)


def test_an_unknown_extension_is_still_not_a_repository(repo: Path) -> None:
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.somethingNew", "true")
    with pytest.raises(NotARepository):
        TaskStore.open(repo)


# -- a real reftable repository -------------------------------------------------------------------


@pytest.fixture
def reftable_repo(tmp_path: Path, reftable_git: bool) -> Iterator[Path]:
    if not reftable_git:
        pytest.skip(
            f"git {git_version()} cannot create reftable repositories "
            "(`git init --ref-format=reftable` needs git 2.45 or newer)"
        )
    path = tmp_path / "reftable"
    git(tmp_path, "init", "-q", "-b", "main", "--ref-format=reftable", str(path))
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    yield path


def test_end_to_end_on_a_real_reftable_repository(reftable_repo: Path, tmp_path: Path) -> None:
    repo = reftable_repo
    assert git(repo, "rev-parse", "--show-ref-format").strip() == "reftable"
    store = TaskStore.open(repo)
    assert store.init() is True
    store.create("First", description="one")
    store.set_status(1, Status.DONE)
    store.create("Second")
    assert "- [x] First" in tasks_md(repo)
    assert store.head() == git(repo, "rev-parse", REF).strip()
    assert store.get(1, at="@{1}").status is Status.DONE
    assert store.get(1, at="@{2}").status is Status.TODO
    assert [e.operation for e in store.history()] == ["create", "set-status", "create", "init"]
    store.undo("@{0}")
    assert [t.title for t in store.list(include_done=True)] == ["First"]
    entries = git(repo, "reflog", "show", "--format=%gs", REF).splitlines()
    assert entries[-1] == "tasks: init" and len(entries) == 5
    assert only(trailers(repo, REF), "Tasksync-Branch") == "main"
    # Nothing went where the files backend would keep it.
    assert not (repo / ".git" / "refs" / "tasks").exists()
    assert not (repo / ".git" / "logs").exists()

    # A linked worktree shares the ref.
    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", "-b", "other", str(other))
    TaskStore.open(other).create("From the worktree")
    assert [t.title for t in store.list()] == ["From the worktree"]

    # Writers in threads of one process, then sync with a bare remote.
    def work(worker: int) -> None:
        for i in range(5):
            store.create(f"w{worker}-{i}")

    assert in_threads(work, 4) == []
    titles = [t.title for t in TaskStore.open(repo).list()]
    assert len(titles) == len(set(titles)) == 21
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "--ref-format=reftable", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "config", "tasks.hub", "none")
    assert TaskStore.open(repo).sync().pushed == git(remote, "rev-parse", REF).strip()
    assert git(repo, "fsck", "--no-dangling") == ""
    assert re.fullmatch(r"[0-9a-f]{40,64}", store.head() or "")
