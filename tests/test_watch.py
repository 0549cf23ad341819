"""Watching the tasks ref: every commit's events, in order, from writers anywhere."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
from conftest import git, run_main

from tasksync import Event, Status, TaskId, TaskStore
from tasksync.errors import StoreError
from tasksync.events import diff
from tasksync.store import Repo
from tasksync.watch import Watch

REF = "refs/tasks/main"
ROUNDS = 5  # per writer: ROUNDS creates, each followed by a status, title and description change

# One writer process: prints "ready", waits for a line, then works on tasks of its own and
# prints, as JSON, each commit it made with the one event that commit must give, and its name.
WRITER = """
import json, sys
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
name, rounds = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
done = []
def did(kind, task, before, after):
    done.append([store.last_commit, kind, str(task.id), before, after, name])
for n in range(rounds):
    title = f"{name} {n}"
    task = store.create(title, description=f"first {n}")
    did("created", task, None, title)
    did("status", store.set_status(task.id, "IN-PROGRESS"), "TODO", "IN-PROGRESS")
    did("title", store.update(task.id, title=title + " renamed"), title, title + " renamed")
    did("description", store.update(task.id, description=f"second {n}"), f"first {n}",
        f"second {n}")
    if n % 2:
        did("deleted", store.delete(task.id), title + " renamed", None)
print(json.dumps(done), flush=True)
"""

Brief = tuple[str, str, str | None, str | None, str | None]  # commit, kind, task, before, after


def brief(events: Iterable[Event]) -> list[Brief]:
    return [
        (e.commit, e.kind, None if e.task is None else str(e.task), e.before, e.after)
        for e in events
    ]


def expected(path: Path, since: str, until: str) -> list[Brief]:
    """The events of each commit on the first-parent chain after ``since`` up to ``until``,
    worked out here from git's own list of commits."""
    repo = Repo.discover(path)
    listed = git(path, "rev-list", "--reverse", "--first-parent", f"{since}..{until}").split()
    out: list[Brief] = []
    previous = since
    for commit in listed:
        found = diff(repo.reader(previous), repo.reader(commit), repo.changed(previous, commit))
        out += [(commit, kind, task, old, new) for _, kind, task, old, new in brief(found)]
        previous = commit
    return out


def collect(watch: Watch, until: str, limit: float = 30.0) -> list[Event]:
    """Events up to the last one of commit ``until``; a watch that misses it is stopped after
    ``limit`` seconds instead of hanging the test."""
    timer = threading.Timer(limit, watch.stop)
    timer.start()
    out: list[Event] = []
    try:
        for event in watch:
            out.append(event)
            if watch.last == until:
                break
    finally:
        timer.cancel()
    assert out and out[-1].commit == until, f"the watch stopped before {until}: {brief(out)}"
    return out


def start_writers(places: list[Path]) -> list[subprocess.Popen[str]]:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), path.name, str(ROUNDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in places
    ]
    for writer in writers:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:  # all at once, so their commits interleave
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    return writers


def finish(writers: list[subprocess.Popen[str]]) -> list[list[str | None]]:
    done: list[list[str | None]] = []
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        done += json.loads(out)
    return done


@pytest.fixture
def clone(repo: Path) -> Path:
    """A session clone of ``repo``: its store is ``repo``'s."""
    path = repo.parent / "clone"
    git(repo.parent, "clone", "-q", str(repo), str(path))
    return path


