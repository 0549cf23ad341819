"""TaskStore against real repositories: worktrees, bare repos, config, CAS races, retry, errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import git, tasks_md

from tasksync import (
    ConfigError,
    ContentionTimeout,
    InvalidDescription,
    InvalidStatus,
    InvalidTaskId,
    InvalidTitle,
    NotARepository,
    NotInitialized,
    PreconditionFailed,
    Status,
    Task,
    TaskId,
    TaskNotFound,
    TaskStore,
    TaskSyncError,
)
from tasksync.markdown import RECORDS_PATH

REF = "refs/tasks/main"
STATUS_NAMES = ("TODO", "IN-PROGRESS", "IN-REVIEW", "DONE", "BLOCKED", "CLOSED")


# -- helpers ----------------------------------------------------------------------------------


def git_in(cwd: Path, stdin: str, *args: str) -> str:
    """Run git with ``stdin`` as its input and return its stdout."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def git_ok(cwd: Path, *args: str) -> bool:
    """Whether a git command succeeds."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False).returncode == 0


def tip(path: Path, ref: str = REF) -> str | None:
    """The commit ``ref`` points at, read with the git CLI; None when it does not exist."""
    done = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"{ref}^{{commit}}"],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def commit_count(path: Path, ref: str = REF) -> int:
    return int(git(path, "rev-list", "--count", ref).strip())


def message(path: Path, commit: str) -> str:
    return git(path, "log", "-1", "--format=%B", commit)


def subject(path: Path, commit: str) -> str:
    return git(path, "log", "-1", "--format=%s", commit).rstrip("\n")


def parents(path: Path, commit: str) -> list[str]:
    return git(path, "log", "-1", "--format=%P", commit).split()


def git_trailers(path: Path, commit: str) -> list[tuple[str, str]]:
    """The trailers of ``commit`` as git itself parses them."""
    out = git(path, "log", "-1", "--format=%(trailers:only,unfold)", commit)
    pairs = []
    for line in out.splitlines():
        if line.strip():
            key, _, value = line.partition(": ")
            pairs.append((key, value))
    return pairs


def trailer(path: Path, commit: str, key: str) -> list[str]:
    return [value for name, value in git_trailers(path, commit) if name == key]


def blob_id(path: Path, spec: str) -> str:
    return git(path, "rev-parse", spec).strip()


def tree_files(path: Path, ref: str = REF) -> list[str]:
    """The task files on the ref (the records file of merges and identities left out)."""
    listed = git(path, "ls-tree", "-r", "--name-only", ref).split()
    return [name for name in listed if name != RECORDS_PATH]


def index_path(worktree: Path) -> Path:
    found = Path(git(worktree, "rev-parse", "--git-path", "index").strip())
    return found if found.is_absolute() else worktree / found


def common_dir(worktree: Path) -> Path:
    found = Path(git(worktree, "rev-parse", "--git-common-dir").strip())
    return found if found.is_absolute() else (worktree / found).resolve()


def checkout_state(worktree: Path) -> tuple[str, str, str, bytes, int, list[str]]:
    """Everything an operation must not touch in a checkout: HEAD, status, index, files.

    ``--no-optional-locks`` keeps ``git status`` itself from refreshing the index.
    """
    index = index_path(worktree)
    files = sorted(
        str(p.relative_to(worktree))
        for p in worktree.rglob("*")
        if ".git" not in p.relative_to(worktree).parts
    )
    return (
        git(worktree, "rev-parse", "HEAD").strip(),
        git(worktree, "symbolic-ref", "-q", "HEAD", check=False).strip(),
        git(
            worktree,
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--ignored",
            "--untracked-files=all",
        ),
        index.read_bytes(),
        index.stat().st_mtime_ns,
        files,
    )


class Interleave:
    """A ``before_swap`` hook that runs ``action`` on its first call only, counting calls."""

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 1:
            self.action()


@pytest.fixture
def unlocked(repo: Path) -> Iterator[tuple[TaskStore, TaskStore]]:
    """Two handles on one initialized repository, without the writers' kernel lock."""
    git(repo, "config", "tasks.fileLock", "false")
    first = TaskStore.open(repo)
    assert first.init() is True
    yield first, TaskStore.open(repo)


# -- the ref and its commits --------------------------------------------------------------------


def test_git_show_gives_the_file_users_know(store: TaskStore, repo: Path) -> None:
    store.create("Enhance task sync", description="Make sessions agree")
    store.create("Write the docs")
    store.set_status(1, Status.IN_PROGRESS)
    store.set_status("#002", "done")

    assert tasks_md(repo) == (
        "# Tasks\n"
        "\n"
        "- [+] Enhance task sync [#001](process/tasks/001-enhance-task-sync.md)\n"
        "- [x] Write the docs [#002](process/tasks/002-write-the-docs.md)\n"
    )
    spec = git(repo, "show", f"{REF}:process/tasks/001-enhance-task-sync.md")
    assert spec.startswith("# Task #001: Enhance task sync\n")
    assert "## Context\n\nMake sessions agree\n" in spec
    assert sorted(tree_files(repo)) == [
        "process/tasks.md",
        "process/tasks/001-enhance-task-sync.md",
        "process/tasks/002-write-the-docs.md",
    ]
    assert store.index_text() == tasks_md(repo)


