"""Watching the tasks ref: cases where the events handed out are wrong, missing or late."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import git, run_main
from test_watch import collect

from tasksync import Event, TaskStore
from tasksync import watch as watch_module

Brief = tuple[str, str | None, str | None, str | None]  # kind, task, before, after


def brief(events: list[Event]) -> list[Brief]:
    return [(e.kind, None if e.task is None else str(e.task), e.before, e.after) for e in events]


def clone_without_hub(root: Path, name: str, remote: Path) -> TaskStore:
    """A clone syncing through the bare ``remote``, with a tasks ref of its own."""
    path = root / name
    git(root, "init", "-q", "-b", "main", str(path))
    git(path, "remote", "add", "origin", str(remote))
    git(path, "config", "tasks.hub", "none")
    return TaskStore.open(path)


# -- what the events say --------------------------------------------------------------------------


def test_a_sync_that_renumbers_our_task_is_no_title_change(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "R.git")
    a = clone_without_hub(tmp_path, "A", tmp_path / "R.git")
    b = clone_without_hub(tmp_path, "B", tmp_path / "R.git")
    a.init()
    a.sync()
    b.sync()
    mine = a.create("Alpha from A", description="why A")
    theirs = b.create("Beta from B", description="why B")
    assert mine.id == theirs.id
    b.sync()  # the remote gives the id to B's task: A's moves when A syncs
    watch = a.watch()
    done = a.sync()
    assert done.merged is not None and done.merged.renumbered
    tip = a.head()
    assert tip is not None
    events = brief(collect(watch, tip))
    assert ("created", str(theirs.id), None, "Beta from B") in events
    changed_fields = [e for e in events if e[0] in ("title", "description", "spec")]
    assert changed_fields == [], f"A's task was renumbered, not rewritten: {events}"


def test_removing_the_first_of_two_tasks_sharing_an_id(store: TaskStore) -> None:
    base = store.index_text()
    first = "- [ ] First copy [#001](https://example.com/first)\n"
    second = "- [ ] Second copy [#001](https://example.com/second)\n"
    both = base + first + second  # as files written by older tools can have them
    store.edit_index(base, both)
    assert store.index_text() == both
    watch = store.watch()
    store.edit_index(both, base + second)
    tip = store.head()
    assert tip is not None
    assert brief(collect(watch, tip)) == [("deleted", "#001", "First copy", None)]


# -- stopping -------------------------------------------------------------------------------------


def test_setting_the_stop_event_wakes_a_waiting_watch(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = threading.Event()
    original = watch_module._Waker.wait

    def wait(self: watch_module._Waker, timeout: float) -> None:
        waiting.set()  # the watch has looked at the ref and is about to sleep
        original(self, timeout)

    monkeypatch.setattr(watch_module._Waker, "wait", wait)
    stop = threading.Event()
    watch = store.watch(interval=30, stop=stop)
    received: list[Event] = []
    thread = threading.Thread(target=watch.run, args=(received.append,))
    thread.start()
    try:
        assert waiting.wait(10)
        stop.set()  # the only way to end `store.watch(callback=..., stop=stop)` from outside
        thread.join(3)
        assert not thread.is_alive(), "the watch went on sleeping after its stop event was set"
    finally:
        watch.stop()
        thread.join(10)
    assert received == []


# -- session clones -------------------------------------------------------------------------------


def test_a_session_clone_watch_follows_its_hub_once_it_is_back(repo: Path, tmp_path: Path) -> None:
    TaskStore.open(repo).init()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    away = tmp_path / "away"
    repo.rename(away)
    try:
        session = TaskStore.open(clone)
        assert session.hub_missing
        watch = session.watch(interval=0.05)
    finally:
        away.rename(repo)
    received: list[Event] = []
    done = threading.Event()

    def one(event: Event) -> bool:
        received.append(event)
        done.set()
        return False

    thread = threading.Thread(target=watch.run, args=(one,))
    thread.start()
    try:
        writer = TaskStore.open(clone)
        assert not writer.hub_missing
        for n in range(10):  # keep writing: whenever the watch finds the hub, more lands
            writer.create(f"Written through the hub {n}")
            if done.wait(0.5):
                break
        assert TaskStore.open(repo).get(1).title == "Written through the hub 0"
        assert done.is_set(), "the watch in the clone saw nothing of what the clone wrote"
    finally:
        watch.stop()
        thread.join(10)
    assert [e.kind for e in received] == ["created"]
    assert (received[0].after or "").startswith("Written through the hub")


# -- the command ----------------------------------------------------------------------------------


def test_count_then_since_the_last_commit_shown_misses_nothing(
    store: TaskStore, capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    base = store.head() or ""
    task = store.create("One", description="first")
    store.update(task.id, title="One more", description="second")  # one commit, two events
    store.create("Two")
    store.create("Three")  # something always follows, so neither run below waits
    code, out, _ = run_main(
        capsys, "-C", str(repo), "watch", "--json", "--since", base, "--count", "2"
    )
    assert code == 0
    shown = [json.loads(line) for line in out.splitlines()]
    resume = shown[-1]["commit"]
    code, out, _ = run_main(
        capsys, "-C", str(repo), "watch", "--json", "--since", resume, "--count", "1"
    )
    assert code == 0
    shown += [json.loads(line) for line in out.splitlines()]
    assert [(e["kind"], e["task"]) for e in shown][:4] == [
        ("created", "#001"),
        ("title", "#001"),
        ("description", "#001"),
        ("created", "#002"),
    ]


# -- reftable -------------------------------------------------------------------------------------


@pytest.mark.skipif(watch_module._Inotify.open() is None, reason="inotify is Linux-only")
def test_a_change_in_the_reftable_directory_wakes_the_waker(repo: Path) -> None:
    # In a reftable repository every ref update rewrites reftable/tables.list and nothing under
    # refs/ changes: the waker must watch reftable/ too, or watches fall back to polling.
    git_dir = repo / ".git"
    (git_dir / "reftable").mkdir()
    store = TaskStore.open(repo)
    store.init()
    watch = store.watch(interval=30)
    waker = watch_module._Waker(watch._watched_dirs(), inotify=True)
    try:
        timer = threading.Timer(0.05, (git_dir / "reftable" / "tables.list").write_text, ("x",))
        timer.start()
        started = threading.Event()
        done = threading.Event()

        def sleep() -> None:
            started.set()
            waker.wait(30)
            done.set()

        thread = threading.Thread(target=sleep, daemon=True)
        thread.start()
        assert started.wait(10)
        assert done.wait(10), "a write in reftable/ did not wake the watch"
        timer.join()
    finally:
        waker.close()
        watch.stop()