# -- writers everywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "where"), [("inotify", "clone"), ("poll", "worktree")], ids=["inotify", "poll"]
)
def test_every_commit_of_every_writer_yields_its_events(
    repo: Path, worktree: Path, clone: Path, mode: str, where: str
) -> None:
    store = TaskStore.open(repo)
    store.init()
    start = store.head()
    assert start is not None
    watching = clone if where == "clone" else worktree
    poll = mode == "poll"
    watch = TaskStore.open(watching).watch(poll=poll)
    assert watch.last == start
    received: list[Event] = []
    done = threading.Event()
    end = "the end"

    def collect_all(event: Event) -> bool:
        received.append(event)
        if event.kind == "created" and event.after == end:
            done.set()
            return False
        return True

    thread = threading.Thread(target=watch.run, args=(collect_all,))
    thread.start()
    command = [sys.executable, "-m", "tasksync", "-C", str(watching), "watch", "--json"]
    per_writer = ROUNDS * 4 + ROUNDS // 2
    command += ["--since", start, "--count", str(3 * per_writer + 1), *(["--poll"] * poll)]
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        acknowledged = finish(start_writers([repo, worktree, clone]))
        TaskStore.open(worktree).create(end)
        assert done.wait(30), f"no event for the last commit; received {brief(received)}"
    finally:
        watch.stop()
        thread.join(10)
    final = store.head()
    assert final is not None
    assert watch.last == final
    chain = expected(repo, start, final)
    assert brief(received) == chain  # in order, none missed, none twice
    assert len(chain) == 3 * per_writer + 1

    by_commit: dict[str, list[Brief]] = {}
    for event in brief(received):
        by_commit.setdefault(event[0], []).append(event)
    assert len(acknowledged) == 3 * per_writer
    workspaces = {e.commit: e.workspace for e in received}
    for commit, kind, task, before, after, name in acknowledged:
        assert commit is not None and kind is not None
        assert by_commit.pop(commit) == [(commit, kind, task, before, after)]
        assert workspaces[commit] == name
    last_id = f"#{3 * ROUNDS + 1:03d}"
    assert [e[1:] for e in by_commit.pop(final)] == [("created", last_id, None, end)]
    assert not by_commit  # no event from a commit nobody made

    try:
        out, err = cli.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        cli.kill()
        cli.communicate()
        raise
    assert cli.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [event.to_json() for event in received]


# -- what the walk reads --------------------------------------------------------------------------


def test_several_commits_between_two_looks_all_count(store: TaskStore) -> None:
    watch = store.watch()
    first = store.create("One", description="why")
    store.set_status(first.id, Status.DONE)
    store.update(first.id, title="One more", description="because")
    store.create("Two")
    store.delete(first.id)
    tip = store.head()
    assert tip is not None
    events = collect(watch, tip)
    assert [(e.kind, str(e.task)) for e in events] == [
        ("created", "#001"),
        ("status", "#001"),
        ("title", "#001"),
        ("description", "#001"),
        ("created", "#002"),
        ("deleted", "#001"),
    ]
    assert {e.operation for e in events} == {"create", "set-status", "update", "delete"}
    assert {e.workspace for e in events} == {"repo"}
    assert {e.author for e in events} == {"Test Author <author@example.com>"}
    assert {e.time for e in events} == {1700000000}


def test_since_replays_history(store: TaskStore) -> None:
    base = store.head()
    assert base is not None
    task = store.create("One")
    store.set_status(task.id, Status.BLOCKED)
    tip = store.head()
    assert tip is not None
    for since in (base, base[:10], f"{REF}~2"):
        events = collect(store.watch(since=since), tip)
        assert brief(events) == expected(store.workdir, base, tip)
        assert [e.kind for e in events] == ["created", "status"]
    replay = store.watch(since=base)
    assert replay.last == base


def test_a_rewritten_ref_is_one_step_to_the_new_tip(store: TaskStore, repo: Path) -> None:
    store.create("A")
    kept = store.head()
    store.create("B")
    watch = store.watch()
    git(repo, "update-ref", REF, kept or "")  # as a force push would
    store.create("C")  # takes #002 again: B is not in this history
    store.set_status(1, Status.DONE)
    tip = store.head()
    assert tip is not None
    events = collect(watch, tip)
    assert brief(events) == [
        (tip, "status", "#001", "TODO", "DONE"),  # all of it, from B's state to the new tip
        (tip, "title", "#002", "B", "C"),
    ]


def test_merges_and_a_fast_forward_to_a_merge(store: TaskStore, repo: Path) -> None:
    store.create("A")
    store.create("M")
    git(repo, "update-ref", "refs/tasks/side", REF)
    git(repo, "config", "tasks.ref", "refs/tasks/side")
    side = TaskStore.open(repo)
    git(repo, "config", "--unset", "tasks.ref")
    side.create("S")  # #003
    store.set_status(1, Status.DONE)
    side.merge(REF)  # on side: first parent its own, second parent main's tip
    watch = store.watch()
    assert store.merge("refs/tasks/side").outcome == "fast-forward"
    merged = store.head()
    side.create("T")  # #004
    store.set_status(2, Status.BLOCKED)
    done = store.merge("refs/tasks/side")
    assert done.outcome == "merged" and done.commit is not None
    store.set_status(3, Status.DONE)
    tip = store.head()
    assert tip is not None and merged is not None
    assert brief(collect(watch, tip)) == [
        (merged, "created", "#003", None, "S"),  # what the side added, main's part left out
        (store.history(limit=3)[2].commit, "status", "#002", "TODO", "BLOCKED"),
        (done.commit, "created", "#004", None, "T"),  # the merge against its first parent
        (tip, "status", "#003", "TODO", "DONE"),
    ]