def test_one_operation_is_one_commit_with_a_subject_and_trailers(
    store: TaskStore, repo: Path, tmp_path: Path
) -> None:
    assert commit_count(repo) == 1
    steps: list[tuple[Callable[[], object], str, str, str]] = [
        (lambda: store.create("Alpha"), "#001: created “Alpha” (TODO)", "create", "#001"),
        (lambda: store.create("Beta"), "#002: created “Beta” (TODO)", "create", "#002"),
        (
            lambda: store.set_status(1, "IN-PROGRESS"),
            "#001: status TODO → IN-PROGRESS",
            "set-status",
            "#001",
        ),
        (
            lambda: store.update(2, title="Beta two"),
            "#002: changed title “Beta” → “Beta two”",
            "update",
            "#002",
        ),
        (lambda: store.delete(2), "#002: deleted “Beta two”", "delete", "#002"),
    ]
    for number, (step, expected_subject, operation, task) in enumerate(steps, start=2):
        step()
        head = tip(repo)
        assert head is not None
        assert store.last_commit == head
        assert store.head() == head
        assert commit_count(repo) == number
        assert subject(repo, head) == expected_subject
        assert trailer(repo, head, "Tasksync-Operation") == [operation]
        assert trailer(repo, head, "Tasksync-Task") == [task]
        assert trailer(repo, head, "Tasksync-Workspace") == ["repo"]
        text = message(repo, head)
        assert str(tmp_path) not in text
        assert "/" not in trailer(repo, head, "Tasksync-Workspace")[0]

    head = tip(repo)
    assert head is not None
    assert trailer(repo, head, "Tasksync-Title") == ["Beta two"]
    set_status = git(repo, "rev-parse", f"{REF}~2").strip()
    assert trailer(repo, set_status, "Tasksync-Status") == ["TODO -> IN-PROGRESS"]
    create = git(repo, "rev-parse", f"{REF}~4").strip()
    assert trailer(repo, create, "Tasksync-Title") == ["Alpha"]
    assert trailer(repo, create, "Tasksync-Status") == ["TODO"]
    assert "process/tasks/002-beta.md" not in tree_files(repo)


def test_a_no_op_writes_no_commit(store: TaskStore, repo: Path) -> None:
    store.create("Alpha", status="IN-PROGRESS")
    before = tip(repo)
    task = store.set_status(1, "IN-PROGRESS")
    assert task.status is Status.IN_PROGRESS
    assert store.last_commit is None
    store.update(1, title="Alpha")
    assert store.last_commit is None
    assert tip(repo) == before
    assert commit_count(repo) == 2


def test_the_ref_is_an_orphan_chain(store: TaskStore, repo: Path) -> None:
    store.create("Alpha")
    store.set_status(1, "DONE")
    git(repo, "commit", "-q", "--allow-empty", "-m", "second on main")

    roots = git(repo, "rev-list", "--max-parents=0", REF).split()
    assert len(roots) == 1
    assert parents(repo, roots[0]) == []
    assert subject(repo, roots[0]) == "tasks: initialized the task store"
    assert git(repo, "rev-list", "--min-parents=2", REF) == ""
    assert git(repo, "merge-base", REF, "main", check=False) == ""
    ours = set(git(repo, "rev-list", REF).split())
    branch = set(git(repo, "rev-list", "--all", "--not", REF).split())
    assert len(ours) == 3
    assert not ours & branch
    assert not ours & set(git(repo, "rev-list", "main").split())


def test_no_working_tree_file_or_index_is_touched(
    repo: Path, worktree: Path, tmp_path: Path
) -> None:
    (repo / "README").write_text("hello\n", encoding="utf-8")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "readme")
    git(repo, "status", "-s")  # let git settle its own index first
    git(worktree, "status", "-s")
    main_before = checkout_state(repo)
    session_before = checkout_state(worktree)
    assert main_before[2] == ""
    assert session_before[2] == ""

    here = TaskStore.open(repo)
    there = TaskStore.open(worktree)
    assert here.init() is True
    here.create("Alpha", description="first")
    there.create("Beta")
    there.set_status(1, "DONE")
    here.update(2, title="Beta two", description="second")
    here.update(1, spec="# Task #001: Alpha\n\n## Context\n\nnew\n")
    there.delete(2)
    here.list()
    there.get(1)
    here.history()
    here.spec(1)

    assert checkout_state(repo) == main_before
    assert checkout_state(worktree) == session_before
    assert not (repo / "process").exists()
    assert not (worktree / "process").exists()
    assert git(repo, "stash", "list") == ""
    assert commit_count(repo) == 7


def test_reflog_records_every_operation(store: TaskStore, repo: Path) -> None:
    store.create("Alpha")
    store.set_status(1, "BLOCKED")
    log = git(repo, "reflog", "show", "--format=%gs", REF).splitlines()
    assert log == [
        "#001: status TODO → BLOCKED",
        "#001: created “Alpha” (TODO)",
        "tasks: initialized the task store",
    ]


