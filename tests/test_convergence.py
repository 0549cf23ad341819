"""Random work on four clones that sync through one remote, and with each other: they
converge and lose nothing, and no task appears twice."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import git

from tasksync import Status, TaskStore

STATUSES = list(Status)


def clones_of_one_remote(root: Path, count: int) -> list[Path]:
    git(root, "init", "-q", "--bare", "remote.git")
    paths = []
    for i in range(count):
        path = root / f"c{i}"
        git(root, "init", "-q", str(path))
        git(path, "remote", "add", "origin", str(root / "remote.git"))
        git(path, "config", "tasks.hub", "none")  # as on four machines
        paths.append(path)
    return paths


def random_step(
    store: TaskStore,
    rnd: random.Random,
    title: str,
    created: list[str],
    deleted: set[str],
    *,
    peers: tuple[str, ...] = (),
) -> None:
    """One random operation (create, status, delete, describe or sync) on one clone; a sync
    goes to a peer clone instead of the remote now and then when ``peers`` names some."""
    roll = rnd.random()
    tasks = store.list(include_done=True)
    if roll < 0.4:
        store.create(title)
        created.append(title)
    elif roll < 0.55 and tasks:
        store.set_status(rnd.choice(tasks).id, rnd.choice(STATUSES))
    elif roll < 0.65 and tasks:
        gone = rnd.choice(tasks)
        store.delete(gone.id)
        deleted.add(gone.title)
    elif roll < 0.7 and tasks:
        store.update(rnd.choice(tasks).id, description=f"about {title}")
    elif peers and roll < 0.85:
        store.sync(rnd.choice(peers))  # merges of merges meet later
    else:
        store.sync()


def assert_converged(root: Path, paths: list[Path], created: list[str], deleted: set[str]) -> None:
    """Two rounds of syncs through the remote; then every clone and the remote agree, every
    task created and not deleted is there exactly once, and the state is sound."""
    tmp_path = root
    for _ in range(2):
        for path in paths:
            TaskStore.open(path).sync()

    tips = {TaskStore.open(path).head() for path in paths}
    remote = git(tmp_path / "remote.git", "rev-parse", "refs/tasks/main").strip()
    assert tips == {remote}
    store = TaskStore.open(paths[0])
    titles = Counter(task.title for task in store.list(include_done=True))
    for title in created:
        if title in deleted:
            assert titles[title] <= 1, title
        else:
            assert titles[title] == 1, title
    assert set(titles) <= set(created)
    numbers = Counter(task.id.number for task in store.list(include_done=True))
    assert all(count == 1 for count in numbers.values())
    assert store.check() == []
    on_ref = git(root / paths[0].name, "ls-tree", "-r", "--name-only", "refs/tasks/main").split()
    linked = {task.spec_path for task in store.list(include_done=True)}
    assert {name for name in on_ref if name.startswith("process/tasks/")} <= linked  # no orphans
    records = json.loads(
        git(root / paths[0].name, "show", "refs/tasks/main:.tasksync/records.json")
    )
    # No stand-in id (16 digits) leaks into the records or a path. A uid is 16 random hex
    # digits, all decimal one time in about 1,800: only the task numbers it is kept under count.
    records["uids"] = sorted(records.get("uids", {}))
    assert not re.search(r"[0-9]{16,}", json.dumps(records) + " ".join(on_ref))


def random_work(root: Path, seed: int, *, with_peers: bool) -> None:
    """Forty random steps on four clones of one remote (syncing with each other too, with
    ``with_peers``), then the convergence checks."""
    rnd = random.Random(seed)
    paths = clones_of_one_remote(root, 4)
    if with_peers:
        for i, path in enumerate(paths):
            for j, other in enumerate(paths):
                if i != j:
                    git(path, "remote", "add", f"p{j}", str(other))
    first = TaskStore.open(paths[0])
    first.init()
    first.sync()
    for path in paths[1:]:
        TaskStore.open(path).sync()
    created: list[str] = []
    deleted: set[str] = set()
    for step in range(40):
        i = rnd.randrange(len(paths))
        peers = tuple(f"p{j}" for j in range(len(paths)) if j != i) if with_peers else ()
        random_step(TaskStore.open(paths[i]), rnd, f"T{step}-c{i}", created, deleted, peers=peers)
    assert_converged(root, paths, created, deleted)


@pytest.mark.parametrize("seed", range(6))
def test_random_work_through_one_remote_converges_with_every_task_once(
    tmp_path: Path, seed: int
) -> None:
    random_work(tmp_path, seed, with_peers=False)


@pytest.mark.parametrize("seed", range(10))
def test_random_work_with_peer_syncs_converges_with_every_task_once(
    tmp_path: Path, seed: int
) -> None:
    # Clones also sync with each other, so histories that renumbered tasks differently meet:
    # tasks are matched by the identity they were created with, not by their ids.
    random_work(tmp_path, 1000 + seed, with_peers=True)
