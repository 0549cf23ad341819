"""`git tasks sync`: clones on different machines meet through a remote's tasks ref."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pygit2
import pytest
from conftest import GitDaemon, bare_with_main, free_port, git, run_main, tasks_md

from tasksync import Status, TaskStore
from tasksync.errors import SyncError
from tasksync.sync import Git, tracking_ref

REF = "refs/tasks/main"
TRACKING = "refs/tasksync/remotes/origin/main"
CLONES = 4

# One syncing process: prints "ready", waits for a line, syncs with origin, prints the result.
SYNCER = """
import json, sys
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
done = store.sync()
print(json.dumps({"attempts": done.attempts, "pushed": done.pushed}), flush=True)
"""


# -- helpers --------------------------------------------------------------------------------------


def tip(path: Path, ref: str = REF) -> str:
    return git(path, "rev-parse", "-q", "--verify", ref, check=False).strip()


def machine(url: str | Path, path: Path) -> Path:
    """A clone of ``url`` that behaves as one on another machine: never a session of a hub
    (a bare repository on disk is a local path, which would otherwise make it one)."""
    git(path.parent, "clone", "-q", str(url), str(path))
    git(path, "config", "tasks.hub", "none")
    return path


def statuses(path: Path) -> dict[str, Status]:
    return {t.title: t.status for t in TaskStore.open(path).list(include_done=True)}


def seeded(remote: Path, path: Path, *titles: str) -> Path:
    """A clone of ``remote`` whose first sync put a store with ``titles`` on the remote."""
    machine(remote, path)
    store = TaskStore.open(path)
    store.init()
    for title in titles:
        store.create(title)
    assert store.sync().pushed == store.head()
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository on disk with one commit on main and no tasks ref."""
    return bare_with_main(tmp_path, "remote.git")


# -- first syncs, dry runs ------------------------------------------------------------------------


