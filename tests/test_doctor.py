"""``git tasks doctor``: each kind of damage found, said in one line with the command that fixes
it, and the only repair it makes (removing lock files proven stale) never touching history."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from conftest import GitDaemon, commit_held, git, hold_ref_lock, kill, run_main, wait_until_older

from tasksync import TaskStore
from tasksync.doctor import Finding, Severity

REF = "refs/tasks/main"


# -- helpers ----------------------------------------------------------------------------------


def tip(repo: Path) -> str:
    return git(repo, "rev-parse", REF).strip()


def doctor(
    capsys: pytest.CaptureFixture[str], repo: Path, *args: str
) -> tuple[int, list[str], str]:
    code, out, err = run_main(capsys, "-C", str(repo), "doctor", *args)
    return code, out.splitlines(), err


def doctor_json(
    capsys: pytest.CaptureFixture[str], repo: Path, *args: str
) -> list[dict[str, object]]:
    code, out, _ = run_main(capsys, "-C", str(repo), "doctor", "--json", *args)
    found = json.loads(out)
    assert isinstance(found, list)
    assert code == (
        1 if any(f["severity"] == "problem" and not f["repaired"] for f in found) else 0
    )
    return found


def problems(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.PROBLEM]


def loose_object(repo: Path, oid: str) -> Path:
    return repo / ".git" / "objects" / oid[:2] / oid[2:]


def hold_then_kill_ref_lock(repo: Path) -> Path:
    """A real stale ref lock: a ``git update-ref --stdin`` killed after ``prepare``."""
    head = git(repo, "rev-parse", "HEAD").strip()
    kill(hold_ref_lock(repo, f"update {REF} {head} {tip(repo)}"))
    lock = repo / ".git" / "refs" / "tasks" / "main.lock"
    assert lock.exists()
    return lock


def commit_files(repo: Path, files: dict[str, bytes], message: str) -> str:
    """A commit on the tasks ref's tip with ``files`` replaced, made with plain git, and the
    ref moved to it (as a hand edit would)."""
    old = tip(repo)
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "doctor-test.index")}

    def run(*args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=repo, env=env, input=stdin, capture_output=True, check=True
        )
        return done.stdout.decode().strip()

    run("read-tree", old)
    for path, data in files.items():
        blob = run("hash-object", "-w", "--stdin", stdin=data)
        run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    new = run("commit-tree", run("write-tree"), "-p", old, "-m", message)
    Path(env["GIT_INDEX_FILE"]).unlink()
    git(repo, "update-ref", REF, new, old)
    return new


# -- healthy ------------------------------------------------------------------------------------


def test_a_healthy_store_has_no_findings(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.create("One", description="With a spec")
    store.create("Two")
    assert store.doctor() == ()
    code, lines, err = doctor(capsys, repo)
    assert (code, lines, err) == (0, [f"no problems in {REF}"], "")
    assert doctor_json(capsys, repo) == []


def test_no_store_is_a_note(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = TaskStore.open(repo).doctor()
    assert [(f.kind, f.severity, f.fix) for f in found] == [
        ("no-store", Severity.NOTE, "git tasks init")
    ]
    code, lines, _ = doctor(capsys, repo)
    assert code == 0
    assert lines[0].startswith("note: no task store")


# -- lock files ----------------------------------------------------------------------------------


def test_a_stale_ref_lock_is_reported_then_repaired(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    store.create("Existing")
    lock = hold_then_kill_ref_lock(repo)
    wait_until_older(lock, 0.1)

    code, lines, _ = doctor(capsys, repo)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"problem: stale lock file {lock} (")
    assert lines[0].endswith(
        "blocks every write to refs/tasks/main; remove it with `git tasks doctor --repair`"
    )
    assert lock.exists()  # only reported

    [found] = doctor_json(capsys, repo)
    assert found["kind"] == "stale-ref-lock"
    assert found["fix"] == "git tasks doctor --repair"
    assert found["path"] == str(lock)
    assert found["repaired"] is False

    code, lines, err = doctor(capsys, repo, "--repair")
    assert code == 0
    assert lines[0].startswith(f"repaired: removed the stale lock file {lock} (")
    assert lines[-1] == f"no problems in {REF}"
    assert err.startswith("warning: removed the stale lock file")
    assert not lock.exists()
    log = (repo / ".git" / "tasksync" / "recovery.log").read_text(encoding="utf-8")
    assert f"removed {lock} age=" in log

    assert doctor(capsys, repo)[0] == 0
    store.set_status(1, "DONE")  # writes go through again


def test_a_stale_reflog_lock_is_repaired_too(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = repo / ".git" / "logs" / "refs" / "tasks" / "main.lock"
    lock.touch()
    hour_ago = time.time() - 3600
    os.utime(lock, (hour_ago, hour_ago))
    expire = ["git", "reflog", "expire", "--expire=now", REF]
    assert subprocess.run(expire, cwd=repo, capture_output=True, check=False).returncode != 0
    [found] = doctor_json(capsys, repo)
    assert found["kind"] == "stale-reflog-lock"
    [found] = doctor_json(capsys, repo, "--repair")
    assert found["repaired"] is True
    assert not lock.exists()
    assert subprocess.run(expire, cwd=repo, capture_output=True, check=False).returncode == 0


def test_a_young_lock_is_only_a_note(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = repo / ".git" / "refs" / "tasks" / "main.lock"
    lock.touch()
    [found] = TaskStore.open(repo).doctor(repair=True)
    assert (found.kind, found.severity, found.repaired) == ("ref-lock", Severity.NOTE, False)
    assert "an update is under way" in found.message
    assert lock.exists()
    assert doctor(capsys, repo)[0] == 0


@pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(),
    reason="live holders are found through /proc, which this platform lacks",
)
def test_a_live_holder_is_reported_and_never_removed(store: TaskStore, repo: Path) -> None:
    git(repo, "config", "tasks.staleLockAfter", "100ms")
    before = tip(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    proc = hold_ref_lock(repo, f"update {REF} {head} {before}")
    try:
        lock = repo / ".git" / "refs" / "tasks" / "main.lock"
        wait_until_older(lock, 0.1)

        [found] = TaskStore.open(repo).doctor(repair=True)

        assert found.kind == "held-ref-lock"
        assert found.severity is Severity.PROBLEM and not found.repaired
        assert f"process {proc.pid} (git update-ref --stdin)" in found.message
        assert found.fix == f"kill {proc.pid}"
        assert lock.exists()
    finally:
        if proc.poll() is None:
            commit_held(proc)
    assert tip(repo) == head


def test_the_writer_lock_held_is_a_note_naming_the_process(store: TaskStore) -> None:
    import fcntl

    path = store._tx.lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        [found] = store.doctor()
    finally:
        os.close(fd)
    assert (found.kind, found.severity) == ("writer-lock", Severity.NOTE)
    if Path("/proc/locks").exists():
        assert f"process {os.getpid()} (" in found.message
        assert found.fix == f"kill {os.getpid()}"
    assert store.doctor() == ()


def test_an_old_packed_refs_lock_is_reported_never_removed(store: TaskStore, repo: Path) -> None:
    lock = repo / ".git" / "packed-refs.lock"
    lock.touch()
    hour_ago = time.time() - 3600
    os.utime(lock, (hour_ago, hour_ago))
    [found] = store.doctor(repair=True)
    assert (found.kind, found.severity, found.repaired) == (
        "packed-refs-lock",
        Severity.NOTE,
        False,
    )
    assert found.fix == f"rm {shlex.quote(str(lock))}"
    assert lock.exists()


# -- missing and damaged objects -----------------------------------------------------------------


def test_a_ref_at_a_missing_commit_says_how_to_recover(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.create("Kept")
    good = tip(repo)
    store.create("Pruned")
    bad = tip(repo)
    loose_object(repo, bad).unlink()  # as `git prune` racing a write leaves it

    code, lines, _ = doctor(capsys, repo, "--repair")
    assert code == 1
    [line] = lines
    assert line.startswith(f"problem: {REF} points at {bad}, which is missing")
    assert "`git tasks sync`" in line
    assert f"`git update-ref {REF} {good} {bad}`" in line
    assert tip(repo) == bad  # doctor moves no ref, even with --repair
    [found] = store.doctor()
    assert (found.kind, found.fix) == ("missing-object", "git tasks sync")

    git(repo, "update-ref", REF, good, bad)  # the user's choice, as advised
    assert store.doctor() == ()


def test_a_missing_commit_comes_back_with_the_sync_doctor_advises(
    store: TaskStore, repo: Path, git_daemon: GitDaemon
) -> None:
    _, url = git_daemon.bare("tasks")
    git(repo, "remote", "add", "origin", url)
    store.create("Pushed")
    store.sync()
    pushed = tip(repo)
    loose_object(repo, pushed).unlink()
    [found] = store.doctor()
    assert (found.kind, found.fix) == ("missing-object", "git tasks sync")

    TaskStore.open(repo).sync()

    assert tip(repo) == pushed  # the same commit, fetched back: nothing moved or rewritten
    assert store.doctor() == ()
    assert [t.title for t in store.list()] == ["Pushed"]


def test_a_ref_at_an_id_with_no_object_at_all(store: TaskStore, repo: Path) -> None:
    store.create("Kept")
    good = tip(repo)
    fake = "1" * len(good)
    (repo / ".git" / "refs" / "tasks" / "main").write_text(fake + "\n", encoding="ascii")
    [found] = store.doctor()
    assert found.kind == "missing-object"
    assert f"git update-ref {REF} {good} {fake}" in found.message


def test_a_ref_at_a_blob_is_not_a_commit(store: TaskStore, repo: Path) -> None:
    blob = git(repo, "rev-parse", f"{REF}:process/tasks.md").strip()
    (repo / ".git" / "refs" / "tasks" / "main").write_text(blob + "\n", encoding="ascii")
    [found] = store.doctor()
    assert found.kind == "not-a-commit"
    assert "not a commit" in found.message


def test_a_missing_file_at_the_tip_is_restored_by_a_new_commit(
    store: TaskStore, repo: Path
) -> None:
    store.create("One", description="Spec text")
    good = tip(repo)
    store.set_status(1, "DONE")
    bad = tip(repo)
    blob = git(repo, "rev-parse", f"{REF}:process/tasks.md").strip()
    loose_object(repo, blob).unlink()

    [found] = store.doctor()

    assert found.kind == "damaged-object"
    assert found.path == "process/tasks.md"
    assert f"(blob {blob})" in found.message and "is missing" in found.message
    assert found.fix is not None and found.fix.startswith(f"git update-ref {REF} ")
    assert f"`{found.fix}`" in found.message
    subprocess.run(["sh", "-c", found.fix], cwd=repo, check=True)  # as a user would paste it
    assert store.doctor() == ()
    assert git(repo, "rev-parse", f"{REF}^").strip() == bad  # history kept, nothing rewritten
    assert (
        git(repo, "rev-parse", f"{REF}^{{tree}}").strip()
        == git(repo, "rev-parse", f"{good}^{{tree}}").strip()
    )
    assert [t.status.value for t in store.list(include_done=True)] == ["TODO"]


def test_a_corrupt_file_at_the_tip_is_found(store: TaskStore, repo: Path) -> None:
    store.create("One", description="Spec text")
    spec = git(repo, "rev-parse", f"{REF}:process/tasks/001-one.md").strip()
    path = loose_object(repo, spec)
    path.chmod(0o644)
    path.write_bytes(b"not zlib at all")
    [found] = store.doctor()
    assert (found.kind, found.path) == ("damaged-object", "process/tasks/001-one.md")
    assert "is unreadable" in found.message


def test_a_file_over_the_size_limit_is_not_read_whole(store: TaskStore, repo: Path) -> None:
    # Its header says it is there and a file; reading it whole would defeat tasks.maxFileSize.
    store.create("One", description="x" * 4096)
    spec = git(repo, "rev-parse", f"{REF}:process/tasks/001-one.md").strip()
    git(repo, "config", "tasks.maxFileSize", "1k")
    path = loose_object(repo, spec)
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data[:-4])  # truncated after its header: unreadable only when read whole
    assert [f.kind for f in TaskStore.open(repo).doctor() if f.kind == "damaged-object"] == []
    git(repo, "config", "tasks.maxFileSize", "1m")
    [found] = [f for f in TaskStore.open(repo).doctor() if f.kind == "damaged-object"]
    assert found.path == "process/tasks/001-one.md"


def test_a_broken_history_is_found(store: TaskStore, repo: Path) -> None:
    store.create("One")
    middle = tip(repo)
    store.create("Two")
    loose_object(repo, middle).unlink()
    [found] = store.doctor()
    assert found.kind == "broken-history"
    assert middle in found.message
    assert found.fix == "git tasks sync"


# -- what the pre-push checks refuse ------------------------------------------------------------


def test_an_unreadable_tasks_md_is_restored_from_the_newest_good_version(
    store: TaskStore, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.create("One")
    good = tip(repo)
    commit_files(repo, {"process/tasks.md": b"- [ ] \xff\xfe broken [#001](x.md)\n"}, "broken")

    [found] = store.doctor()
    assert found.kind == "unreadable-index"
    assert f"the newest readable one is at {good[:12]}" in found.message
    assert found.fix is not None
    code, lines, _ = doctor(capsys, repo)
    assert code == 1
    assert lines == [f"problem: {found.message}"]

    subprocess.run(["sh", "-c", found.fix], cwd=repo, check=True)
    assert store.doctor() == ()
    assert [t.title for t in store.list()] == ["One"]


def test_duplicate_ids_say_to_edit_the_index(store: TaskStore, repo: Path) -> None:
    store.create("One")
    text = git(repo, "show", f"{REF}:process/tasks.md")
    line = next(line for line in text.splitlines() if "[#001]" in line)
    again = line.replace("One", "Again")
    commit_files(repo, {"process/tasks.md": f"{text}{again}\n".encode()}, "a duplicate id")
    [found] = store.doctor()
    assert found.kind == "duplicate-task-id"
    assert found.fix == "git tasks edit --raw"
    assert found.message.endswith("`git tasks edit --raw`")


# -- packing --------------------------------------------------------------------------------------


def test_loose_objects_with_packing_off_are_a_note(store: TaskStore, repo: Path) -> None:
    git(repo, "config", "tasks.autoPack", "false")
    git(repo, "config", "gc.auto", "1")
    # One loose object in objects/17, which git's estimate multiplies by 256.
    n = 0
    while True:
        data = f"filler {n}\n".encode()
        oid = hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()  # noqa: S324 - git's id
        if oid.startswith("17"):
            break
        n += 1
    assert (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=data,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
        == oid
    )
    [found] = TaskStore.open(repo).doctor()
    assert (found.kind, found.severity, found.fix) == ("loose-objects", Severity.NOTE, "git gc")
    assert "tasks.autoPack is false" in found.message
