"""Many writer processes on one ref: every acknowledged operation survives exactly once."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import git, in_threads, tasks_md

from tasksync import Status, TaskStore

REF = "refs/tasks/main"
WRITERS = 8
OPERATIONS = 50
SHARED = 4
WRITER_SCRIPT = Path(__file__).with_name("stress_writer.py")
TASK_LINE = re.compile(r"- \[(.)\] (.*) \[(#\d+)\]\(([^)]*)\)")
CHECKBOX = {" ": "TODO", "+": "IN-PROGRESS", "-": "IN-REVIEW", "x": "DONE", "~": "BLOCKED"}
CHECKBOX["!"] = "CLOSED"

Record = dict[str, str | None]


def first_parent_trailers(repo: Path) -> list[tuple[str, dict[str, list[str]]]]:
    """(commit, trailers) along the ref's first parents, oldest first, as git parses them."""
    out = git(
        repo,
        "log",
        "--first-parent",
        "--reverse",
        "--format=%H%x1f%(trailers:only,unfold)%x1e",
        REF,
    )
    chain = []
    for chunk in out.split("\x1e"):
        if not chunk.strip():
            continue
        commit, _, body = chunk.strip("\n").partition("\x1f")
        trailers: dict[str, list[str]] = {}
        for line in body.splitlines():
            if line.strip():
                key, _, value = line.partition(": ")
                trailers.setdefault(key, []).append(value)
        chain.append((commit, trailers))
    return chain


def only(trailers: dict[str, list[str]], key: str) -> str:
    values = trailers.get(key, [])
    assert len(values) == 1, (key, trailers)
    return values[0]


def replay(chain: list[tuple[str, dict[str, list[str]]]]) -> dict[str, tuple[str, str]]:
    """The tasks the trailers describe, applying each commit's operation in order."""
    state: dict[str, tuple[str, str]] = {}
    for commit, trailers in chain:
        operation = only(trailers, "Tasksync-Operation")
        if operation == "init":
            assert state == {}, commit
            continue
        task = only(trailers, "Tasksync-Task")
        if operation == "create":
            assert task not in state, (commit, task)
            state[task] = (only(trailers, "Tasksync-Title"), only(trailers, "Tasksync-Status"))
        elif operation == "set-status":
            old, _, new = only(trailers, "Tasksync-Status").partition(" -> ")
            assert state[task][1] == old, (commit, task, state[task], old)
            state[task] = (state[task][0], new)
        else:
            raise AssertionError(f"unexpected operation {operation} in {commit}")
    return state


def index_tasks(text: str) -> list[tuple[str, str, str, str]]:
    """(id, title, status, link) of every task line of tasks.md, in file order."""
    found = []
    for line in text.splitlines():
        match = TASK_LINE.fullmatch(line)
        if match is not None:
            checkbox, title, task_id, link = match.groups()
            found.append((task_id, title, CHECKBOX[checkbox], link))
    return found


def shared_tasks(repo: Path, count: int) -> None:
    """Initialize the store and create ``count`` tasks for the writers to change."""
    setup = TaskStore.open(repo)
    assert setup.init() is True
    for number in range(count):
        setup.create(f"Shared {number}")


class Round(NamedTuple):
    """What writer processes started together reported."""

    records: dict[str, list[Record]]  # writer name -> a record for each of its operations
    started: float  # when the last writer started its operations
    finished: float  # when the first writer finished them


def detached_worktrees(repo: Path, root: Path, count: int) -> list[Path]:
    """``count`` detached worktrees of ``repo``, ``root/w0`` on (a writer in one commits under
    its name, the ``Tasksync-Workspace`` trailer)."""
    paths = [root / f"w{number}" for number in range(count)]
    for path in paths:
        git(repo, "worktree", "add", "-q", "--detach", str(path))
    return paths


