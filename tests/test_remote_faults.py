"""Remote faults: a daemon killed mid-transfer, a remote rewritten or holding a broken tasks ref,
a remote that cannot be reached or refuses. Local tasks stay intact, each failure is one clear
line, and a later sync converges with every task of every side.

``TASKSYNC_FULL_FAULTS=1`` runs the huge and long cases at the sizes of docs/reliability.md
(a 100 MB tasks.md, 100,000 commits) instead of smaller ones that take the same paths."""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path

import pytest
from conftest import git, run_main

from tasksync import Status, TaskStore
from tasksync.errors import SyncError

REF = "refs/tasks/main"
TRACKING = "refs/tasksync/remotes/origin/main"
PACK = b"PACK\x00\x00\x00\x02"  # a version 2 pack starts with this


# -- a git daemon that can be killed in the middle of a transfer --------------------------------


class FaultyDaemon:
    """``git daemon --inetd`` behind a listener on 127.0.0.1: each connection is served by a
    daemon process of its own, in a process group of its own, through a relay that sees every
    byte. :meth:`kill_mid` arms the relay to kill the daemon serving the next transfer (with
    every upload-pack, receive-pack and pack process under it) once part of its pack has
    passed: a handshake on the bytes, never a timer."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)  # clients may connect from now on: no wait for readiness
        self.url = f"git://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.armed: tuple[str, int] | None = None
        self.kills = 0
        self.guard = threading.Lock()
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def bare(self, name: str) -> tuple[Path, str]:
        """A new empty bare repository ``name.git`` served here: its path and its URL."""
        path = self.base / f"{name}.git"
        git(self.base, "init", "-q", "--bare", "-b", "main", str(path))
        return path, f"{self.url}{name}.git"

    def kill_mid(self, direction: str, after: int) -> None:
        """Kill the daemon of the next pack sent ``direction`` ("push": client to server,
        "fetch": server to client) once ``after`` bytes of it have been passed on."""
        self.armed = (direction, after)

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        for daemon in self.daemons:
            _kill_group(daemon)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed by stop()
                return
            ours, theirs = socket.socketpair()
            daemon = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--inetd",
                    "--export-all",
                    "--enable=receive-pack",
                    f"--base-path={self.base}",
                    str(self.base),
                ],
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            theirs.close()
            self.daemons.append(daemon)
            connection = (client, ours, daemon)
            for direction, source, target in (("push", client, ours), ("fetch", ours, client)):
                thread = threading.Thread(
                    target=self._relay,
                    args=(direction, source, target, connection),
                    daemon=True,
                )
                self.threads.append(thread)
                thread.start()

    def _relay(
        self,
        direction: str,
        source: socket.socket,
        target: socket.socket,
        connection: tuple[socket.socket, socket.socket, subprocess.Popen[bytes]],
    ) -> None:
        tail = b""  # the last bytes passed on before the pack, where its signature may start
        passed = -1  # bytes of the pack passed on; -1 before its signature
        try:
            while chunk := source.recv(65536):
                armed = self.armed
                if armed is None or armed[0] != direction:
                    target.sendall(chunk)
                    continue
                if passed < 0:
                    window = tail + chunk
                    start = window.find(PACK)
                    if start < 0:
                        target.sendall(chunk)
                        tail = window[-len(PACK) :]
                        continue
                    begin = start - len(tail)  # where in chunk the pack starts (< 0: in tail)
                    target.sendall(chunk[: max(begin, 0)])
                    chunk = chunk[max(begin, 0) :]
                    passed = max(-begin, 0)
                room = max(armed[1] - passed, 0)
                target.sendall(chunk[:room])
                passed += min(room, len(chunk))
                if passed >= armed[1] and self._fire(armed, connection):
                    return
            target.shutdown(socket.SHUT_WR)
        except OSError:
            _hang_up(connection[:2])

    def _fire(
        self,
        armed: tuple[str, int],
        connection: tuple[socket.socket, socket.socket, subprocess.Popen[bytes]],
    ) -> bool:
        with self.guard:
            if self.armed != armed:
                return False
            self.armed = None
            self.kills += 1  # counted first: the client may see the end before the kill returns
            _kill_group(connection[2])  # the daemon and all it runs, mid-transfer
        _hang_up(connection[:2])
        return True


def _hang_up(ends: tuple[socket.socket, socket.socket]) -> None:
    """Close both ends at once: a shutdown wakes a relay blocked reading them, where a close
    alone would leave the connection open under it."""
    for end in ends:
        with suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


def _kill_group(daemon: subprocess.Popen[bytes]) -> None:
    """SIGKILL the daemon's process group, unless it was reaped already (then its id may be
    another process's by now)."""
    if daemon.returncode is None:  # not reaped: the id is still the daemon's
        with suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait()


