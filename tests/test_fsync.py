"""``tasks.fsync``: every object and ref a write makes is on the disk before the write returns.

Whether fsync happens is seen from outside: the write runs in a child process under
``strace``, which lists each fsync with the file it was for.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, run_main

from tasksync import ConfigError, Status, TaskStore

#: One write in a fresh process: ``python -c WRITE PATH [git-refs]``, where PATH is a store
#: with task #001, whose status it changes; ``git-refs`` moves refs through git, as for a
#: reftable repository.
WRITE = """
import sys
if sys.argv[2:] == ["git-refs"]:
    from tasksync.store import refs
    refs.FORCE_GIT_REFS = True
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
store.set_status(1, "TODO" if store.get(1).status.value == "DONE" else "DONE")
"""

#: Two stores in one process, the first with tasks.fsync on: ``python -c TWO FIRST SECOND``.
#: The second writes after the first has opened and written.
TWO = """
import sys
from tasksync import TaskStore
first = TaskStore.open(sys.argv[1])
second = TaskStore.open(sys.argv[2])
first.set_status(1, "DONE")
second.set_status(1, "DONE")
"""


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    done = subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True, check=False)
    return done.returncode == 0


needs_strace = pytest.mark.skipif(
    not _strace_works(), reason="needs strace, allowed to trace (ptrace) on this machine"
)


def fsynced(tmp_path: Path, *args: str) -> list[str]:
    """The files a child process ``python -c ARGS...`` fsynced, in order, as strace saw them."""
    log = tmp_path / "strace.log"
    command = ["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", str(log)]
    done = subprocess.run(
        [*command, sys.executable, "-c", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    files = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if "fsync(" in line:
            files.append(line.split("<", 1)[1].split(">", 1)[0])
    return files


def a_store(path: Path, fsync: str | None) -> Path:
    """A repository at ``path`` holding task #001, with ``tasks.fsync`` set to ``fsync``."""
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    if fsync is not None:
        git(path, "config", "tasks.fsync", fsync)
    store = TaskStore.open(path)
    store.init()
    store.create("One")
    return path


def test_the_setting_is_read_and_off_by_default(repo: Path) -> None:
    assert TaskStore.open(repo).workspace.fsync is False
    for value, expected in (("true", True), ("yes", True), ("on", True), ("false", False)):
        git(repo, "config", "tasks.fsync", value)
        store = TaskStore.open(repo)
        assert store.workspace.fsync is expected
        assert store._repo.fsyncs is expected


def test_an_invalid_value_is_a_one_line_config_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    TaskStore.open(repo).init()
    git(repo, "config", "tasks.fsync", "sometimes")
    with pytest.raises(ConfigError, match=r"tasks\.fsync") as caught:
        TaskStore.open(repo)
    assert "\n" not in str(caught.value)
    assert "git config tasks.fsync true" in str(caught.value)
    code, out, err = run_main(capsys, "-C", str(repo), "list")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "tasks.fsync" in err


def test_every_write_works_with_fsync_on(repo: Path, worktree: Path) -> None:
    git(repo, "config", "tasks.fsync", "true")
    store = TaskStore.open(worktree)  # objects go to the common git dir, not the worktree's
    assert store.init() is True
    task = store.create("First", status=Status.IN_PROGRESS)
    store.set_status(task.id, Status.DONE)
    store.update(task.id, title="First, renamed")
    second = store.create("Second")
    store.delete(second.id)
    assert [(str(t.id), t.title, t.status) for t in store.list(include_done=True)] == [
        ("#001", "First, renamed", Status.DONE)
    ]
    assert TaskStore.open(repo).head() == store.head()
    assert not (repo / ".git" / "worktrees" / worktree.name / "objects").exists()
    assert int(git(repo, "rev-list", "--count", "refs/tasks/main")) == 6
    assert git(repo, "fsck", "--no-dangling", "--no-progress") == ""


@needs_strace
def test_with_fsync_on_a_write_fsyncs_its_objects_and_the_ref(tmp_path: Path) -> None:
    path = a_store(tmp_path / "on", "true")
    before = git(path, "rev-parse", "refs/tasks/main").strip()
    files = fsynced(tmp_path, WRITE, str(path))
    git_dir = f"{path}/.git"
    # The new commit and the trees and blob it changed: each object file, then its directory.
    listed = git(path, "rev-list", "--objects", "refs/tasks/main", f"^{before}")
    new = {line.split()[0] for line in listed.splitlines()}
    written = [f for f in files if f.startswith(f"{git_dir}/objects/tmp_object_git2_")]
    assert len(written) == len(new) >= 3
    directories = {f"{git_dir}/objects/{oid[:2]}" for oid in new}
    assert directories <= set(files)
    # The ref: its lock file (renamed over the ref after) and its reflog.
    assert files.count(f"{git_dir}/refs/tasks/main.lock") == 1
    assert f"{git_dir}/logs/refs/tasks/main" in files
    # Objects first: the ref never names an object that might not be on the disk.
    assert max(files.index(f) for f in written) < files.index(f"{git_dir}/refs/tasks/main.lock")


@needs_strace
def test_with_fsync_off_a_write_fsyncs_nothing(tmp_path: Path) -> None:
    path = a_store(tmp_path / "off", None)
    head = git(path, "rev-parse", "refs/tasks/main")
    assert fsynced(tmp_path, WRITE, str(path)) == []
    git(path, "config", "tasks.fsync", "false")
    assert fsynced(tmp_path, WRITE, str(path)) == []
    assert int(git(path, "rev-list", "--count", f"{head.strip()}..refs/tasks/main")) == 2


@needs_strace
def test_a_store_without_fsync_is_untouched_by_one_with_it_in_the_same_process(
    tmp_path: Path,
) -> None:
    durable = a_store(tmp_path / "durable", "true")
    plain = a_store(tmp_path / "plain", None)
    files = fsynced(tmp_path, TWO, str(durable), str(plain))
    assert any(f.startswith(f"{durable}/") for f in files)
    assert [f for f in files if f.startswith(f"{plain}/")] == []


@needs_strace
def test_refs_moved_through_git_are_fsynced_too(tmp_path: Path) -> None:
    # The reftable path: git update-ref runs with core.fsync=reference.
    path = a_store(tmp_path / "git-refs", "true")
    files = fsynced(tmp_path, WRITE, str(path), "git-refs")
    assert f"{path}/.git/refs/tasks/main.lock" in files
    assert any(f.startswith(f"{path}/.git/objects/tmp_object_git2_") for f in files)


@needs_strace
def test_libgit2_honours_core_fsync_object_files_but_not_core_fsync(tmp_path: Path) -> None:
    # What docs/reliability.md says about git's own settings, as libgit2 1.9 behaves.
    path = a_store(tmp_path / "git-settings", None)
    git(path, "config", "core.fsync", "all")
    assert fsynced(tmp_path, WRITE, str(path)) == []
    git(path, "config", "core.fsyncObjectFiles", "true")
    files = fsynced(tmp_path, WRITE, str(path))
    assert any("/objects/tmp_object_git2_" in f for f in files)
    assert f"{path}/.git/refs/tasks/main.lock" in files