def test_packed_and_gc_ed_ref_keeps_working(store: TaskStore, repo: Path) -> None:
    store.create("Alpha")
    git(repo, "pack-refs", "--all")
    git(repo, "gc", "-q")
    assert store.get(1).title == "Alpha"
    store.create("Beta")
    store.set_status(1, "DONE")
    assert [t.title for t in TaskStore.open(repo).list(include_done=True)] == ["Alpha", "Beta"]
    assert commit_count(repo) == 4
    done = subprocess.run(
        ["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_user_written_index_is_edited_in_place(repo: Path) -> None:
    text = (
        "# Project tasks\n"
        "\n"
        "Prose the user wrote.\n"
        "\n"
        "```\n"
        "- [ ] Example [#900](process/tasks/900-example.md)\n"
        "```\n"
        "\n"
        "- [x] Old task [#155](process/tasks/155-old-task.md)\n"
        "\n"
        "- [ ] Current task [#157](process/tasks/157-current-task.md) <!-- keep -->\n"
        "  - a description bullet\n"
    )
    blob = git_in(repo, text, "hash-object", "-w", "--stdin").strip()
    inner = git_in(repo, f"100644 blob {blob}\ttasks.md\n", "mktree").strip()
    root = git_in(repo, f"040000 tree {inner}\tprocess\n", "mktree").strip()
    commit = git(repo, "commit-tree", root, "-m", "import").strip()
    git(repo, "update-ref", REF, commit)

    store = TaskStore.open(repo)
    assert store.init() is False
    assert tip(repo) == commit
    assert [(str(t.id), t.status) for t in store.list(include_done=True)] == [
        ("#155", Status.DONE),
        ("#157", Status.TODO),
    ]
    assert store.get("task#157").description == "a description bullet"

    store.set_status(157, "IN-REVIEW")
    assert tasks_md(repo) == text.replace("- [ ] Current", "- [-] Current")
    created = store.create("New one")
    assert created.id == TaskId(158)
    assert tasks_md(repo) == (
        text.replace("- [ ] Current", "- [-] Current")
        + "\n- [ ] New one [#158](process/tasks/158-new-one.md)\n"
    )


# -- worktrees, subdirectories, bare repositories -------------------------------------------


def test_worktrees_see_each_others_writes_without_fetch(repo: Path, worktree: Path) -> None:
    main = TaskStore.open(repo)
    session = TaskStore.open(worktree)
    assert session.init() is True
    assert main.init() is False

    session.create("From the session")
    assert [t.title for t in main.list()] == ["From the session"]
    main.set_status(1, "IN-PROGRESS")
    assert session.get(1).status is Status.IN_PROGRESS
    main.create("From main")
    assert [t.title for t in session.list()] == ["From the session", "From main"]

    assert tasks_md(repo) == tasks_md(worktree)
    assert "- [+] From the session [#001]" in tasks_md(worktree)
    assert main.head() == session.head() == tip(worktree)
    assert git(repo, "remote") == ""

    entries = main.history()
    assert [e.workspace for e in entries] == ["repo", "repo", "session", "session"]
    head = tip(repo)
    assert head is not None
    session_commit = entries[2].commit
    assert trailer(repo, session_commit, "Tasksync-Workspace") == ["session"]
    assert trailer(repo, session_commit, "Tasksync-Branch") == ["session"]
    assert str(repo.parent) not in message(repo, session_commit)
    assert str(repo.parent) not in message(repo, head)


def test_workspace_names_stay_one_line(repo: Path) -> None:
    odd = repo.parent / "odd\nTasksync-Operation: delete"
    git(repo, "worktree", "add", "-q", "--detach", str(odd))
    store = TaskStore.open(odd)
    store.init()
    store.create("Alpha")
    head = store.head()
    assert head is not None
    assert trailer(repo, head, "Tasksync-Operation") == ["create"]
    workspace = trailer(repo, head, "Tasksync-Workspace")
    assert len(workspace) == 1
    assert "\n" not in workspace[0]
    assert store.history()[0].operation == "create"


def test_works_from_a_subdirectory(store: TaskStore, repo: Path, worktree: Path) -> None:
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    inner = TaskStore.open(deep)
    inner.create("From a subdirectory")
    deep_session = worktree / "docs"
    deep_session.mkdir()
    TaskStore.open(deep_session).set_status(1, "IN-REVIEW")
    assert store.get(1).status is Status.IN_REVIEW
    assert inner.workspace.name == "repo"
    assert git(deep, "show", f"{REF}:process/tasks.md") == tasks_md(repo)
    assert git(repo, "status", "--porcelain") == ""


def test_bare_repository_by_push(store: TaskStore, repo: Path, tmp_path: Path) -> None:
    store.create("From the worktree")
    hub_path = tmp_path / "hub.git"
    git(tmp_path, "init", "-q", "--bare", str(hub_path))
    git(repo, "push", "-q", str(hub_path), f"{REF}:{REF}")

    hub = TaskStore.open(hub_path)
    assert hub.init() is False
    assert [t.title for t in hub.list()] == ["From the worktree"]
    created = hub.create("From the hub")
    assert created.id == TaskId(2)
    hub.set_status(1, "DONE")

    assert tasks_md(hub_path) == (
        "# Tasks\n"
        "\n"
        "- [x] From the worktree [#001](process/tasks/001-from-the-worktree.md)\n"
        "- [ ] From the hub [#002](process/tasks/002-from-the-hub.md)\n"
    )
    head = tip(hub_path)
    assert head is not None
    assert trailer(hub_path, head, "Tasksync-Workspace") == ["hub"]
    assert trailer(hub_path, head, "Tasksync-Branch") == []
    assert str(tmp_path) not in message(hub_path, head)
    assert hub.history()[0].workspace == "hub"
    # The hub's history continues the pushed one.
    pushed = store.head()
    assert pushed is not None
    assert git_ok(hub_path, "merge-base", "--is-ancestor", pushed, REF)
    assert commit_count(hub_path) == 4


def test_bare_clone_gets_its_own_store(store: TaskStore, repo: Path, tmp_path: Path) -> None:
    store.create("Only in the origin")
    clone = tmp_path / "clone.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(clone))
    git(clone, "config", "tasks.hub", "none")  # its own store, not its origin's
    bare = TaskStore.open(clone)
    assert bare.head() is None
    with pytest.raises(NotInitialized):
        bare.list()
    assert bare.init() is True
    bare.create("In the clone")
    assert [t.title for t in bare.list()] == ["In the clone"]
    assert [t.title for t in store.list()] == ["Only in the origin"]
    assert "- [ ] In the clone [#001]" in tasks_md(clone)
    assert bare.history()[0].workspace == "clone"


# -- config -----------------------------------------------------------------------------------


def test_custom_ref_inside_refs_tasks(repo: Path) -> None:
    git(repo, "config", "tasks.ref", "refs/tasks/team/alpha")
    store = TaskStore.open(repo)
    assert store.ref == "refs/tasks/team/alpha"
    assert store.init() is True
    store.create("On the team ref")
    assert "On the team ref" in tasks_md(repo, "refs/tasks/team/alpha")
    assert tip(repo) is None
    assert TaskStore.open(repo).get(1).title == "On the team ref"


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/x",
        "refs/tasks",
        "refs/tasks/",
        "refs/notes/tasks",
        "tasks/main",
        "refs/tasks/a..b",
        "refs/tasks/x.lock",
        "refs/tasks/has space",
        "refs/tasks//double",
    ],
)
def test_ref_outside_refs_tasks_or_invalid_is_a_config_error(repo: Path, ref: str) -> None:
    git(repo, "config", "tasks.ref", ref)
    with pytest.raises(ConfigError) as caught:
        TaskStore.open(repo)
    assert caught.value.key == "tasks.ref"
    assert "git config tasks.ref refs/tasks/main" in str(caught.value)
    assert "refs/tasks" not in git(repo, "for-each-ref")


