"""Random work on four clones that sync through one remote: they converge and lose nothing."""

from __future__ import annotations

import random
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
    store: TaskStore, rnd: random.Random, title: str, created: list[str], deleted: set[str]
) -> None:
    """One random operation (create, status, delete, describe or sync) on one clone."""
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
    else:
        store.sync()


@pytest.mark.parametrize("seed", range(6))
def test_random_work_through_one_remote_converges_with_every_task_once(
    tmp_path: Path, seed: int
) -> None:
    rnd = random.Random(seed)
    paths = clones_of_one_remote(tmp_path, 4)
    first = TaskStore.open(paths[0])
    first.init()
    first.sync()
    for path in paths[1:]:
        TaskStore.open(path).sync()
    created: list[str] = []
    deleted: set[str] = set()
    for step in range(40):
        i = rnd.randrange(len(paths))
        random_step(TaskStore.open(paths[i]), rnd, f"T{step}-c{i}", created, deleted)
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