def test_watch_before_init(repo: Path) -> None:
    store = TaskStore.open(repo)
    watch = store.watch()
    assert watch.last is None
    store.init()
    store.create("First")
    tip = store.head()
    assert tip is not None
    assert [(e.kind, e.after, e.operation) for e in collect(watch, tip)] == [
        ("created", "First", "create")
    ]


def test_a_deleted_ref_gives_no_events_until_it_is_back(store: TaskStore, repo: Path) -> None:
    store.create("A")
    watch = store.watch()
    before = store.head()
    git(repo, "update-ref", "-d", REF)
    events = watch.__iter__()
    stopper = threading.Timer(0.3, watch.stop)  # it must wait, not fail or make events
    stopper.start()
    assert list(events) == []
    stopper.join()
    assert watch.last == before
    git(repo, "update-ref", REF, before or "")
    store.create("B")
    tip = store.head()
    assert tip is not None
    resumed = TaskStore.open(repo).watch(since=before)
    assert [(e.kind, e.after) for e in collect(resumed, tip)] == [("created", "B")]


def test_a_vanished_repository_is_an_error(store: TaskStore, repo: Path) -> None:
    watch = store.watch()
    shutil.rmtree(repo)
    with pytest.raises(StoreError, match=r"is gone.*start the watch again"):
        next(iter(watch))


def test_stop_from_another_thread_ends_a_waiting_watch(store: TaskStore) -> None:
    watch = store.watch(interval=60)
    received: list[Event] = []
    thread = threading.Thread(target=lambda: received.extend(watch))
    thread.start()
    watch.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert received == []


def test_a_stop_event_ends_a_callback_watch(store: TaskStore) -> None:
    stop = threading.Event()
    stop.set()
    calls: list[Event] = []
    watch = store.watch(callback=calls.append, stop=stop)
    assert calls == [] and watch.last == store.head()


def test_invalid_interval(store: TaskStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        store.watch(interval=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_inotify_wakes_the_watch_through_init_and_pack_refs(repo: Path) -> None:
    """Polling once a minute: only inotify can deliver these events within the test."""
    store = TaskStore.open(repo)
    watch = store.watch(interval=60)  # refs/tasks/ does not exist yet
    received: list[Event] = []
    seen = threading.Semaphore(0)

    def one(event: Event) -> None:
        received.append(event)
        seen.release()

    thread = threading.Thread(target=watch.run, args=(one,))
    thread.start()
    try:
        store.init()
        store.create("First")
        assert seen.acquire(timeout=20)
        git(repo, "pack-refs", "--all")  # the loose ref file goes; the value stays
        assert not (repo / ".git" / "refs" / "tasks" / "main").exists()
        shutil.rmtree(repo / ".git" / "refs" / "tasks", ignore_errors=True)  # watched, gone
        store.set_status(1, Status.DONE)
        assert seen.acquire(timeout=20)
        assert watch.notified
    finally:
        watch.stop()
        thread.join(10)
    assert [(e.kind, e.after) for e in received] == [("created", "First"), ("status", "DONE")]


# -- the command ----------------------------------------------------------------------------------


def test_human_lines(store: TaskStore, capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    base = store.head() or ""
    task = store.create("Fix login")
    store.set_status(task.id, Status.DONE)
    store.update(task.id, title="Fix the login", description="Why")
    store.update(task.id, spec="# Task #001: x\n\n## Context\n\nWhy\n\n## More\n")
    store.delete(task.id)
    code, out, err = run_main(capsys, "-C", str(repo), "watch", "--since", base, "--count", "6")
    assert (code, err) == (0, "")
    ids = [line.split()[0] for line in out.splitlines()]
    assert [line.split(" ", 2)[2] for line in out.splitlines()] == [
        "#001 created \u201cFix login\u201d (TODO)",
        "#001 status TODO \u2192 DONE",
        "#001 title \u201cFix login\u201d \u2192 \u201cFix the login\u201d",
        "#001 description changed",
        "#001 spec changed",
        "#001 deleted \u201cFix the login\u201d",
    ]
    assert all(len(i) == 10 for i in ids)
    assert out.splitlines()[0].split()[1] == "[repo]"


def test_human_lines_show_no_control_characters() -> None:
    from tasksync.cli_watch import event_line

    hostile = Event("title", TaskId(1), "a\x1b[2Jb", "c\rd", "0123456789abc", workspace="w\x07")
    assert (
        event_line(hostile)
        == "0123456789 [w?] #001 title \u201ca?[2Jb\u201d \u2192 \u201cc?d\u201d"
    )
    assert event_line(Event("spec", TaskId(1), None, "x", "c")) == "c #001 spec added"
    assert event_line(Event("spec", TaskId(1), "x", None, "c")) == "c #001 spec removed"
    assert event_line(Event("conflict", None, None, "lines outside tasks: …", "c")) == (
        "c conflict: lines outside tasks: …"
    )


def test_exec_gets_json_on_stdin_and_no_shell(
    store: TaskStore, capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path
) -> None:
    base = store.head() or ""
    hostile = ["$(touch pwned)", "; rm -rf x", "`touch pwned2` && touch pwned3"]
    for title in hostile:
        store.create(title)
    (tmp_path / "x").mkdir()
    log = tmp_path / "events.jsonl"
    script = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read())"
    command = shlex.join([sys.executable, "-c", script, str(log)])
    code, out, err = run_main(
        capsys, "-C", str(repo), "watch", "--since", base, "--count", "3", "--exec", command
    )
    assert (code, err) == (0, "")
    received = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["kind"], e["after"]) for e in received] == [("created", t) for t in hostile]
    assert len(out.splitlines()) == 3
    assert (tmp_path / "x").is_dir()
    for where in (tmp_path, repo, Path.cwd()):
        assert not any((where / name).exists() for name in ("pwned", "pwned2", "pwned3"))


