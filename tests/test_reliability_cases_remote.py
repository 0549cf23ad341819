"""Edge cases of syncing, reftable detection and output sanitizing, each once a defect: a sync
killed right after its fetch, states merged back without a word on what they renumbered, a
reftable repository opened while another thread had libgit2 accept reftable, and text from
the ref or an exported copy reaching the terminal raw through conflict, undo, pre-push hook and
apply lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, run_main

from tasksync import TaskStore

REF = "refs/tasks/main"
TRACKING = "refs/tasksync/remotes/origin/main"


# -- helpers --------------------------------------------------------------------------------------


def tip(path: Path, ref: str = REF) -> str:
    return git(path, "rev-parse", "-q", "--verify", ref, check=False).strip()


def machine(remote: Path, path: Path) -> Path:
    """A clone of ``remote`` with a tasks ref of its own, as on another machine."""
    git(path.parent, "clone", "-q", str(remote), str(path))
    git(path, "config", "tasks.hub", "none")
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path


def seen_then_dropped(remote: Path, tmp_path: Path) -> tuple[Path, str]:
    """Clone ``a`` holds One and Two, synced; clone ``b`` adds "Only b had it" and syncs; ``a``
    fetches that state (a dry run) without merging it; then a third party rewinds the remote
    and ``b`` is gone. ``a`` and the state only ``a`` has seen."""
    a = machine(remote, tmp_path / "a")
    store = TaskStore.open(a)
    store.init()
    store.create("One")
    store.create("Two")
    store.sync()
    first = tip(remote)
    b = machine(remote, tmp_path / "b")
    TaskStore.open(b).sync()
    TaskStore.open(b).create("Only b had it")
    TaskStore.open(b).sync()
    seen = tip(remote)
    from tasksync.sync import plan

    assert plan(TaskStore.open(a)).action == "fast-forward"
    assert tip(a, TRACKING) == seen
    git(remote, "update-ref", REF, first)
    shutil.rmtree(b)
    return a, seen


def titles(path: Path) -> dict[str, str]:
    return {t.title: str(t.id) for t in TaskStore.open(path).list(include_done=True)}


# -- a sync killed right after its fetch --------------------------------------------------------


def test_a_sync_killed_right_after_its_fetch_still_merges_back_the_dropped_state(
    remote: Path, tmp_path: Path
) -> None:
    a, seen = seen_then_dropped(remote, tmp_path)
    # The fetch moves the tracking ref off the state only this clone has seen; the moment
    # that update is committed, the whole sync (python, git fetch, this hook) is killed.
    hook = a / ".git" / "hooks" / "reference-transaction"
    hook.write_text(
        '#!/bin/sh\n[ "$1" = committed ] || exit 0\n'
        'grep -q " refs/tasksync/remotes/" || exit 0\nkill -KILL 0\n',
        encoding="utf-8",
    )
    hook.chmod(0o755)
    killed = subprocess.run(
        [sys.executable, "-m", "tasksync", "-C", str(a), "sync"],
        capture_output=True,
        text=True,
        start_new_session=True,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    assert tip(a, TRACKING) == tip(remote)  # the fetch landed: the tracking ref moved off
    hook.unlink()

    done = TaskStore.open(a).sync()
    assert done.restored == (seen,)
    assert sorted(titles(a)) == ["One", "Only b had it", "Two"]
    git(remote, "merge-base", "--is-ancestor", seen, REF)
    assert git(a, "for-each-ref", "refs/tasksync/dropped/") == ""


# -- what merging back a dropped state renumbered is said --------------------------------------


def test_a_task_merging_back_a_dropped_state_renumbers_is_reported(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, seen = seen_then_dropped(remote, tmp_path)
    TaskStore.open(a).create("Local work")  # #003 here; the dropped state has its own #003
    assert titles(a)["Local work"] == "#003"

    code, out, err = run_main(capsys, "-C", str(a), "sync")
    assert code == 0, err
    assert f"merged back what it had held ({seen[:12]})" in out
    # The state others fetched keeps its ids, so the task created here moved: said, as any
    # merge of a sync says it.
    assert "renumbered #003 \u2192 #004 ('Local work')" in out.splitlines()
    assert titles(a) == {
        "One": "#001",
        "Two": "#002",
        "Only b had it": "#003",
        "Local work": "#004",
    }


# -- text from the ref never reaches the terminal raw -------------------------------------------

#: A title that sets the terminal's window title and turns its text red. (click leaves out
#: sequences of the ``ESC [`` form when stdout is not a terminal, but not these.)
HOSTILE = "Evil\x1b]0;pwned\x07\x1b[31mred"


def cli(path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``git tasks -C PATH ARGS`` as a process of its own, as a terminal runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tasksync", "-C", str(path), *args],
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
    )


def assert_shown_harmlessly(ran: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in ran.stderr
    for stream in (ran.stdout, ran.stderr):
        assert "\x1b" not in stream and "\x07" not in stream, stream


def test_conflict_lines_never_carry_the_ref_s_control_characters(repo: Path) -> None:
    store = TaskStore.open(repo)
    store.init()
    store.create("One")
    base = store.head()
    assert base is not None
    index = store.files()["process/tasks.md"]
    store.update(1, title="Ours")
    # An edit made elsewhere (by hand, in an exported copy) gave the title escape sequences.
    store.merge_edits(base, {"process/tasks.md": index.replace("One", HOSTILE)}, summary="edit")
    assert any(c.field == "title" and c.theirs == HOSTILE for c in store.conflicts())

    for args in (["conflicts"], ["get", "1"]):
        ran = cli(repo, *args)
        assert ran.returncode == 0, ran.stderr
        assert "title: kept Ours (set aside: Evil?]0;pwned?" in ran.stdout
        assert_shown_harmlessly(ran)


def test_an_undo_line_never_carries_the_ref_s_control_characters(repo: Path) -> None:
    store = TaskStore.open(repo)
    store.init()
    store.create("One")
    tip_before = store.head()
    assert tip_before is not None
    index = store.files()["process/tasks.md"]
    # An edit whose commit subject sets the terminal's window title.
    store.merge_edits(
        tip_before, {"process/tasks.md": index.replace("[ ]", "[x]")}, summary=f"{HOSTILE} done"
    )
    edited = store.head()
    assert edited is not None
    assert git(repo, "log", "-1", "--format=%s", edited).startswith(HOSTILE)

    ran = cli(repo, "undo", edited)
    assert ran.returncode == 0, ran.stderr
    assert "(Evil?]0;pwned?" in ran.stdout and "red done)" in ran.stdout
    assert_shown_harmlessly(ran)


def test_pre_push_hook_lines_never_carry_the_ref_s_control_characters(repo: Path) -> None:
    import pygit2

    store = TaskStore.open(repo)
    store.init()
    store.create("One")
    raw = pygit2.Repository(str(repo))
    head = raw.references[REF].target
    commit = raw[head]
    assert isinstance(commit, pygit2.Commit)
    top = raw.TreeBuilder(commit.tree)
    top.insert("\x1b]0;pwned\x07.txt", raw.create_blob(b"x"), pygit2.GIT_FILEMODE_BLOB)
    who = pygit2.Signature("Third Party", "third@example.com", 1700000000, 0)
    odd = raw.create_commit(None, who, who, "odd\n", top.write(), [head])
    raw.references[REF].set_target(odd)

    line = f"{REF} {odd} {REF} {'0' * len(str(odd))}\n"
    ran = cli(repo, "hooks", "pre-push", "origin", "https://example.com/r.git", stdin=line)
    assert ran.returncode == 1  # refused: a file outside process/
    assert "outside process/: ?]0;pwned?.txt" in ran.stderr
    assert_shown_harmlessly(ran)


# -- a reftable repository opened from two threads at once ------------------------------------


def make_reftable_looking(path: Path) -> None:
    """What ``git init --ref-format=reftable`` leaves (format 1, the extension, git's stubs
    for older readers, an empty table stack), made from an ordinary repository."""
    dot = path / ".git"
    git(path, "config", "core.repositoryformatversion", "1")
    git(path, "config", "extensions.refStorage", "reftable")
    for name in ("refs", "logs"):
        shutil.rmtree(dot / name, ignore_errors=True)
    (dot / "packed-refs").unlink(missing_ok=True)
    (dot / "HEAD").write_text("ref: refs/heads/.invalid\n", encoding="utf-8")
    (dot / "refs").mkdir()
    (dot / "refs" / "heads").write_text("this repository uses the reftable format\n")
    (dot / "reftable").mkdir()
    (dot / "reftable" / "tables.list").write_text("", encoding="utf-8")


def test_a_reftable_repository_opened_by_two_threads_at_once_never_gets_libgit2_refs(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = subprocess.run(
        ["git", "init", "-q", "--ref-format=reftable", str(tmp_path / "probe")],
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        pytest.skip("this git reads reftable repositories: an open gives no error to compare")
    import threading

    import pygit2

    from tasksync.errors import ReftableUnsupported

    make_reftable_looking(repo)
    outcome: dict[str, str] = {}

    def open_too() -> None:
        try:
            TaskStore.open(repo)
            outcome["other"] = "opened, its refs through libgit2's files backend"
        except ReftableUnsupported:
            outcome["other"] = "ReftableUnsupported"
        except Exception as error:  # what the other thread got instead
            outcome["other"] = repr(error)

    class Racing(pygit2.Repository):
        """The first open made while libgit2 accepts reftable (the moment open_reftable
        allows it) lets another thread open the same repository first."""

        def __init__(self, path: str, *args: pygit2.enums.RepositoryOpenFlag) -> None:
            if "refstorage" in pygit2.settings.extensions and not outcome:
                outcome["window"] = "seen"
                other = threading.Thread(target=open_too)
                other.start()
                other.join(timeout=60)
            super().__init__(path, *args)

    monkeypatch.setattr(pygit2, "Repository", Racing)
    with pytest.raises(ReftableUnsupported):
        TaskStore.open(repo)
    assert outcome == {"window": "seen", "other": "ReftableUnsupported"}


def test_an_apply_renumbering_line_never_carries_the_copy_s_control_characters(
    repo: Path,
) -> None:
    store = TaskStore.open(repo)
    store.init()
    store.create("One")
    store.export()
    index = repo / ".tasks" / "process" / "tasks.md"
    added = f"- [ ] {HOSTILE} [#002](process/tasks/002-evil.md)\n"
    index.write_text(index.read_text(encoding="utf-8") + added, encoding="utf-8")
    store.create("Other")  # takes #002 meanwhile: the task added in the copy moves

    ran = cli(repo, "apply")
    assert ran.returncode == 0, ran.stderr
    assert "renumbered: #002 -> #003 ('Evil\\x1b]0;pwned\\x07\\x1b[31mred')" in ran.stdout
    assert_shown_harmlessly(ran)
