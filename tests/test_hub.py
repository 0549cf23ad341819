"""Session clones on one machine share their hub's tasks ref: objects and ref in the hub."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import GitDaemon, git, run_main, tasks_md

from tasksync import Merged, Status, TaskStore
from tasksync.errors import ConfigError, NotInitialized

REF = "refs/tasks/main"
SESSIONS = 3
WRITES = 20

# One writer process: prints "ready", waits for a line, then alternately creates a task and
# sets the status of the task it just created; prints what the store acknowledged, as JSON.
WRITER = """
import json, sys
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
name, count = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
done = []
for n in range(count):
    if n % 2 == 0:
        task = store.create(f"{name} task {n}")
        done.append(["create", str(task.id), task.title, task.status.value, store.last_commit])
    else:
        status = ("DONE", "IN-PROGRESS", "BLOCKED")[n % 3]
        task = store.set_status(done[-1][1], status)
        done.append(["status", str(task.id), task.title, task.status.value, store.last_commit])
print(json.dumps(done), flush=True)
"""


# -- helpers --------------------------------------------------------------------------------------


def tip(path: Path, ref: str = REF) -> str:
    return git(path, "rev-parse", "-q", "--verify", ref, check=False).strip()


def has_object(path: Path, oid: str) -> bool:
    done = subprocess.run(["git", "cat-file", "-e", oid], cwd=path, check=False)
    return done.returncode == 0


def titles(path: Path) -> list[str]:
    return [task.title for task in TaskStore.open(path).list(include_done=True)]


def make_sessions(main: Path, count: int = SESSIONS) -> list[Path]:
    """Session clones of ``main`` made the ordinary way, with ``git clone PATH``."""
    out = []
    for n in range(1, count + 1):
        path = main.parent / f"session{n}"
        git(main.parent, "clone", "-q", str(main), str(path))
        out.append(path)
    return out


def new_repo(path: Path) -> Path:
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    return path


@pytest.fixture(params=["no-origin", "daemon-origin"])
def main(request: pytest.FixtureRequest, repo: Path) -> Path:
    """The main checkout: without an origin, or with one over the git daemon (not a path)."""
    if request.param == "daemon-origin":
        daemon: GitDaemon = request.getfixturevalue("git_daemon")
        _, url = daemon.bare("project")
        git(repo, "remote", "add", "origin", url)
        git(repo, "push", "-q", "origin", "main")
    return repo


@pytest.fixture
def sessions(main: Path) -> list[Path]:
    return make_sessions(main)


# -- sharing --------------------------------------------------------------------------------------


def test_a_write_in_any_clone_is_seen_by_all(main: Path, sessions: list[Path]) -> None:
    everyone = [main, *sessions]
    stores = [TaskStore.open(path) for path in everyone]  # opened once, before any write
    assert stores[2].init() is True
    assert [store.init() for store in stores] == [False] * 4

    for n, writer in enumerate(stores):
        writer.create(f"Task from {everyone[n].name}")
        expected = [f"Task from {path.name}" for path in everyone[: n + 1]]
        assert [[t.title for t in reader.list()] for reader in stores] == [expected] * 4
    stores[3].set_status(1, Status.DONE)
    assert {reader.get(1).status for reader in stores} == {Status.DONE}
    assert [reader.head() for reader in stores] == [tip(main)] * 4

    for session in sessions:  # no session has a tasks ref of its own
        assert tip(session) == ""
        assert TaskStore.open(session).store_dir == stores[0].store_dir
    assert "- [x] Task from repo [#001]" in tasks_md(main)


def test_hub_command_names_main(
    main: Path, sessions: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    TaskStore.open(main).init()
    store_dir = TaskStore.open(main).store_dir

    for session in sessions:
        assert run_main(capsys, "-C", str(session), "hub") == (
            0,
            f"{main} (from origin): {REF}\n",
            "",
        )
        code, out, err = run_main(capsys, "-C", str(session), "hub", "--json")
        assert (code, err) == (0, "")
        assert json.loads(out) == {
            "state": "hub",
            "path": str(main),
            "source": "origin",
            "ref": REF,
            "unsynced": False,
        }
    assert run_main(capsys, "-C", str(main), "hub") == (
        0,
        f"this repository ({store_dir}): {REF}\n",
        "",
    )
    code, out, _ = run_main(capsys, "-C", str(main), "hub", "--json")
    assert code == 0
    assert json.loads(out) == {
        "state": "own",
        "path": str(store_dir),
        "source": None,
        "ref": REF,
        "unsynced": False,
    }


def test_concurrent_writers_in_main_and_sessions_lose_nothing(
    main: Path, sessions: list[Path]
) -> None:
    everyone = [main, *sessions]
    TaskStore.open(main).init()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), path.name, str(WRITES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in everyone
    ]
    for writer in writers:  # every process is ready before any writes
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    acknowledged: list[list[str]] = []
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        acknowledged += json.loads(out)

    assert len(acknowledged) == len(everyone) * WRITES
    assert all(record[4] for record in acknowledged)  # every operation made a commit
    views = {TaskStore.open(path).index_text() for path in everyone}
    assert views == {tasks_md(main)}
    tasks = TaskStore.open(sessions[0]).list(include_done=True)
    assert len({task.id for task in tasks}) == len(tasks)
    by_title = Counter(task.title for task in tasks)
    created = [record for record in acknowledged if record[0] == "create"]
    assert len(created) == len(everyone) * WRITES // 2
    assert by_title == Counter(record[2] for record in created)  # each exactly once
    final = {}
    for record in acknowledged:  # a writer's own records are in its order
        final[record[1]] = (record[2], record[3])
    assert {str(t.id): (t.title, t.status.value) for t in tasks} == final
    # init + one commit per acknowledged operation, on one first-parent line
    assert git(main, "rev-list", "--count", "--first-parent", REF).strip() == str(
        1 + len(acknowledged)
    )
    for session in sessions:
        assert tip(session) == ""


# -- choosing the hub -----------------------------------------------------------------------------


def test_hub_none_makes_a_clone_use_its_own_ref(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (session,) = make_sessions(repo, 1)
    TaskStore.open(repo).init()
    TaskStore.open(repo).create("In main")
    git(session, "config", "tasks.hub", "none")

    store = TaskStore.open(session)
    assert store.hub is None
    with pytest.raises(NotInitialized):
        store.list()
    assert store.init() is True
    store.create("In the clone")

    assert titles(session) == ["In the clone"]
    assert titles(repo) == ["In main"]
    assert tip(session) not in ("", tip(repo))
    assert not has_object(repo, tip(session))
    code, out, _ = run_main(capsys, "-C", str(session), "hub")
    assert code == 0
    assert out.startswith("this repository (")


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_hub_path_picks_another_repository(
    repo: Path, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (session,) = make_sessions(repo, 1)
    other = new_repo(repo.parent / "other")
    TaskStore.open(repo).init()
    TaskStore.open(other).init()
    git(session, "config", "tasks.hub", str(other) if form == "absolute" else "../other")

    store = TaskStore.open(session)
    assert store.hub is not None
    assert store.hub.source == "tasks.hub"
    store.create("Goes to other")

    assert titles(other) == ["Goes to other"]
    assert titles(repo) == []
    assert tip(session) == ""
    code, out, _ = run_main(capsys, "-C", str(session), "hub")
    assert code == 0
    assert out.endswith(f"(from tasks.hub): {REF}\n")
    assert Path(out.split(" (from ")[0]).resolve() == other.resolve()


def test_a_hub_of_a_hub_is_followed(repo: Path) -> None:
    (session,) = make_sessions(repo, 1)
    nested = repo.parent / "nested"
    git(repo.parent, "clone", "-q", str(session), str(nested))  # a clone of a session clone
    pointed = new_repo(repo.parent / "pointed")
    git(pointed, "config", "tasks.hub", str(nested))  # tasks.hub -> nested -> session -> repo
    TaskStore.open(repo).init()

    for path in (nested, pointed):
        store = TaskStore.open(path)
        assert store.hub is not None
        assert store.hub.path == repo
        assert store.store_dir == TaskStore.open(repo).store_dir
        store.create(f"From {path.name}")

    assert titles(repo) == ["From nested", "From pointed"]
    assert [tip(path) for path in (session, nested, pointed)] == ["", "", ""]


def test_a_cycle_of_hubs_is_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = (new_repo(tmp_path / name) for name in "abc")
    git(a, "config", "tasks.hub", str(b))
    git(b, "config", "tasks.hub", str(a))
    git(c, "config", "tasks.hub", str(a))  # a tail leading into the cycle

    for path in (a, b, c):
        with pytest.raises(ConfigError, match="cycle"):  # returns: no endless hop
            TaskStore.open(path)
        code, out, err = run_main(capsys, "-C", str(path), "hub")
        assert code == 1
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith("error: tasks.hub: hubs form a cycle")


def test_members_of_a_hub_cycle_share_one_ref_or_are_refused(tmp_path: Path) -> None:
    a, b = (new_repo(tmp_path / name) for name in "ab")
    git(a, "config", "tasks.hub", str(b))
    git(b, "config", "tasks.hub", str(a))

    try:
        stores = [TaskStore.open(path) for path in (a, b)]
    except ConfigError:
        return  # refusing the cycle outright is fine too
    stores[0].init()
    stores[0].create("Written through a")
    assert stores[0].store_dir == stores[1].store_dir
    assert [t.title for t in stores[1].list()] == ["Written through a"]
    assert not stores[1].unsynced()


# -- a missing hub --------------------------------------------------------------------------------


def test_missing_hub_warns_works_alone_and_sync_hands_the_work_over(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session, other = make_sessions(repo, 2)
    hub = TaskStore.open(repo)
    hub.init()
    hub.create("Main one")
    hub.create("Main two")
    assert titles(session) == ["Main one", "Main two"]
    away = repo.parent / "away"
    repo.rename(away)

    code, out, err = run_main(capsys, "-C", str(session), "init")
    assert (code, out) == (0, f"Initialized the task store on {REF}\n")
    assert err == (
        f"warning: the hub {repo} (from origin) is missing; working on this clone's own "
        "tasks ref (`git tasks sync` merges it later)\n"
    )
    assert run_main(capsys, "-C", str(session), "create", "Offline one")[:2] == (0, "#001\n")
    assert run_main(capsys, "-C", str(session), "create", "Offline two")[:2] == (0, "#002\n")
    assert TaskStore.open(session).hub_missing
    assert titles(session) == ["Offline one", "Offline two"]
    assert tip(session) != ""
    code, out, _ = run_main(capsys, "-C", str(session), "hub")
    assert (code, out) == (0, f"missing: {repo} (from origin); using this clone's own ref\n")
    code, out, err = run_main(capsys, "-C", str(session), "sync")
    assert code == 1
    assert err.splitlines()[-1].startswith(f"error: {repo} the hub is missing")
    assert git(away, "for-each-ref", "refs/tasksync/") == ""

    away.rename(repo)
    unsynced = "warning: this clone's own tasks ref has work its hub lacks; run `git tasks sync`\n"
    assert run_main(capsys, "-C", str(session), "hub") == (
        0,
        f"{repo} (from origin): {REF}\n"
        "this clone's own ref has work the hub lacks: run `git tasks sync`\n",
        unsynced,
    )
    code, out, _ = run_main(capsys, "-C", str(session), "hub", "--json")
    assert json.loads(out)["unsynced"] is True
    assert titles(session) == ["Main one", "Main two"]  # reads the hub again

    code, out, err = run_main(capsys, "-C", str(session), "sync")
    assert (code, err) == (0, unsynced)
    assert out == (
        "hub: merged this clone's own work (merged)\nno remote to sync with beyond the hub\n"
        "renumbered #001 \u2192 #003 ('Offline one')\n"
        "renumbered #002 \u2192 #004 ('Offline two')\n"
    )

    tasks = {t.title: str(t.id) for t in TaskStore.open(repo).list()}
    assert tasks == {
        "Main one": "#001",
        "Main two": "#002",
        "Offline one": "#003",
        "Offline two": "#004",
    }
    assert titles(other) == titles(session) == titles(repo)
    assert git(repo, "for-each-ref", "refs/tasksync/") == ""  # the incoming ref is gone
    git(repo, "merge-base", "--is-ancestor", tip(session), REF)  # fails if not
    assert run_main(capsys, "-C", str(session), "list")[2] == ""  # no warning any more
    code, out, err = run_main(capsys, "-C", str(session), "hub", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["unsynced"] is False
    code, out, _ = run_main(capsys, "-C", str(repo), "get", "3")
    assert "renumbered to #003 by a merge" in out


def test_objects_and_ref_are_written_in_the_hub(repo: Path) -> None:
    (session,) = make_sessions(repo, 1)
    TaskStore.open(repo).init()

    store = TaskStore.open(session)
    store.create("Made in the session", description="with a spec file")
    commit = store.last_commit
    assert commit is not None

    assert tip(repo) == commit
    assert has_object(repo, commit)
    assert git(repo, "cat-file", "-t", commit).strip() == "commit"
    git(repo, "fsck", "--connectivity-only", "--no-progress")
    assert "Made in the session" in tasks_md(repo)
    assert tip(session) == ""


def test_a_session_syncs_through_its_hubs_origin(
    git_daemon: GitDaemon, repo: Path, tmp_path: Path
) -> None:
    bare, url = git_daemon.bare("project")
    git(repo, "remote", "add", "origin", url)
    (session,) = make_sessions(repo, 1)
    store = TaskStore.open(session)
    store.init()
    store.create("Shared with the world")

    done = store.sync()  # default remote: origin of the hub, over git://

    assert (done.remote, done.fetched, done.pushed) == ("origin", None, tip(repo))
    assert tip(bare) == tip(repo)
    elsewhere = tmp_path / "elsewhere"
    git(tmp_path, "clone", "-q", url, str(elsewhere))
    assert TaskStore.open(elsewhere).sync().merged is not None
    assert titles(elsewhere) == ["Shared with the world"]


def lose_the_hub_and_write(hub: Path, session: Path, *titles: str) -> None:
    """Move ``hub`` away, write ``titles`` on the session's own ref, move the hub back."""
    away = hub.parent / "away"
    hub.rename(away)
    store = TaskStore.open(session)
    assert store.hub_missing
    store.init()
    for title in titles:
        store.create(title)
    away.rename(hub)