@pytest.mark.parametrize(("text", "seconds"), [("0.3", 0.3), ("500ms", 0.5), ("2s", 2.0)])
def test_retry_timeout_accepts_durations(repo: Path, text: str, seconds: float) -> None:
    git(repo, "config", "tasks.retryTimeout", text)
    assert TaskStore.open(repo).workspace.retry_timeout == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "0", "-1", "10m", "1e3", "", "nan"])
def test_invalid_retry_timeout_is_a_config_error(repo: Path, text: str) -> None:
    git(repo, "config", "tasks.retryTimeout", text)
    with pytest.raises(ConfigError) as caught:
        TaskStore.open(repo)
    assert caught.value.key == "tasks.retryTimeout"
    assert "git config tasks.retryTimeout" in str(caught.value)


def test_invalid_file_lock_is_a_config_error(repo: Path) -> None:
    git(repo, "config", "tasks.fileLock", "maybe")
    with pytest.raises(ConfigError) as caught:
        TaskStore.open(repo)
    assert caught.value.key == "tasks.fileLock"


def test_missing_identity_is_a_config_error(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.delenv(key)
    before = tip(repo)
    with pytest.raises(ConfigError) as caught:
        store.create("Nobody")
    assert caught.value.key == "user.name"
    assert "git config --global user.name" in str(caught.value)
    assert tip(repo) == before
    git(repo, "config", "user.name", "Config Name")
    reopened = TaskStore.open(repo)
    reopened.create("Somebody")
    assert reopened.history()[0].author == "Config Name <author@example.com>"


# -- creating the ref -------------------------------------------------------------------------


@pytest.mark.parametrize("file_lock", ["true", "false"])
def test_concurrent_init_in_threads_creates_the_ref_once(repo: Path, file_lock: str) -> None:
    git(repo, "config", "tasks.fileLock", file_lock)
    count = 8
    handles = [TaskStore.open(repo) for _ in range(count)]
    barrier = threading.Barrier(count)
    results: list[bool] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def run(handle: TaskStore) -> None:
        barrier.wait()
        try:
            created = handle.init()
        except BaseException as error:
            with guard:
                errors.append(error)
            return
        with guard:
            results.append(created)

    threads = [threading.Thread(target=run, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [False] * (count - 1) + [True]
    assert commit_count(repo) == 1
    assert tasks_md(repo) == "# Tasks\n"
    head = tip(repo)
    assert head is not None
    assert parents(repo, head) == []
    assert {h.head() for h in handles} == {head}


def test_init_race_forced_only_one_creates(repo: Path) -> None:
    # B creates the ref between A's object write and A's swap.
    git(repo, "config", "tasks.fileLock", "false")
    a, b = TaskStore.open(repo), TaskStore.open(repo)
    outcome: list[bool] = []
    hook = Interleave(lambda: outcome.append(b.init()))
    a._tx.before_swap = hook

    assert a.init() is False
    assert outcome == [True]
    assert a.last_commit is None
    assert tip(repo) == b.last_commit
    assert commit_count(repo) == 1


INIT_SCRIPT = """
import sys
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
print(store.init())
"""


@pytest.mark.parametrize("file_lock", ["true", "false"])
def test_concurrent_init_in_processes_creates_the_ref_once(repo: Path, file_lock: str) -> None:
    git(repo, "config", "tasks.fileLock", file_lock)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INIT_SCRIPT, str(repo)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, [err for _, err in outputs]
    assert sorted(out.strip() for out, _ in outputs) == ["False"] * 5 + ["True"]
    assert commit_count(repo) == 1
    assert tasks_md(repo) == "# Tasks\n"


# -- compare-and-swap, forced ---------------------------------------------------------------


def test_lost_swap_on_create_retries_with_the_next_id(
    unlocked: tuple[TaskStore, TaskStore], repo: Path
) -> None:
    a, b = unlocked
    base = a.head()
    theirs: list[Task] = []
    hook = Interleave(lambda: theirs.append(b.create("From B")))
    a._tx.before_swap = hook

    ours = a.create("From A")

    assert hook.calls == 2  # the first swap lost, the second attempt landed
    assert theirs[0].id == TaskId(1)
    assert ours.id == TaskId(2)
    assert b.last_commit is not None
    assert a.last_commit is not None
    assert parents(repo, b.last_commit) == [base]
    assert parents(repo, a.last_commit) == [b.last_commit]
    assert tip(repo) == a.last_commit
    assert commit_count(repo) == 3
    assert tasks_md(repo) == (
        "# Tasks\n"
        "\n"
        "- [ ] From B [#001](process/tasks/001-from-b.md)\n"
        "- [ ] From A [#002](process/tasks/002-from-a.md)\n"
    )
    assert trailer(repo, a.last_commit, "Tasksync-Task") == ["#002"]
    assert subject(repo, a.last_commit) == "#002: created “From A” (TODO)"


def nested_creates(repo: Path, titles: tuple[str, str, str]) -> dict[str, Task]:
    """Three handles create from one base: A's swap is preceded by B's create, B's by C's."""
    git(repo, "config", "tasks.fileLock", "false")
    a, b, c = (TaskStore.open(repo) for _ in range(3))
    assert a.init() is True
    made: dict[str, Task] = {}
    c_hook = Interleave(lambda: None)
    b_hook = Interleave(lambda: made.__setitem__("c", c.create(titles[2])))
    a_hook = Interleave(lambda: made.__setitem__("b", b.create(titles[1])))
    c._tx.before_swap, b._tx.before_swap, a._tx.before_swap = c_hook, b_hook, a_hook
    made["a"] = a.create(titles[0])
    assert (a_hook.calls, b_hook.calls, c_hook.calls) == (2, 2, 1)
    return made


def test_creates_from_one_base_never_share_an_id(repo: Path) -> None:
    made = nested_creates(repo, ("Title A", "Title B", "Title C"))
    assert {name: task.id.number for name, task in made.items()} == {"c": 1, "b": 2, "a": 3}
    assert tasks_md(repo) == (
        "# Tasks\n"
        "\n"
        "- [ ] Title C [#001](process/tasks/001-title-c.md)\n"
        "- [ ] Title B [#002](process/tasks/002-title-b.md)\n"
        "- [ ] Title A [#003](process/tasks/003-title-a.md)\n"
    )
    assert commit_count(repo) == 4


def test_identical_creates_from_one_base_are_all_kept(repo: Path) -> None:
    # Same title, same workspace, same second: nothing but a per-operation id tells the three
    # commits apart, so a writer must not take another's identical commit for its own.
    made = nested_creates(repo, ("Same title", "Same title", "Same title"))
    assert {name: task.id.number for name, task in made.items()} == {"c": 1, "b": 2, "a": 3}
    assert tree_files(repo) == [
        "process/tasks.md",
        "process/tasks/001-same-title.md",
        "process/tasks/002-same-title.md",
        "process/tasks/003-same-title.md",
    ]
    for number in (1, 2, 3):
        spec = git(repo, "show", f"{REF}:process/tasks/{number:03d}-same-title.md")
        assert spec.startswith(f"# Task #{number:03d}: Same title\n")
    assert len(re.findall(r"\[#00\d\]", tasks_md(repo))) == 3
    assert commit_count(repo) == 4


def test_two_claims_of_one_task_from_one_base_only_one_wins(
    unlocked: tuple[TaskStore, TaskStore], repo: Path
) -> None:
    # Both handles claim #001 with the same expectation from the same tip; B lands first.
    a, b = unlocked
    a.create("Contested")
    hook = Interleave(lambda: b.set_status(1, "IN-PROGRESS", expect="TODO"))
    a._tx.before_swap = hook

    with pytest.raises(PreconditionFailed) as caught:
        a.set_status(1, "IN-PROGRESS", expect="TODO")

    assert caught.value.actual == "IN-PROGRESS"
    assert b.last_commit is not None
    assert tip(repo) == b.last_commit
    assert commit_count(repo) == 3


def test_lost_swap_on_status_keeps_both_changes(
    unlocked: tuple[TaskStore, TaskStore], repo: Path
) -> None:
    a, b = unlocked
    a.create("One")
    a.create("Two")
    hook = Interleave(lambda: b.set_status(2, "BLOCKED"))
    a._tx.before_swap = hook

    task = a.set_status(1, "DONE")

    assert hook.calls == 2
    assert task.status is Status.DONE
    statuses = {t.id.number: t.status for t in TaskStore.open(repo).list(include_done=True)}
    assert statuses == {1: Status.DONE, 2: Status.BLOCKED}
    assert a.last_commit is not None
    assert parents(repo, a.last_commit) == [b.last_commit]
    assert "- [x] One [#001]" in tasks_md(repo)
    assert "- [~] Two [#002]" in tasks_md(repo)


def test_lost_swap_on_update_keeps_the_other_status(
    unlocked: tuple[TaskStore, TaskStore], repo: Path
) -> None:
    a, b = unlocked
    a.create("One", description="first")
    hook = Interleave(lambda: b.set_status(1, "IN-PROGRESS"))
    a._tx.before_swap = hook

    a.update(1, title="One renamed", description="second")

    assert hook.calls == 2
    task = b.get(1)
    assert (task.title, task.status, task.description) == (
        "One renamed",
        Status.IN_PROGRESS,
        "second",
    )


def test_expectation_is_checked_against_the_tip_that_is_replaced(
    unlocked: tuple[TaskStore, TaskStore], repo: Path
) -> None:
    a, b = unlocked
    a.create("One")
    hook = Interleave(lambda: b.set_status(1, "IN-PROGRESS"))
    a._tx.before_swap = hook

    with pytest.raises(PreconditionFailed) as caught:
        a.set_status(1, "DONE", expect="TODO")

    assert hook.calls == 1
    assert caught.value.actual == "IN-PROGRESS"
    assert caught.value.expected == "TODO"
    assert tip(repo) == b.last_commit
    assert b.get(1).status is Status.IN_PROGRESS
    assert commit_count(repo) == 3


def test_creates_in_threads_never_collide(repo: Path) -> None:
    git(repo, "config", "tasks.fileLock", "false")
    writers, each = 4, 5
    handles = [TaskStore.open(repo) for _ in range(writers)]
    assert handles[0].init() is True
    barrier = threading.Barrier(writers)
    made: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def run(number: int, handle: TaskStore) -> None:
        barrier.wait()
        try:
            for n in range(each):
                task = handle.create(f"Writer {number} task {n}")
                with guard:
                    made.append((task.id.number, task.title))
        except BaseException as error:
            with guard:
                errors.append(error)

    threads = [threading.Thread(target=run, args=(i, h)) for i, h in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = writers * each
    assert sorted(number for number, _ in made) == list(range(1, total + 1))
    final = {t.id.number: t.title for t in TaskStore.open(repo).list()}
    assert final == dict(made)
    assert commit_count(repo) == total + 1
    ids = re.findall(r"\[#(\d+)\]", tasks_md(repo))
    assert len(ids) == len(set(ids)) == total


# -- retry and timeout ----------------------------------------------------------------------


def _stale_ref_lock(repo: Path) -> Path:
    """A ref lock file an hour old, as a process killed while holding it leaves one."""
    lock = common_dir(repo) / "refs" / "tasks" / "main.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    hour_ago = time.time() - 3600
    os.utime(lock, (hour_ago, hour_ago))
    return lock


@pytest.mark.parametrize("where", ["main", "worktree"])
@pytest.mark.parametrize("operation", ["create", "set_status", "update", "delete"])
def test_stale_ref_lock_is_removed_and_the_write_lands(
    store: TaskStore, repo: Path, worktree: Path, where: str, operation: str
) -> None:
    store.create("Existing")
    handle = TaskStore.open(repo if where == "main" else worktree)
    before_tip = tip(repo)
    lock = _stale_ref_lock(repo)
    actions: dict[str, Callable[[], object]] = {
        "create": lambda: handle.create("Unblocked"),
        "set_status": lambda: handle.set_status(1, "DONE"),
        "update": lambda: handle.update(1, title="Renamed"),
        "delete": lambda: handle.delete(1),
    }

    actions[operation]()

    assert not lock.exists()
    assert tip(repo) != before_tip
    assert handle.last_commit == tip(repo)
    log = (common_dir(repo) / "tasksync" / "recovery.log").read_text(encoding="utf-8")
    assert f"removed {lock} age=" in log


@pytest.mark.parametrize("where", ["main", "worktree"])
def test_stale_ref_lock_without_the_file_lock_times_out_and_says_how_to_remove_it(
    store: TaskStore, repo: Path, worktree: Path, where: str
) -> None:
    # Without the writers' kernel lock a writer cannot know no other tasksync writer is
    # between taking git's ref lock and releasing it, so it never removes one.
    store.create("Existing")
    git(repo, "config", "tasks.retryTimeout", "0.3")
    git(repo, "config", "tasks.fileLock", "false")
    handle = TaskStore.open(repo if where == "main" else worktree)
    before_tip = tip(repo)
    before_text = tasks_md(repo)
    lock = _stale_ref_lock(repo)

    started = time.monotonic()
    with pytest.raises(ContentionTimeout) as caught:
        handle.set_status(1, "DONE")
    elapsed = time.monotonic() - started

    error = caught.value
    assert isinstance(error, TimeoutError)
    assert 0.25 <= elapsed < 5
    assert error.lock_path is not None
    assert Path(error.lock_path).samefile(lock)
    assert error.lock_age is not None
    assert 3590 < error.lock_age < 3700
    assert error.lock_note is not None and "tasks.fileLock is false" in error.lock_note
    text = str(error)
    assert error.lock_path in text
    assert "tasks.fileLock is false" in text
    age = re.search(r"is (\d+) s old", text)
    assert age is not None
    assert 3590 < int(age.group(1)) < 3700
    assert f"rm '{error.lock_path}'" in text
    assert "git tasks doctor --repair" in text
    assert tip(repo) == before_tip
    assert tasks_md(repo) == before_text
    assert lock.exists()

    lock.unlink()
    handle.set_status(1, "DONE")
    assert tip(repo) != before_tip


def test_stale_ref_lock_does_not_block_init(repo: Path) -> None:
    lock = _stale_ref_lock(repo)
    store = TaskStore.open(repo)
    assert store.init() is True
    assert not lock.exists()
    assert tip(repo) == store.last_commit


def test_stale_ref_lock_blocks_init_without_the_file_lock(repo: Path) -> None:
    git(repo, "config", "tasks.retryTimeout", "300ms")
    git(repo, "config", "tasks.fileLock", "false")
    lock = _stale_ref_lock(repo)
    store = TaskStore.open(repo)
    with pytest.raises(ContentionTimeout) as caught:
        store.init()
    assert caught.value.lock_path is not None
    assert Path(caught.value.lock_path).samefile(lock)
    assert tip(repo) is None
    lock.unlink()
    assert store.init() is True


# -- preconditions ----------------------------------------------------------------------------


def test_expect_mismatch_names_the_current_status_and_writes_nothing(
    store: TaskStore, repo: Path
) -> None:
    store.create("One")
    before_tip = tip(repo)
    before_blob = blob_id(repo, f"{REF}:process/tasks.md")

    with pytest.raises(PreconditionFailed) as caught:
        store.set_status(1, "DONE", expect="IN-PROGRESS")

    error = caught.value
    assert (error.task_id, error.field, error.expected, error.actual) == (
        "#001",
        "status",
        "IN-PROGRESS",
        "TODO",
    )
    assert "status is TODO, not IN-PROGRESS" in str(error)
    assert "git tasks get #001" in str(error)
    assert tip(repo) == before_tip
    assert blob_id(repo, f"{REF}:process/tasks.md") == before_blob

    done = store.set_status(1, "DONE", expect="TODO")
    assert done.status is Status.DONE
    assert commit_count(repo) == 3


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        lambda s: s.set_status(99, "DONE"),
        lambda s: s.set_status("#099", "DONE", expect="TODO"),
        lambda s: s.update(99, title="x"),
        lambda s: s.delete(99),
        lambda s: s.get(99),
        lambda s: s.spec(99),
    ],
    ids=["set_status", "set_status_expect", "update", "delete", "get", "spec"],
)
def test_unknown_id_names_it_and_writes_nothing(
    store: TaskStore, repo: Path, action: Callable[[TaskStore], object]
) -> None:
    store.create("One")
    before_tip = tip(repo)
    before_text = tasks_md(repo).encode("utf-8")
    with pytest.raises(TaskNotFound) as caught:
        action(store)
    assert isinstance(caught.value, KeyError)
    assert "#099" in str(caught.value)
    assert tip(repo) == before_tip
    assert tasks_md(repo).encode("utf-8") == before_text


@pytest.mark.parametrize("text", ["abc", "#", "md#", "1.5", "", "-1"])
def test_invalid_id_is_an_error(store: TaskStore, repo: Path, text: str) -> None:
    before = tip(repo)
    with pytest.raises(InvalidTaskId):
        store.set_status(text, "DONE")
    assert tip(repo) == before


def test_invalid_status_lists_the_valid_names(store: TaskStore, repo: Path) -> None:
    store.create("One")
    before = tip(repo)
    with pytest.raises(InvalidStatus) as caught:
        store.set_status(1, "FINISHED")
    assert isinstance(caught.value, ValueError)
    for name in STATUS_NAMES:
        assert name in str(caught.value)
    assert caught.value.valid == STATUS_NAMES
    with pytest.raises(InvalidStatus):
        store.create("Two", status="nope")
    with pytest.raises(InvalidStatus):
        store.set_status(1, "DONE", expect="nope")
    assert tip(repo) == before


@pytest.mark.parametrize(
    "title",
    [
        "two\nlines",
        "carriage\rreturn",
        "tab\tinside",
        "bell\x07",
        "escape\x1b[31m",
        "nul\x00",
        "sep\u2028arator",
        "bidi\u202eoverride",
        "link](https://evil.example)",
        "forged [#9](process/tasks/009-x.md)",
        "   ",
        "",
    ],
)
def test_forged_title_is_rejected_and_nothing_written(
    store: TaskStore, repo: Path, title: str
) -> None:
    store.create("One")
    before_tip = tip(repo)
    before_text = tasks_md(repo)
    with pytest.raises(InvalidTitle):
        store.create(title)
    with pytest.raises(InvalidTitle):
        store.update(1, title=title)
    assert tip(repo) == before_tip
    assert tasks_md(repo) == before_text


def test_forged_description_is_rejected(store: TaskStore, repo: Path) -> None:
    before = tip(repo)
    with pytest.raises(InvalidDescription):
        store.create("One", description="text\n## Status\nDONE")
    assert tip(repo) == before


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepository) as caught:
        TaskStore.open(plain)
    assert str(plain) in str(caught.value)
    assert "git init" in str(caught.value)
    with pytest.raises(NotARepository):
        TaskStore.open(tmp_path / "missing")


def test_missing_ref_before_init(repo: Path) -> None:
    store = TaskStore.open(repo)
    assert store.head() is None
    actions: list[Callable[[], object]] = [
        store.list,
        lambda: store.get(1),
        lambda: store.create("Too early"),
        lambda: store.set_status(1, "DONE"),
        lambda: store.update(1, title="x"),
        lambda: store.delete(1),
        store.index_text,
    ]
    for action in actions:
        with pytest.raises(NotInitialized) as caught:
            action()
        assert caught.value.ref == REF
        assert "git tasks init" in str(caught.value)
    assert tip(repo) is None
    assert isinstance(NotInitialized(REF), TaskSyncError)


# -- history ----------------------------------------------------------------------------------


def test_history_newest_first_with_fields(store: TaskStore, repo: Path, worktree: Path) -> None:
    store.create("One")
    store.create("Two")
    store.set_status(1, "IN-PROGRESS")
    TaskStore.open(worktree).update(2, title="Two renamed")
    store.delete(2)

    entries = store.history()
    assert [e.operation for e in entries] == [
        "delete",
        "update",
        "set-status",
        "create",
        "create",
        "init",
    ]
    assert [e.task_ids for e in entries] == [
        ("#002",),
        ("#002",),
        ("#001",),
        ("#002",),
        ("#001",),
        (),
    ]
    assert [e.workspace for e in entries] == ["repo", "session", "repo", "repo", "repo", "repo"]
    assert entries[0].commit == tip(repo)
    assert git(repo, "rev-list", REF).split() == [e.commit for e in entries]
    for entry in entries:
        assert entry.author == "Test Author <author@example.com>"
        assert entry.time == 1700000000
        assert entry.offset_minutes == 0
        assert entry.summary == subject(repo, entry.commit)
        assert list(entry.trailers) == git_trailers(repo, entry.commit)
    assert entries[2].summary == "#001: status TODO → IN-PROGRESS"
    assert entries[2].trailer("Tasksync-Status") == "TODO -> IN-PROGRESS"
    assert entries[1].trailer("tasksync-branch") == "session"

    one = store.history(1)
    assert [e.operation for e in one] == ["set-status", "create"]
    assert [e.commit for e in one] == [entries[2].commit, entries[4].commit]
    for form in ("#002", "002", "task#2", 2, TaskId(2)):
        assert [e.commit for e in store.history(form)] == [
            entries[0].commit,
            entries[1].commit,
            entries[3].commit,
        ]
    assert [e.commit for e in store.history(limit=2)] == [entries[0].commit, entries[1].commit]
    assert [e.commit for e in store.history(2, limit=1)] == [entries[0].commit]
    assert store.history(42) == []


def test_writer_lock_held_for_the_whole_wait_is_named(store: TaskStore, repo: Path) -> None:
    # A process holding the kernel writer lock (here: this test, through its own descriptor)
    # is a different cause from a moving ref or a stale git lock, and the message says so.
    import fcntl
    import os

    git(repo, "config", "tasks.retryTimeout", "200ms")
    busy = TaskStore.open(repo)
    path = busy._tx.lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ContentionTimeout) as caught:
            busy.create("Blocked")
    finally:
        os.close(fd)
    assert caught.value.writer_lock == str(path)
    assert "held" in str(caught.value) and str(path) in str(caught.value)
    assert busy.create("Free again").title == "Free again"