def run_writer_processes(
    checkouts: Sequence[Path],
    operations: int,
    *,
    round_number: int = 0,
    launcher: Sequence[str] = (sys.executable, str(WRITER_SCRIPT)),
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Round:
    """tests/stress_writer.py in a process in each checkout, run as ``launcher`` then the
    writer's arguments, with the pinned dates dropped and ``env`` added; all are released
    together once each is ready. The writer in ``checkouts[i]`` is named after it and the round,
    ``w0r0`` in ``w0``, and seeded with ``1000 * round_number + i``. Each must exit 0 (an
    exception a writer saw is an error that would have reached a user) with ``operations``
    records."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")
    }
    environment.update(env or {})
    procs: dict[str, subprocess.Popen[str]] = {}
    for number, checkout in enumerate(checkouts):
        name, seed = f"{checkout.name}r{round_number}", 1000 * round_number + number
        procs[name] = subprocess.Popen(
            [*launcher, str(checkout), name, str(seed), str(operations)],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for proc in procs.values():
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    records: dict[str, list[Record]] = {}
    started: list[float] = []
    finished: list[float] = []
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"{name} failed:\n{err}"
        report = json.loads(out)
        records[name] = report["records"]
        started.append(report["started"])
        finished.append(report["finished"])
        assert len(records[name]) == operations
    return Round(records, max(started), min(finished))


def check_exactly_once(
    repo: Path, records: Mapping[str, list[Record]], shared: int
) -> list[tuple[str, dict[str, list[str]]]]:
    """The records of :func:`run_writer_processes` writers against the ref, which was
    initialized and given ``shared`` tasks before they ran: every acknowledged operation is on
    the first-parent chain exactly once and nothing else is, each commit's trailers say what
    its writer asked for (and name its worktree), the final tasks.md is the replay of that
    history with no duplicate id and one spec file per task, and the repository is sound.
    Returns the chain."""
    acknowledged = [(name, r) for name, rs in records.items() for r in rs if r["commit"]]
    creates = [r for rs in records.values() for r in rs if r["op"] == "create"]
    assert creates
    assert all(r["commit"] for r in creates)

    chain = first_parent_trailers(repo)
    commits = [commit for commit, _ in chain]
    assert git(repo, "rev-list", "--min-parents=2", REF) == ""
    assert Counter(r["commit"] for _, r in acknowledged).most_common(1)[0][1] == 1
    assert set(commits).issuperset(r["commit"] for _, r in acknowledged)
    assert len(commits) == 1 + shared + len(acknowledged)
    assert commits == git(repo, "rev-list", "--reverse", REF).split()

    trailers_of = dict(chain)
    for name, record in acknowledged:
        assert record["commit"] is not None
        trailers = trailers_of[record["commit"]]
        assert only(trailers, "Tasksync-Operation") == record["op"]
        assert only(trailers, "Tasksync-Task") == record["id"]
        assert only(trailers, "Tasksync-Workspace") == name.rpartition("r")[0]
        if record["op"] == "create":
            assert only(trailers, "Tasksync-Title") == record["title"]
            assert only(trailers, "Tasksync-Status") == record["status"]
        else:
            old, _, new = only(trailers, "Tasksync-Status").partition(" -> ")
            assert new == record["status"]
            assert old != new
            if record["expect"] is not None:
                assert old == record["expect"]

    lines = index_tasks(tasks_md(repo))
    ids = [task_id for task_id, _, _, _ in lines]
    assert len(ids) == len(set(ids))
    assert ids == [f"#{n:03d}" for n in range(1, shared + len(creates) + 1)]
    expected = replay(chain)
    assert {task_id: (title, status) for task_id, title, status, _ in lines} == expected
    final = TaskStore.open(repo).list(include_done=True)
    assert {str(t.id): (t.title, t.status.value) for t in final} == expected
    assert all(isinstance(t.status, Status) for t in final)
    files = git(repo, "ls-tree", "-r", "--name-only", REF).split()
    expected_files = ["process/tasks.md", ".tasksync/records.json", *(link for *_, link in lines)]
    assert sorted(files) == sorted(expected_files)

    assert git(repo, "fsck", "--no-dangling", "--no-progress") == ""
    return chain


@pytest.mark.slow
@pytest.mark.parametrize("file_lock", ["true", "false"])
def test_writer_processes_lose_and_duplicate_nothing(
    repo: Path, tmp_path: Path, file_lock: str
) -> None:
    git(repo, "config", "tasks.fileLock", file_lock)
    shared_tasks(repo, SHARED)
    done = run_writer_processes(detached_worktrees(repo, tmp_path, WRITERS), OPERATIONS)
    # Every writer was still running when the last one started.
    assert done.started < done.finished
    acknowledged = [r for rs in done.records.values() for r in rs if r["commit"]]
    assert any(r["op"] == "set-status" for r in acknowledged)

    chain = check_exactly_once(repo, done.records, SHARED)

    # Their commits interleave on the chain (one writer after another would switch 7 times).
    workspaces = [only(t, "Tasksync-Workspace") for _, t in chain[1 + SHARED :]]
    switches = sum(1 for x, y in itertools.pairwise(workspaces) if x != y)
    assert switches >= WRITERS, workspaces


@pytest.mark.parametrize("file_lock", ["true", "false"])
def test_threads_sharing_one_handle_lose_nothing(repo: Path, file_lock: str) -> None:
    # One TaskStore used by 8 threads at once: every create lands once with its own id and every
    # status change it was told succeeded is in the final state.
    git(repo, "config", "tasks.fileLock", file_lock)
    shared = TaskStore.open(repo)
    shared.init()
    done: dict[str, Status] = {}
    guard = threading.Lock()

    def work(worker: int) -> None:
        for i in range(20):
            task = shared.create(f"w{worker}-{i}")
            status = Status.DONE if i % 2 else Status.IN_PROGRESS
            shared.set_status(task.id, status)
            with guard:
                done[task.title] = status

    assert in_threads(work, 8) == []
    final = TaskStore.open(repo).list(include_done=True)
    assert len({t.id for t in final}) == len(final) == 160
    assert {t.title: t.status for t in final} == done