@pytest.fixture
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyDaemon]:
    served = tmp_path_factory.mktemp("faulty") / "served"
    served.mkdir()
    running = FaultyDaemon(served)
    try:
        yield running
    finally:
        running.stop()


# -- helpers --------------------------------------------------------------------------------------


def tip(path: Path, ref: str = REF) -> str:
    return git(path, "rev-parse", "-q", "--verify", ref, check=False).strip()


def machine(url: str | Path, path: Path) -> Path:
    """A clone of ``url`` with a tasks ref of its own, as on another machine."""
    git(path.parent, "clone", "-q", str(url), str(path))
    git(path, "config", "tasks.hub", "none")
    return path


def seeded(remote: str | Path, path: Path, *titles: str) -> TaskStore:
    """A clone whose first sync put a store with ``titles`` on ``remote``."""
    machine(remote, path)
    store = TaskStore.open(path)
    store.init()
    for title in titles:
        store.create(title)
    store.sync()
    return store


def text(seed: int, size: int) -> str:
    """About ``size`` characters that compression shrinks little: a transfer of them takes
    many packets, so a daemon can be killed in its middle."""
    letters = base64.b64encode(random.Random(seed).randbytes(size * 3 // 4)).decode()
    return "".join(f"{letters[i : i + 72]}\n" for i in range(0, len(letters), 72))


def tasks(path: Path) -> dict[str, tuple[Status, str]]:
    """Every task of a clone by title: its status and its spec's text."""
    store = TaskStore.open(path)
    return {t.title: (t.status, store.spec(t.id)) for t in store.list(include_done=True)}


def assert_intact(path: Path, before: str, refs: dict[str, str]) -> None:
    """The clone's tasks ref and tracking ref are as they were, its object store is sound and
    no lock file is left behind."""
    assert tip(path) == before
    for ref, value in refs.items():
        assert tip(path, ref) == value, ref
    git(path, "fsck", "--strict", "--no-progress")
    locks = [p for p in (path / ".git").rglob("*.lock") if p.parent.name != "tasksync"]
    assert locks == []
    partial = list((path / ".git" / "objects").rglob("tmp_*"))  # packs, quarantines
    assert partial == []


def fsck(bare: Path) -> None:
    git(bare, "fsck", "--strict", "--no-progress")


def cli_error(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> str:
    """Run ``git tasks -C PATH sync ARGS``: it must fail with exit 1 and one ``error:`` line."""
    code, out, err = run_main(capsys, "-C", str(path), "sync", *args)
    assert (code, out) == (1, ""), err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def converge(*paths: Path) -> None:
    """Sync every clone twice round: all then hold the remote's commit."""
    for _ in range(2):
        for path in paths:
            TaskStore.open(path).sync()
    assert len({tip(path) for path in paths}) == 1


# -- a daemon killed mid-transfer -------------------------------------------------------------


def two_machines(daemon: FaultyDaemon, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A remote the daemon serves and two clones of it, ``a`` and ``b``, both synced with it
    once: it holds a task "Shared" that ``a`` created. The remote's path, ``a`` and ``b``."""
    bare, url = daemon.bare("tasks")
    b = machine(url, tmp_path / "b")  # a clone of the empty remote
    seeded(url, tmp_path / "a", "Shared")
    TaskStore.open(b).sync()
    return bare, tmp_path / "a", b


def test_daemon_killed_mid_fetch_changes_nothing_and_a_later_sync_converges(
    daemon: FaultyDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare, a, b = two_machines(daemon, tmp_path)
    first = TaskStore.open(a)
    big = text(1, 300_000)
    TaskStore.open(b).create("Big from b", spec=big)
    TaskStore.open(b).sync()
    first.create("Offline on a")
    first.set_status(1, Status.IN_PROGRESS)
    local, tracking, remote = tip(a), tip(a, TRACKING), tip(bare)

    daemon.kill_mid("fetch", 20_000)
    with pytest.raises(SyncError) as caught:
        first.sync()
    assert daemon.kills == 1
    said = str(caught.value)
    assert said.startswith("origin cannot be fetched from (")
    assert said.endswith(
        "local tasks are unchanged; check the remote and run `git tasks sync` again"
    )
    assert "\n" not in said
    assert_intact(a, local, {TRACKING: tracking})
    assert tip(bare) == remote

    daemon.kill_mid("fetch", 20_000)  # `git tasks sync` says the same, in one line
    done = subprocess.run(
        [sys.executable, "-m", "tasksync", "-C", str(a), "sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("error: origin cannot be fetched from (")
    assert len(done.stderr.splitlines()) == 1
    assert daemon.kills == 2
    assert_intact(a, local, {TRACKING: tracking})

    converge(a, b)  # every connection from now on is served to the end
    assert tip(bare) == tip(a)
    fsck(bare)
    got = tasks(a)
    assert got == tasks(b)
    assert sorted(got) == ["Big from b", "Offline on a", "Shared"]
    assert got["Shared"][0] is Status.IN_PROGRESS
    assert big in got["Big from b"][1]


def test_daemon_killed_mid_push_keeps_the_merge_and_a_later_sync_converges(
    daemon: FaultyDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare, a, b = two_machines(daemon, tmp_path)
    first = TaskStore.open(a)
    TaskStore.open(b).create("From b")
    TaskStore.open(b).sync()
    big = text(2, 300_000)
    first.create("Big from a", spec=big)
    before, remote = tip(a), tip(bare)

    daemon.kill_mid("push", 20_000)
    with pytest.raises(SyncError) as caught:
        first.sync()
    assert daemon.kills == 1, str(caught.value)
    said = str(caught.value)
    assert said.startswith("origin cannot be pushed to (")
    assert "run `git tasks sync` again" in said and "\n" not in said
    # The merge with b's work landed locally before the push; the push never did.
    merge = tip(a)
    assert merge != before
    assert git(a, "rev-list", "--parents", "-n", "1", merge).split()[1:] == [before, remote]
    assert sorted(tasks(a)) == ["Big from a", "From b", "Shared"]
    assert_intact(a, merge, {TRACKING: remote})
    assert tip(bare) == remote  # the old value: a half-received pack moves no ref
    fsck(bare)

    daemon.kill_mid("push", 20_000)
    assert cli_error(capsys, a).startswith("error: origin cannot be pushed to (")
    assert daemon.kills == 2
    assert (tip(a), tip(bare)) == (merge, remote)

    converge(a, b)
    assert tip(bare) == merge  # pushed as it was merged: nothing merged twice
    fsck(bare)
    got = tasks(b)
    assert got == tasks(a)
    assert sorted(got) == ["Big from a", "From b", "Shared"]
    assert big in got["Big from a"][1]


def test_daemon_killed_after_the_remote_took_the_push_but_before_it_answered(
    daemon: FaultyDaemon, tmp_path: Path
) -> None:
    bare, url = daemon.bare("tasks")
    a = tmp_path / "a"
    store = seeded(url, a, "Before")
    store.create("Pushed, never acknowledged")
    local = tip(a)
    hook = bare / "hooks" / "reference-transaction"
    marker = tmp_path / "committed"
    # The new value is committed on the remote; the daemon dies before it reports back.
    hook.write_text(
        f'#!/bin/sh\n[ "$1" = committed ] || exit 0\ntouch "{marker}"\nkill -KILL 0\n',
        encoding="utf-8",
    )
    hook.chmod(0o755)

    with pytest.raises(SyncError, match=r"^origin cannot be pushed to"):
        store.sync()
    assert marker.exists()
    assert tip(bare) == local  # the new value, whole
    assert_intact(a, local, {})

    hook.unlink()
    done = TaskStore.open(a).sync()
    assert (done.fetched, done.pushed, done.merged) == (local, None, None)
    assert tip(a, TRACKING) == local
    fsck(bare)


# -- a remote rewritten by a third party ------------------------------------------------------


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository on disk with one commit on main and no tasks ref."""
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path


def stranger(tmp_path: Path, *titles: str) -> str:
    """A tasks history of its own (no commit in common with any other), with ``titles``; its
    tip, in a repository at ``tmp_path / 'stranger'``."""
    path = tmp_path / "stranger"
    git(tmp_path, "init", "-q", str(path))
    store = TaskStore.open(path)
    store.init()
    for title in titles:
        store.create(title)
    head = store.head()
    assert head is not None
    return head


@pytest.mark.parametrize("rewrite", ["rewound", "replaced", "deleted"])
def test_a_force_push_never_drops_a_task_this_clone_has_seen(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], rewrite: str
) -> None:
    a = seeded(remote, tmp_path / "a", "One", "Two")
    first = tip(remote)
    b = machine(remote, tmp_path / "b")
    TaskStore.open(b).sync()
    TaskStore.open(b).create("Only b had it")
    TaskStore.open(b).sync()
    seen = tip(remote)
    # a looks (fetching the remote's state) but does not merge, and works offline.
    code, out, _ = run_main(capsys, "-C", str(tmp_path / "a"), "sync", "--dry-run")
    assert (code, out.split(" (")[0]) == (0, "origin: fast-forward")
    assert tip(tmp_path / "a", TRACKING) == seen
    a.create("Local work")
    a.set_status(2, Status.DONE)
    # A third party rewrites the remote; b's clone, the only other copy of its task, is gone.
    expected = ["One", "Two", "Only b had it", "Local work"]
    if rewrite == "rewound":
        git(remote, "update-ref", REF, first)
    elif rewrite == "replaced":
        other = stranger(tmp_path, "Stranger")
        git(tmp_path / "stranger", "push", "-q", "--force", str(remote), f"{other}:{REF}")
        expected.append("Stranger")
    else:
        git(remote, "update-ref", "-d", REF)
    rewritten = tip(remote)
    shutil.rmtree(b)

    code, out, _ = run_main(capsys, "-C", str(tmp_path / "a"), "sync", "--dry-run")
    assert out.startswith("origin: merge and push (")  # what the sync will do, said first
    assert git(tmp_path / "a", "for-each-ref", "--format=%(refname)", "refs/tasksync/dropped/")
    code, out, err = run_main(capsys, "-C", str(tmp_path / "a"), "sync")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"origin: was force-pushed; merged back what it had held ({seen[:12]})"
    assert lines[1].startswith("origin: ") and "pushed" in lines[1]

    local = tip(tmp_path / "a")
    assert tip(remote) == local  # the remote fast-forwarded ...
    if rewritten:
        git(remote, "merge-base", "--is-ancestor", rewritten, REF)  # ... from the rewrite
    git(remote, "merge-base", "--is-ancestor", seen, REF)
    got = TaskStore.open(tmp_path / "a").list(include_done=True)
    assert sorted(t.title for t in got) == sorted(expected)
    assert len({t.id for t in got}) == len(expected)
    assert {t.title: t.status for t in got}["Two"] is Status.DONE
    assert git(tmp_path / "a", "for-each-ref", "refs/tasksync/dropped/") == ""
    again = TaskStore.open(tmp_path / "a").sync()
    assert (again.restored, again.pushed, again.merged) == ((), None, None)


# -- a remote holding a broken, huge or strange tasks ref -------------------------------------

# TASKSYNC_FULL_FAULTS=1 runs the sizes of the issue: a 100 MB tasks.md against the default
# tasks.maxFileSize (10 MiB), and 100,000 commits; by default 2 MB against a limit of 1 MiB,
# and 10,000 commits, which take the same paths in a fraction of the time.
FULL = bool(os.environ.get("TASKSYNC_FULL_FAULTS"))
LONG_HISTORY = 100_000 if FULL else 10_000
HUGE = 100_000_000 if FULL else 2_000_000


def commit_files(bare: Path, files: dict[str, bytes], parent: str | None) -> str:
    """A commit in ``bare`` holding exactly ``files`` (paths with ``/`` make directories)."""
    import pygit2

    repo = pygit2.Repository(str(bare))

    def tree(entries: dict[str, bytes]) -> pygit2.Oid:
        builder = repo.TreeBuilder()
        below: dict[str, dict[str, bytes]] = {}
        for path, data in entries.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = data
            else:
                builder.insert(head, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
        for name, inner in below.items():
            builder.insert(name, tree(inner), pygit2.GIT_FILEMODE_TREE)
        return builder.write()

    who = pygit2.Signature("Third Party", "third@example.com", 1700000000, 0)
    parents = [] if parent is None else [pygit2.Oid(hex=parent)]
    return str(repo.create_commit(None, who, who, "hand-made", tree(files), parents))


def fast_import(bare: Path, stream: bytes) -> None:
    done = subprocess.run(
        ["git", "fast-import", "--quiet", "--force"],
        cwd=bare,
        input=stream,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def broken_state(bare: Path, kind: str) -> str:
    """Point ``bare``'s tasks ref at a state of ``kind``; the value it now has."""
    good = tip(bare)
    index = b"- [ ] One [#001](process/tasks/001-one.md)\n"
    spec = b"# Task #001: One\n"
    if kind == "blob":
        value = git(bare, "rev-parse", f"{good}:process/tasks.md").strip()
    elif kind == "tree":
        value = git(bare, "rev-parse", f"{good}^{{tree}}").strip()
    elif kind == "tag":
        git(bare, "tag", "-a", "-m", "a tag, not a state", "v1", good)
        value = git(bare, "rev-parse", "refs/tags/v1").strip()
    elif kind == "damaged":  # a commit whose spec file the remote has lost
        value = commit_files(
            bare, {"process/tasks.md": index, "process/tasks/001-one.md": b"#\n"}, good
        )
        lost = git(bare, "rev-parse", f"{value}:process/tasks/001-one.md").strip()
        (bare / "objects" / lost[:2] / lost[2:]).unlink()
    elif kind == "no index":
        value = commit_files(bare, {"process/tasks/001-one.md": spec}, good)
    elif kind == "not UTF-8":
        bad = b"- [ ] On\xe9 [#001](process/tasks/001-one.md)\n"
        value = commit_files(
            bare, {"process/tasks.md": bad, "process/tasks/001-one.md": spec}, good
        )
    elif kind == "duplicate ids":
        twice = index + b"- [ ] Again [#001](process/tasks/001-one.md)\n"
        value = commit_files(
            bare, {"process/tasks.md": twice, "process/tasks/001-one.md": spec}, good
        )
    elif kind == "huge":
        line = b"- [ ] The same line again and again [#001](process/tasks/001-one.md)\n"
        data = line * (HUGE // len(line) + 1)
        fast_import(
            bare,
            b"commit %s\ncommitter Third Party <third@example.com> 1700000000 +0000\n"
            b"data 4\nhuge\nfrom %s\nM 100644 inline process/tasks.md\ndata %d\n%s\n"
            % (REF.encode(), good.encode(), len(data), data),
        )
        return tip(bare)
    else:
        raise AssertionError(kind)
    git(bare, "update-ref", REF, value)
    return value


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file of a clone's worktree (the export copy included) and its tasks ref's files."""
    files = {
        str(p.relative_to(path)): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(path).parts
    }
    files.update({f"ref:{k}": v.encode() for k, v in TaskStore.open(path).files().items()})
    return files


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("blob", ", a blob, not a commit; "),
        ("tree", ", a tree, not a commit; "),
        ("tag", ", a tag, not a commit; "),
        ("damaged", "cannot be fetched from ("),
        ("no index", "will not merge (missing index: process/tasks.md is not in the tree"),
        ("not UTF-8", "will not merge (unreadable index: process/tasks.md (object "),
        ("duplicate ids", "will not merge (duplicate task id: #001 is on lines 1, 2"),
        ("huge", f"over the limit of {10 << 20 if FULL else 1 << 20} bytes (tasks.maxFileSize)"),
    ],
)
def test_a_broken_or_huge_remote_ref_is_refused_and_local_tasks_stay_byte_for_byte(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, said: str
) -> None:
    path = tmp_path / "a"
    a = seeded(remote, path, "One", "Two")
    a.create("Local work", description="Kept as it is.")
    a.set_status(1, Status.IN_REVIEW)
    a.export()
    if not FULL:
        git(path, "config", "tasks.maxFileSize", "1m")
        a = TaskStore.open(path)  # the configuration as it is now
    good = tip(remote)
    value = broken_state(remote, kind)
    before, files = tip(path), snapshot(path)

    with pytest.raises(SyncError) as caught:
        a.sync()
    message = str(caught.value)
    assert message.startswith(f"origin has {REF} at " if kind != "damaged" else "origin ")
    assert said in message
    assert "local tasks are unchanged" in message and "\n" not in message
    err = cli_error(capsys, path)
    assert err.startswith(f"error: {message[:30]}")
    assert tip(path) == before
    assert snapshot(path) == files
    assert git(path, "for-each-ref", "refs/tasksync/dropped/") == ""
    assert tip(remote) == value  # nobody repaired it

    git(remote, "update-ref", REF, good)  # repaired: the last good state restored
    done = TaskStore.open(path).sync()
    assert done.pushed == before == tip(remote)
    assert done.restored == ()  # the broken state was never taken, so not merged back
    assert sorted(files) == sorted(snapshot(path))


@pytest.mark.parametrize("shape", ["on the shared state", "unrelated"])
def test_a_remote_history_of_many_commits_is_fetched_and_merged(
    remote: Path, tmp_path: Path, shape: str
) -> None:
    path = tmp_path / "a"
    a = seeded(remote, path, "One")
    a.create("Local work")
    base = tip(remote)
    start = (  # the first commit builds on the shared state, or holds an empty store alone
        b"from %s\n" % base.encode()
        if shape != "unrelated"
        else b"M 100644 inline process/tasks.md\ndata 0\n"
    )
    steps = b"".join(
        b"commit %s\ncommitter Third Party <third@example.com> %d +0000\ndata 5\nstep\n%s\n"
        % (REF.encode(), 1700000000 + n, start if n == 0 else b"")
        for n in range(LONG_HISTORY)
    )
    fast_import(remote, steps)  # then commits that change nothing
    long = tip(remote)
    shared = 0 if shape == "unrelated" else 2  # init and one create
    assert git(remote, "rev-list", "--count", REF).strip() == str(LONG_HISTORY + shared)

    done = TaskStore.open(path).sync()

    assert done.fetched == long
    assert done.merged is not None and done.merged.outcome == "merged"
    assert done.pushed == tip(path) == tip(remote)
    assert git(path, "rev-list", "--parents", "-n", "1", REF).split()[2:] == [long]
    assert [t.title for t in TaskStore.open(path).list()] == ["One", "Local work"]


def test_a_remote_history_with_no_common_base_is_merged_task_by_task(
    remote: Path, tmp_path: Path
) -> None:
    path = tmp_path / "a"
    a = seeded(remote, path, "One", "Two")
    a.create("Three", spec="# Three\n\n## Context\n\nWritten here.\n")
    mine = {t.title: (t.status, a.spec(t.id)) for t in a.list()}
    other = stranger(tmp_path, "Theirs one", "Theirs two")
    git(tmp_path / "stranger", "push", "-q", "--force", str(remote), f"{other}:{REF}")

    done = TaskStore.open(path).sync()

    assert done.merged is not None and done.merged.outcome == "merged"
    assert done.pushed == tip(path) == tip(remote)
    for parent in (other, tip(remote)):
        git(path, "merge-base", "--is-ancestor", other, parent)
    got = TaskStore.open(path).list()
    assert len({t.id for t in got}) == len(got) == 5
    theirs = {t.title: t.id for t in TaskStore.open(tmp_path / "stranger").list()}
    for task in got:
        if task.title in theirs:  # the remote's ids stand: others know them
            assert task.id == theirs[task.title]
        else:  # each of ours is kept, renumbered past the remote's where they clashed
            status, spec = mine[task.title]
            assert task.status is status
            assert spec.split("\n", 1)[1] == TaskStore.open(path).spec(task.id).split("\n", 1)[1]
    assert sorted(mine) == sorted(t.title for t in got if t.title not in theirs)
    assert {str(r.old) for r in done.merged.renumbered} == {"#001", "#002"}


# -- a remote that cannot be reached, or says no ------------------------------------------------


def unreachable(path: Path, how: str, stack: ExitStack) -> str:
    """Point ``path``'s origin at a remote that fails as ``how`` says (until ``stack`` is
    closed); the part of git's reason the error must quote."""
    if how == "connection refused":
        port = stack.enter_context(socket.socket())
        port.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        git(path, "remote", "set-url", "origin", f"git://127.0.0.1:{port.getsockname()[1]}/t")
        return "errno=Connection refused"
    if how == "no such repository":
        git(path, "remote", "set-url", "origin", str(path.parent / "nowhere.git"))
        return "does not appear to be a git repository"
    if how == "not a repository":
        (path.parent / "plain").mkdir()
        git(path, "remote", "set-url", "origin", str(path.parent / "plain"))
        return "does not appear to be a git repository"
    if how == "authentication":
        ssh = path.parent / "ssh"  # what ssh says when the server turns the key down
        ssh.write_text(
            "#!/bin/sh\necho 'git@127.0.0.1: Permission denied (publickey).' >&2\nexit 255\n",
            encoding="utf-8",
        )
        ssh.chmod(0o755)
        git(path, "config", "core.sshCommand", str(ssh))
        git(path, "remote", "set-url", "origin", "ssh://git@127.0.0.1/tasks.git")
        return "Permission denied (publickey)."
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["connection refused", "no such repository", "not a repository", "authentication"]
)
def test_an_unreachable_remote_is_one_clear_error_and_changes_nothing(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    path = tmp_path / "a"
    a = seeded(remote, path, "One")
    a.create("Not pushed yet")
    before, tracking, files = tip(path), tip(path, TRACKING), snapshot(path)
    stack = ExitStack()
    reason = unreachable(path, how, stack)

    with stack, pytest.raises(SyncError) as caught:
        a.sync()
    message = str(caught.value)
    assert message.startswith("origin cannot be fetched from (")
    assert reason in message and "\n" not in message
    assert message.endswith(
        "local tasks are unchanged; check the remote and run `git tasks sync` again"
    )
    with stack:
        for args in ((), ("--dry-run",), ("--json",)):
            err = cli_error(capsys, path, *args)
            assert err.startswith("error: origin cannot be fetched from (") and reason in err
    assert_intact(path, before, {TRACKING: tracking})
    assert snapshot(path) == files


def test_a_push_a_server_hook_refuses_brings_the_hook_s_words_and_changes_nothing(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a"
    a = seeded(remote, path, "One")
    a.create("Not accepted")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(  # the second line tries to drive the user's terminal
        "#!/bin/sh\necho 'tasks are frozen until the release is out' >&2\n"
        "printf 'see \\033[31mthe plan\\033]0;owned\\007\\r\\n' >&2\nexit 1\n",
        "utf-8",
    )
    hook.chmod(0o755)
    before, pushed, files = tip(path), tip(remote), snapshot(path)

    with pytest.raises(SyncError) as caught:
        a.sync()
    message = str(caught.value)
    assert message.startswith(
        f"origin refused the push of {REF} ([remote rejected] (pre-receive hook declined): "
        "tasks are frozen until the release is out; see [31mthe plan]0;owned); "
    )
    assert message.isprintable()
    err = cli_error(capsys, path)
    assert "tasks are frozen until the release is out" in err
    assert_intact(path, before, {TRACKING: pushed})
    assert snapshot(path) == files
    assert tip(remote) == pushed

    hook.unlink()
    assert TaskStore.open(path).sync().pushed == before == tip(remote)
