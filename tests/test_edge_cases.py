"""Edge cases, each test showing one defect (now fixed) against a real repository."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import time
import weakref
from pathlib import Path

import pytest
from conftest import git

from tasksync import ContentionTimeout, FormatError, TaskStore, TaskSyncError

REF = "refs/tasks/main"


# -- helpers ----------------------------------------------------------------------------------


def _git_input(cwd: Path, stdin: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def hand_edit_index(repo: Path, text: str) -> None:
    """Commit ``text`` as process/tasks.md on the tasks ref with plain git plumbing."""
    env = {"GIT_INDEX_FILE": str(repo / ".git" / "review-index")}
    old = git(repo, "rev-parse", REF).strip()
    _git_input(repo, "", env, "read-tree", old)
    blob = _git_input(repo, text, env, "hash-object", "-w", "--stdin")
    _git_input(
        repo, "", env, "update-index", "--add", "--cacheinfo", f"100644,{blob},process/tasks.md"
    )
    tree = _git_input(repo, "", env, "write-tree")
    new = _git_input(repo, "", env, "commit-tree", tree, "-p", old, "-m", "hand edit")
    git(repo, "update-ref", REF, new, old)


def with_second_task(repo: Path, link: str) -> TaskStore:
    """A store with task #001 (created by tasksync) and a hand-added #002 linking ``link``."""
    store = TaskStore.open(repo)
    store.init()
    store.create("one", description="first description")
    hand_edit_index(repo, store.index_text() + f"- [ ] two [#002]({link})\n")
    return store


def loose_object(repo: Path, oid: str) -> Path:
    return repo / ".git" / "objects" / oid[:2] / oid[2:]


# -- (1) acknowledged operations lost: spec writes that land on the index or the spec dir --------


def test_update_of_task_linking_below_tasks_md_keeps_the_index(repo: Path) -> None:
    # The link resolves to process/tasks.md/x; writing the spec there turns tasks.md into a
    # directory, and every task disappears while the update reports success.
    store = with_second_task(repo, "tasks.md/x")
    before = git(repo, "rev-parse", REF)
    with pytest.raises(FormatError, match=r"tasks\.md/x"):
        store.update(2, description="second")
    assert git(repo, "rev-parse", REF) == before
    titles = [t.title for t in TaskStore.open(repo).list()]
    assert titles == ["one", "two"]


def test_update_of_task_linking_the_spec_directory_keeps_other_specs(repo: Path) -> None:
    # The link resolves to process/tasks (the spec directory): the write replaces the whole
    # directory by one blob, deleting #001's spec and its description.
    store = with_second_task(repo, "tasks")
    with pytest.raises(FormatError, match="not a spec file"):
        store.update(2, description="second")
    assert TaskStore.open(repo).get(1).description == "first description"
    assert "process/tasks/001-one.md" in git(repo, "ls-tree", "-r", "--name-only", REF)


def test_acknowledged_title_change_is_stored(repo: Path) -> None:
    # The link resolves to process/tasks.md itself: the spec write overwrites the new index,
    # so the title change returned to the caller never reaches the ref.
    store = with_second_task(repo, "tasks.md#notes")
    returned = store.update(2, title="two renamed")
    assert returned.title == "two renamed"
    assert TaskStore.open(repo).get(2).title == "two renamed"


# -- (1)/(5) identities that git would never record -------------------------------------------


def test_newline_in_author_name_does_not_land_an_unreadable_commit(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TaskStore.open(repo)
    store.init()
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ann\nEvil")
    with contextlib.suppress(TaskSyncError):
        store.create("t")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ann")
    # Today the create lands a commit libgit2 cannot parse; every later read raises
    # pygit2.InvalidError ("failed to parse signature - malformed e-mail").
    TaskStore.open(repo).list()


def test_invalid_author_is_not_reported_as_contention(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "config", "tasks.retryTimeout", "0.5")
    store = TaskStore.open(repo)
    store.init()
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ann <ann>")
    started = time.monotonic()
    with pytest.raises(TaskSyncError) as caught:
        store.create("t")
    assert not isinstance(caught.value, ContentionTimeout), str(caught.value)
    assert time.monotonic() - started < 0.4


def test_out_of_range_author_date_raises_a_tasksync_error(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TaskStore.open(repo)
    store.init()
    monkeypatch.setenv("GIT_AUTHOR_DATE", "@99999999999999999999 +0000")
    with pytest.raises(TaskSyncError):  # today: OverflowError
        store.create("t")


# -- (5) foreign exceptions ---------------------------------------------------------------------


def test_lone_surrogate_in_title_raises_a_tasksync_error(store: TaskStore) -> None:
    with pytest.raises(TaskSyncError):  # today: UnicodeEncodeError from the blob write
        store.create("bad \ud800 title")


def test_lone_surrogate_in_description_raises_a_tasksync_error(store: TaskStore) -> None:
    with pytest.raises(TaskSyncError):
        store.create("fine", description="bad \udcff text")


def test_config_value_that_is_not_utf8_raises_config_error(repo: Path) -> None:
    with (repo / ".git" / "config").open("ab") as config:
        config.write(b"[tasks]\n\tretryTimeout = 1\xe9\n")
    with pytest.raises(TaskSyncError):  # today: UnicodeDecodeError from Repo.config
        TaskStore.open(repo)


def test_missing_tree_object_raises_a_tasksync_error(store: TaskStore, repo: Path) -> None:
    store.create("t")
    tree = git(repo, "rev-parse", f"{REF}^{{tree}}").strip()
    loose_object(repo, tree).unlink()
    with pytest.raises(TaskSyncError):  # today: pygit2.GitError "Unable to read tree"
        TaskStore.open(repo).get(1)


def test_corrupt_spec_blob_raises_a_tasksync_error(store: TaskStore, repo: Path) -> None:
    store.create("t", description="d")
    blob = git(repo, "rev-parse", f"{REF}:process/tasks/001-t.md").strip()
    path = loose_object(repo, blob)
    path.chmod(0o644)
    path.write_bytes(b"not a zlib stream")
    with pytest.raises(TaskSyncError):  # today: pygit2.GitError "failed to inflate"
        TaskStore.open(repo).get(1)


# -- (4) descriptors and retained resources -----------------------------------------------------


def test_resolved_identity_cache_does_not_keep_repositories_alive(repo: Path) -> None:
    store = TaskStore.open(repo)
    store.init()
    handle = weakref.ref(store._repo)
    del store
    gc.collect()
    # identity._RESOLVED keys on the bound method repo.config, which holds the Repo and its
    # pygit2.Repository (open pack files, object cache) for up to 65 repositories.
    assert handle() is None