def test_a_listing_without_descriptions_reads_no_spec(store: TaskStore) -> None:
    store.create("Described", description="the words")
    full = store.list()
    bare = store.list(descriptions=False)
    assert [t.description for t in full] == ["the words"]
    assert [t.description for t in bare] == [""]
    assert [(t.id, t.title, t.status, t.spec_path) for t in bare] == [
        (t.id, t.title, t.status, t.spec_path) for t in full
    ]


def test_a_chain_of_status_changes_sees_every_spec_edit(store: TaskStore, repo: Path) -> None:
    # A handle remembers its last commit, and the spec files read along a chain of status
    # changes (which write tasks.md alone); an edit by any writer must show in the next task.
    store.create("Traced", description="first")
    other = TaskStore.open(repo)
    assert store.set_status(1, Status.IN_PROGRESS).description == "first"
    assert store.set_status(1, Status.IN_REVIEW).description == "first"
    other.update(1, description="from another handle")
    assert store.set_status(1, Status.BLOCKED).description == "from another handle"
    store.update(1, title="Retitled", description="from this handle")  # tasks.md and spec
    assert store.set_status(1, Status.TODO).description == "from this handle"
    store.create("Second")  # tasks.md, a new spec and the records file
    store.create("Third")
    assert [task.id.number for task in store.list()] == [1, 2, 3]
    assert store.set_status(1, Status.DONE).description == "from this handle"
    git(repo, "update-ref", REF, f"{REF}~7")  # back to the state before the first update
    assert store.set_status(1, Status.CLOSED).description == "first"
    assert store.get(1).status is Status.CLOSED
    assert [task.status for task in other.list(include_done=True)] == [Status.CLOSED]


def test_commits_record_the_time_zone_the_process_switched_to(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The UTC offset is worked out once a second, and again when time.tzset() switches zones.
    for key in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.25)  # one second throughout
    try:
        monkeypatch.setenv("TZ", "UTC0")
        time.tzset()
        store.create("In UTC")
        assert store.history(limit=1)[0].offset_minutes == 0
        monkeypatch.setenv("TZ", "JST-9")
        time.tzset()
        store.create("In Tokyo")
        assert store.history(limit=1)[0].offset_minutes == 9 * 60
    finally:
        monkeypatch.undo()
        time.tzset()