def test_a_failing_exec_is_reported_and_watching_goes_on(
    store: TaskStore, capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    base = store.head() or ""
    store.create("One")
    store.create("Two")
    command = shlex.join([sys.executable, "-c", "raise SystemExit(3)"])
    code, out, err = run_main(
        capsys, "-C", str(repo), "watch", "--json", "--since", base, "--count", "2",
        "--exec", command,
    )  # fmt: skip
    assert code == 0
    assert [json.loads(line)["after"] for line in out.splitlines()] == ["One", "Two"]
    assert err.count("exited with status 3 for the created event of") == 2


@pytest.mark.parametrize(
    ("command", "message"),
    [("", "--exec needs a command"), ("'open", "cannot be split"), ("no-such-cmd-x", "not found")],
)
def test_exec_that_cannot_run_is_a_usage_error(
    store: TaskStore, capsys: pytest.CaptureFixture[str], repo: Path, command: str, message: str
) -> None:
    code, _, err = run_main(capsys, "-C", str(repo), "watch", "--exec", command)
    assert code == 2
    assert message in err


def test_cli_waits_for_init_then_prints(repo: Path) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "tasksync", "-C", str(repo), "watch", "--json", "--count", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stderr is not None
    assert "waiting for `git tasks init`" in watcher.stderr.readline()  # it is watching now
    store = TaskStore.open(repo)
    store.init()
    store.create("Hello")
    out, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0
    (line,) = out.splitlines()
    assert json.loads(line)["after"] == "Hello"


def test_ctrl_c_exits_130(repo: Path) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "tasksync", "-C", str(repo), "watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stderr is not None
    assert "waiting for `git tasks init`" in watcher.stderr.readline()
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130
    assert err.strip() == "interrupted"


def test_a_watch_takes_no_lock_and_writes_nothing(store: TaskStore, repo: Path) -> None:
    base = store.head() or ""
    store.create("One")
    tip = store.head() or ""
    git_dir = repo / ".git"
    stale = git_dir / "refs" / "tasks" / "main.lock"  # what a writer killed mid-update leaves
    stale.touch()
    before = sorted(git_dir.rglob("*"))
    events = collect(store.watch(since=base, poll=True), tip)
    assert [(e.kind, e.after) for e in events] == [("created", "One")]
    assert sorted(git_dir.rglob("*")) == before