def test_first_sync_creates_the_remote_ref_and_a_second_clone_gets_it(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = machine(remote, tmp_path / "a")
    store = TaskStore.open(a)
    store.init()
    store.create("First")
    store.create("Second")
    head = store.head()
    assert run_main(capsys, "-C", str(a), "sync", "--dry-run") == (
        0,
        f"origin: create on remote (local {head[:12] if head else ''}, remote none)\n",
        "",
    )
    assert tip(remote) == ""
    assert tip(a) == head

    done = store.sync()

    assert (done.remote, done.fetched, done.merged, done.pushed) == ("origin", None, None, head)
    assert done.attempts == 1
    assert tip(remote) == head == tip(a, TRACKING)
    assert git(a, "branch", "-r").split() == ["origin/HEAD", "->", "origin/main", "origin/main"]

    b = machine(remote, tmp_path / "b")
    code, out, _ = run_main(capsys, "-C", str(b), "sync", "--dry-run", "--json")
    assert code == 0
    assert json.loads(out) == {
        "remote": "origin",
        "local": None,
        "fetched": head,
        "action": "fast-forward",
    }
    assert tip(b) == ""
    code, out, _ = run_main(capsys, "-C", str(b), "sync", "--json")
    assert code == 0
    assert json.loads(out) == {
        "remote": "origin",
        "fetched": head,
        "merged": "fast-forward",
        "pushed": None,
        "handed_to_hub": None,
        "attempts": 1,
        "restored": [],
        "conflicts": [],
    }
    assert tip(b) == head
    assert tasks_md(b) == tasks_md(a)

    TaskStore.open(b).set_status(1, Status.DONE)
    local = tip(b)
    assert run_main(capsys, "-C", str(b), "sync", "--dry-run")[1] == (
        f"origin: push (local {local[:12]}, remote {head[:12]})\n"
    )
    assert run_main(capsys, "-C", str(a), "sync", "--dry-run")[1] == (
        f"origin: nothing (local {head[:12]}, remote {head[:12]})\n"
    )
    assert (tip(b), tip(remote), tip(a)) == (local, head, head)  # the dry runs moved nothing
    assert run_main(capsys, "-C", str(b), "sync") == (0, f"origin: pushed {local[:12]}\n", "")
    assert run_main(capsys, "-C", str(a), "sync", "--dry-run")[1] == (
        f"origin: fast-forward (local {head[:12]}, remote {local[:12]})\n"
    )
    assert tip(a) == head
    assert run_main(capsys, "-C", str(a), "sync") == (0, "origin: fast-forward from origin\n", "")
    assert tip(a) == tip(remote) == local
    assert run_main(capsys, "-C", str(a), "sync") == (0, "origin: up to date\n", "")


# -- offline changes on both sides ----------------------------------------------------------------


def test_offline_changes_on_both_sides_converge(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = seeded(remote, tmp_path / "a", "One", "Two", "Three", "Four")
    b = machine(remote, tmp_path / "b")
    TaskStore.open(b).sync()
    ours, theirs = TaskStore.open(a), TaskStore.open(b)
    ours.set_status(2, Status.DONE)  # neighbouring ticks
    theirs.set_status(3, Status.DONE)
    ours.set_status(1, Status.IN_PROGRESS)  # one task, two statuses
    theirs.set_status(1, Status.BLOCKED)
    ours.create("Apples")  # #005 twice
    theirs.create("Bananas")
    assert ours.get(5).title == "Apples"
    assert theirs.get(5).title == "Bananas"

    first = ours.sync()
    assert first.pushed == tip(remote)
    code, out, _ = run_main(capsys, "-C", str(b), "sync", "--json")
    assert code == 0
    second = json.loads(out)
    assert (second["merged"], second["pushed"]) == ("merged", tip(remote))
    assert [(c["task"], c["field"]) for c in second["conflicts"]] == [("#001", "status")]
    third = ours.sync()
    assert third.merged is not None
    assert third.merged.outcome == "fast-forward"
    assert third.pushed is None

    assert tip(a) == tip(b) == tip(remote)
    for path in (a, b):
        got = statuses(path)
        assert got["Two"] is Status.DONE
        assert got["Three"] is Status.DONE
        assert got["One"] in (Status.IN_PROGRESS, Status.BLOCKED)
        assert got["Four"] is Status.TODO
        tasks = TaskStore.open(path).list(include_done=True)
        assert sorted(t.title for t in tasks) == sorted(
            ["One", "Two", "Three", "Four", "Apples", "Bananas"]
        )
        assert len({t.id for t in tasks}) == 6
        kept = TaskStore.open(path).conflicts(1)
        assert len(kept) == 1
        assert {kept[0].ours, kept[0].theirs} == {"IN-PROGRESS", "BLOCKED"}
        assert TaskStore.open(path).renumbered(5) != ()


def test_four_clones_sync_concurrently_and_lose_nothing(remote: Path, tmp_path: Path) -> None:
    base = ["Shared 1", "Shared 2", "Shared 3", "Shared 4", "Contended"]
    clones = [seeded(remote, tmp_path / "c0", *base)]
    clones += [machine(remote, tmp_path / f"c{n}") for n in range(1, CLONES)]
    for path in clones[1:]:
        TaskStore.open(path).sync()
    assert {tip(path) for path in clones} == {tip(remote)}
    wanted = [Status.DONE, Status.IN_REVIEW, Status.BLOCKED, Status.CLOSED]
    for n, path in enumerate(clones):  # offline: own task, contended task, three creates
        store = TaskStore.open(path)
        store.set_status(n + 1, wanted[n])
        store.set_status(5, wanted[n])
        for k in range(3):
            store.create(f"Clone {n} task {k}")

    order = list(range(CLONES))
    random.Random(7).shuffle(order)
    syncers = {
        n: subprocess.Popen(
            [sys.executable, "-c", SYNCER, str(clones[n])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in order
    }
    for n in order:
        stdout = syncers[n].stdout
        assert stdout is not None
        assert stdout.readline() == "ready\n"
    for n in order:  # released together, in a shuffled order
        stdin = syncers[n].stdin
        assert stdin is not None
        stdin.write("go\n")
        stdin.flush()
    for n in order:
        out, err = syncers[n].communicate(timeout=60)
        assert syncers[n].returncode == 0, err
        assert json.loads(out)["pushed"] is not None  # each had work the remote lacked
    for path in clones:  # one more round each
        TaskStore.open(path).sync()

    assert {tip(path) for path in clones} == {tip(remote)}
    tasks = TaskStore.open(clones[0]).list(include_done=True)
    assert len({t.id for t in tasks}) == len(tasks) == 5 + 3 * CLONES
    assert Counter(t.title for t in tasks) == Counter(
        base + [f"Clone {n} task {k}" for n in range(CLONES) for k in range(3)]
    )
    got = statuses(clones[0])
    for n in range(CLONES):
        assert got[f"Shared {n + 1}"] is wanted[n]
    assert got["Contended"] in wanted
    contended = TaskStore.open(clones[0]).conflicts(5)
    assert contended != ()  # four different statuses: the ones not kept are recorded
    assert all(c.field == "status" for c in contended)
    set_aside = {c.theirs for c in contended} | {c.ours for c in contended}
    assert set_aside == {s.value for s in wanted}


# -- races and rewritten remotes ------------------------------------------------------------------


def test_a_push_refused_because_the_remote_moved_is_retried(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = seeded(remote, tmp_path / "a", "One", "Two")
    b = machine(remote, tmp_path / "b")
    TaskStore.open(b).sync()
    TaskStore.open(a).set_status(1, Status.DONE)
    real_push = Git.push
    verdicts: list[tuple[bool, str]] = []

    def push_after_another(
        self: Git, remote_name: str, ref: str, commit: str, expected: str | None
    ) -> tuple[bool, str]:
        if not verdicts:  # between a's fetch and a's push, b pushes
            TaskStore.open(b).set_status(2, Status.IN_PROGRESS)
            git(b, "push", "-q", "origin", f"{REF}:{REF}")
        verdicts.append(real_push(self, remote_name, ref, commit, expected))
        return verdicts[-1]

    monkeypatch.setattr(Git, "push", push_after_another)
    done = TaskStore.open(a).sync()

    assert [landed for landed, _ in verdicts] == [False, True]
    assert done.attempts == 2
    assert done.merged is not None
    assert done.merged.outcome == "merged"
    assert done.pushed == tip(a) == tip(remote) == tip(a, TRACKING)
    assert TaskStore.open(b).sync().pushed is None
    assert tip(b) == tip(remote)
    assert statuses(b) == {"One": Status.DONE, "Two": Status.IN_PROGRESS}


def test_a_retry_after_a_lost_race_keeps_every_created_task(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = seeded(remote, tmp_path / "first", "Base")
    second, third = machine(remote, tmp_path / "second"), machine(remote, tmp_path / "third")
    for path in (second, third):
        TaskStore.open(path).sync()
    # #002 created three times offline; first's line sorts last, so each merge renumbers it
    for path, title in ((first, "Zebra"), (second, "Apple"), (third, "Banana")):
        TaskStore.open(path).create(title)
    TaskStore.open(first).sync()  # the remote has first's #002
    real_push = Git.push
    verdicts: list[tuple[bool, str]] = []

    def third_lands_first(
        self: Git, remote_name: str, ref: str, commit: str, expected: str | None
    ) -> tuple[bool, str]:
        if not verdicts:  # second has merged first's work; third merges it too and pushes
            verdicts.append((True, ""))
            assert TaskStore.open(third).sync().pushed is not None
        verdicts.append(real_push(self, remote_name, ref, commit, expected))
        return verdicts[-1]

    monkeypatch.setattr(Git, "push", third_lands_first)
    done = TaskStore.open(second).sync()

    assert done.attempts == 2  # refused once, merged again, landed
    for path in (first, second, third):
        TaskStore.open(path).sync()
    assert {tip(path) for path in (first, second, third)} == {tip(remote)}
    tasks = TaskStore.open(first).list()
    assert sorted(t.title for t in tasks) == ["Apple", "Banana", "Base", "Zebra"]
    assert len({t.id for t in tasks}) == 4


@pytest.mark.parametrize("rewrite", ["older", "unrelated"])
def test_a_force_pushed_remote_is_merged_and_local_tasks_survive(
    remote: Path, tmp_path: Path, rewrite: str
) -> None:
    a = seeded(remote, tmp_path / "a", "One", "Two")
    TaskStore.open(a).create("Local only")
    if rewrite == "older":
        first = git(a, "rev-list", "--max-parents=0", REF).strip()
        git(remote, "update-ref", REF, first)
        expected = ["One", "Two", "Local only"]
    else:
        stranger = tmp_path / "stranger"
        git(tmp_path, "init", "-q", "-b", "main", str(stranger))
        store = TaskStore.open(stranger)
        store.init()
        store.create("Stranger")
        git(stranger, "push", "-q", "--force", str(remote), f"{REF}:{REF}")
        expected = ["One", "Two", "Local only", "Stranger"]
    rewritten = tip(remote)

    done = TaskStore.open(a).sync()

    assert done.fetched == rewritten
    assert done.pushed == tip(a) == tip(remote)
    git(a, "merge-base", "--is-ancestor", rewritten, REF)
    tasks = TaskStore.open(a).list()
    assert sorted(t.title for t in tasks) == sorted(expected)
    assert len({t.id for t in tasks}) == len(expected)


# -- remote setup ---------------------------------------------------------------------------------


def test_remote_setup_adds_one_fetch_refspec_and_no_push(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded(remote, tmp_path / "other", "From elsewhere")
    a = machine(remote, tmp_path / "a")
    TaskStore.open(a).init()
    TaskStore.open(a).create("Not pushed yet")
    local = tip(a)
    default = "+refs/heads/*:refs/remotes/origin/*"
    spec = "+refs/tasks/*:refs/tasksync/remotes/origin/*"

    assert run_main(capsys, "-C", str(a), "remote", "setup", "origin") == (
        0,
        f"origin: fetches tasks into {tracking_ref('origin', REF)}\n",
        "",
    )
    assert run_main(capsys, "-C", str(a), "remote", "setup", "origin")[1] == (
        f"origin: fetches tasks into {TRACKING} (already set up)\n"
    )
    assert git(a, "config", "--get-all", "remote.origin.fetch").split() == [default, spec]
    assert git(a, "config", "--get-all", "remote.origin.push", check=False) == ""
    code, _, err = run_main(capsys, "-C", str(a), "remote", "setup", "nowhere")
    assert code == 1
    assert err.startswith("error: nowhere is not a remote of ")

    git(a, "fetch", "-q")
    assert tip(a, TRACKING) == tip(remote)
    assert tip(a) == local  # fetching never touches the local tasks ref
    assert "tasks" not in git(a, "branch", "-r")
    assert "tasksync" not in git(a, "branch", "-a")
    git(a, "commit", "-q", "--allow-empty", "-m", "work")
    before = tip(remote)
    git(a, "push", "-q")  # a plain push still pushes the branch, and only the branch
    assert tip(remote, "refs/heads/main") == tip(a, "HEAD")
    assert tip(remote) == before


# -- failures -------------------------------------------------------------------------------------


def test_an_unreachable_remote_fails_cleanly(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "remote", "add", "origin", f"git://127.0.0.1:{free_port()}/gone.git")
    store = TaskStore.open(repo)
    store.init()
    store.create("Stays here")
    before = tip(repo)

    with pytest.raises(SyncError, match="origin cannot be fetched from"):
        store.sync()
    assert tip(repo) == before
    for args in (("sync",), ("sync", "--dry-run"), ("sync", "--json")):
        code, out, err = run_main(capsys, "-C", str(repo), *args)
        assert (code, out) == (1, "")
        assert len(err.splitlines()) == 1
        assert err.startswith("error: origin cannot be fetched from (")
    assert tip(repo) == before
    code, _, err = run_main(capsys, "-C", str(repo), "sync", "upstream")
    assert code == 1
    assert err.startswith("error: upstream is not a remote of ")


def test_daemon_killed_before_the_push_lands_then_a_new_one_converges(
    git_daemon: GitDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, url = git_daemon.bare("tasks")
    a = machine(url, tmp_path / "a")
    b = machine(url, tmp_path / "b")
    first = TaskStore.open(a)
    first.init()
    first.create("Before the crash")
    assert first.sync().pushed is not None
    TaskStore.open(b).sync()
    first.create("During the crash")
    TaskStore.open(b).create("From b meanwhile")
    pushed = tip(bare)
    real_push = Git.push
    killed: list[bool] = []

    def push_into_a_dead_daemon(
        self: Git, remote_name: str, ref: str, commit: str, expected: str | None
    ) -> tuple[bool, str]:
        if not killed:
            git_daemon.stop()
            killed.append(True)
        return real_push(self, remote_name, ref, commit, expected)

    monkeypatch.setattr(Git, "push", push_into_a_dead_daemon)
    local = tip(a)
    with pytest.raises(SyncError, match="origin cannot be pushed to"):
        TaskStore.open(a).sync()
    assert killed == [True]
    assert tip(a) == local
    assert tip(bare) == pushed

    git_daemon.start()  # a new daemon on the same base directory and port
    assert TaskStore.open(b).sync().pushed is not None
    assert TaskStore.open(a).sync().pushed is not None
    assert TaskStore.open(b).sync().pushed is None
    assert tip(a) == tip(b) == tip(bare)
    assert sorted(statuses(b)) == ["Before the crash", "During the crash", "From b meanwhile"]


def test_daemon_killed_mid_push_fails_clearly_and_a_new_one_converges(
    git_daemon: GitDaemon, tmp_path: Path
) -> None:
    bare, url = git_daemon.bare("tasks")
    a = machine(url, tmp_path / "a")
    store = TaskStore.open(a)
    store.init()
    store.create("Before the crash")
    assert store.sync().pushed is not None
    store.create("During the crash")
    pushed, local = tip(bare), tip(a)
    assert git_daemon.process is not None
    hook = bare / "hooks" / "pre-receive"
    # The pack has arrived, the ref is not updated yet: kill the daemon and this receive-pack.
    hook.write_text(
        f"#!/bin/sh\ntouch '{tmp_path / 'hook-ran'}'\n"
        f"kill -TERM {git_daemon.process.pid}\nkill -KILL $PPID\nexit 1\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)

    with pytest.raises(SyncError, match="origin cannot be pushed to"):
        TaskStore.open(a).sync()

    assert (tmp_path / "hook-ran").exists()
    assert git_daemon.process.wait(timeout=10) is not None  # the daemon is gone
    assert tip(a) == local
    assert tip(bare) == pushed
    hook.unlink()
    git_daemon.process = None
    git_daemon.start()  # a new daemon on the same base directory and port
    done = TaskStore.open(a).sync()
    assert done.pushed == local == tip(bare)
    b = machine(url, tmp_path / "b")
    TaskStore.open(b).sync()
    assert sorted(statuses(b)) == ["Before the crash", "During the crash"]


def test_sync_over_the_git_daemon_both_ways(
    git_daemon: GitDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare, url = git_daemon.bare("tasks")
    a = tmp_path / "a"
    b = tmp_path / "b"
    for path in (a, b):
        git(tmp_path, "clone", "-q", url, str(path))  # a network URL: not a hub
        assert TaskStore.open(path).hub is None
    store = TaskStore.open(a)
    store.init()
    store.create("From a")
    assert run_main(capsys, "-C", str(a), "sync")[:2] == (0, f"origin: pushed {tip(a)[:12]}\n")
    assert run_main(capsys, "-C", str(b), "sync")[:2] == (0, "origin: fast-forward from origin\n")
    TaskStore.open(b).create("From b")
    TaskStore.open(a).set_status(1, Status.DONE)
    assert TaskStore.open(b).sync().pushed == tip(bare)
    done = TaskStore.open(a).sync()
    assert done.merged is not None
    assert done.merged.outcome == "merged"
    assert TaskStore.open(b).sync().merged is not None

    assert tip(a) == tip(b) == tip(bare)
    assert statuses(a) == {"From a": Status.DONE, "From b": Status.TODO}
    for path in (a, b):
        assert run_main(capsys, "-C", str(path), "sync", "--dry-run")[1].startswith(
            "origin: nothing"
        )


def test_a_remote_that_declines_every_push_is_not_retried_as_a_race(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = machine(remote, tmp_path / "a")
    store = TaskStore.open(a)
    store.init()
    store.create("Never accepted")
    git(a, "config", "tasks.syncTimeout", "2s")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'tasks are not accepted here' >&2\nexit 1\n", "utf-8")
    hook.chmod(0o755)
    real_push = Git.push
    pushes: list[tuple[bool, str]] = []

    def counted(
        self: Git, remote_name: str, ref: str, commit: str, expected: str | None
    ) -> tuple[bool, str]:
        pushes.append(real_push(self, remote_name, ref, commit, expected))
        return pushes[-1]

    monkeypatch.setattr(Git, "push", counted)
    local = tip(a)

    with pytest.raises(SyncError) as caught:
        TaskStore.open(a).sync()

    assert tip(a) == local
    assert tip(remote) == ""
    # The remote never moved: the refusal is the remote's verdict, not a lost race.
    assert len(pushes) <= 2, f"{len(pushes)} pushes: retried as if the remote kept moving"
    assert "kept moving" not in str(caught.value)
    assert "declined" in str(caught.value) or "not accepted" in str(caught.value)


def test_a_broken_state_is_not_pushed(tmp_path: Path) -> None:
    # A hand edit through plain git (a second task with id #001) must not spread: sync checks
    # what it pushes, as the pre-push hook it skips would.
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    local = tmp_path / "local"
    git(tmp_path, "init", "-q", "-b", "main", str(local))
    git(local, "commit", "-q", "--allow-empty", "-m", "first")
    git(local, "remote", "add", "origin", str(remote))
    git(local, "config", "tasks.hub", "none")
    store = TaskStore.open(local)
    store.init()
    store.create("One")
    head = store.head()
    assert head is not None
    raw = pygit2.Repository(str(local))
    parent = raw[head]
    assert isinstance(parent, pygit2.Commit)
    broken = store.index_text() + "- [ ] Again [#001](process/tasks/001-one.md)\n"
    process = raw.TreeBuilder(parent.tree / "process")
    process.insert("tasks.md", raw.create_blob(broken.encode()), pygit2.GIT_FILEMODE_BLOB)
    root = raw.TreeBuilder(parent.tree)
    root.insert("process", process.write(), pygit2.GIT_FILEMODE_TREE)
    who = pygit2.Signature("Someone", "someone@example.com")
    commit = raw.create_commit(None, who, who, "hand edit", root.write(), [parent.id])
    git(local, "update-ref", REF, str(commit), head)

    with pytest.raises(SyncError, match="duplicate task id"):
        TaskStore.open(local).sync()
    assert git(remote, "for-each-ref", "refs/tasks/").strip() == ""