@pytest.mark.parametrize("name", ["my session", "feature.lock"])
def test_work_is_handed_over_whatever_the_clone_directory_is_called(repo: Path, name: str) -> None:
    session = repo.parent / name
    git(repo.parent, "clone", "-q", str(repo), str(session))
    TaskStore.open(repo).init()
    lose_the_hub_and_write(repo, session, "Offline")
    assert TaskStore.open(session).unsynced()

    done = TaskStore.open(session).sync()

    assert done.handed_to_hub is not None
    assert titles(repo) == ["Offline"]
    assert not TaskStore.open(session).unsynced()


def test_two_clones_with_one_directory_name_hand_over_their_own_work(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = repo.parent / "x" / "session", repo.parent / "y" / "session"
    for path in (first, second):
        path.parent.mkdir()
        git(repo.parent, "clone", "-q", str(repo), str(path))
    TaskStore.open(repo).init()
    lose_the_hub_and_write(repo, first, "From x")
    lose_the_hub_and_write(repo, second, "From y")
    real_merge = TaskStore.merge
    calls: list[str] = []

    def second_hands_over_meanwhile(
        self: TaskStore, revision: str, *, keep_ids: str | None = None
    ) -> Merged:
        if not calls:  # first has pushed its work to the hub; second hands over before it merges
            calls.append(revision)
            TaskStore.open(second).sync()
        calls.append(revision)
        return real_merge(self, revision, keep_ids=keep_ids)

    monkeypatch.setattr(TaskStore, "merge", second_hands_over_meanwhile)
    done = TaskStore.open(first).sync()

    assert done.handed_to_hub is not None  # it says it handed its work over...
    assert "From x" in titles(repo)  # ...so the hub has it
    assert "From y" in titles(repo)  # and the other clone's too
    assert not TaskStore.open(first).unsynced()
    assert not TaskStore.open(second).unsynced()


def test_work_written_while_a_hub_further_along_was_missing_reaches_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (session,) = make_sessions(repo, 1)
    nested = repo.parent / "nested"
    git(repo.parent, "clone", "-q", str(session), str(nested))  # nested -> session -> repo
    TaskStore.open(repo).init()
    TaskStore.open(repo).create("In main")
    away = repo.parent / "away"
    repo.rename(away)
    nested_store = TaskStore.open(nested)
    nested_store.init()
    nested_store.create("Nested while main was away")
    away.rename(repo)

    code, _, _ = run_main(capsys, "-C", str(nested), "sync")  # from nested itself

    assert code == 0
    assert sorted(titles(repo)) == ["In main", "Nested while main was away"]
    assert sorted(titles(nested)) == ["In main", "Nested while main was away"]
