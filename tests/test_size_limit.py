"""``tasks.maxFileSize``: files over it are refused from their object header, never read.

A file on the tasks ref is measured with libgit2's header read (loose or packed, deltified
too) before its content is inflated; a write measures the bytes it would store before any
object is written. Both refuse with :class:`FileTooLarge`, naming the path, the size, the
limit and the command that raises it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import git

from tasksync import ConfigError, FileTooLarge, FormatError, TaskStore
from tasksync.markdown import INDEX_PATH
from tasksync.workspace import DEFAULT_MAX_FILE_SIZE

REF = "refs/tasks/main"
MIB = 1 << 20


def loose_objects(repo: Path) -> set[str]:
    objects = repo / ".git" / "objects"
    return {f"{d.name}{f.name}" for d in objects.iterdir() if len(d.name) == 2 for f in d.iterdir()}


def commit_file(repo: Path, path: str, blob_id: str) -> str:
    """Commit ``blob_id`` at ``path`` on top of the tasks ref with plain git plumbing."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "size-test-index")}
    old = git(repo, "rev-parse", REF).strip()
    for args in (
        ["read-tree", old],
        ["update-index", "--add", "--cacheinfo", f"100644,{blob_id},{path}"],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    new = git(repo, "commit-tree", tree, "-p", old, "-m", "a big file").strip()
    git(repo, "update-ref", REF, new, old)
    return new


def hash_text(repo: Path, text: str) -> str:
    done = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo,
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().strip()


def zero_blob(repo: Path, size: int) -> str:
    """A loose blob of ``size`` zero bytes, hashed and deflated a megabyte at a time, so the
    test process never holds it either."""
    header = f"blob {size}\0".encode()
    digest = hashlib.sha1(header)  # noqa: S324 - git's object name, not a secret
    deflate = zlib.compressobj(1)
    chunk = bytes(MIB)
    parts = [deflate.compress(header)]
    left = size
    while left:
        piece = chunk[: min(left, MIB)]
        digest.update(piece)
        parts.append(deflate.compress(piece))
        left -= len(piece)
    parts.append(deflate.flush())
    oid = digest.hexdigest()
    path = repo / ".git" / "objects" / oid[:2] / oid[2:]
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"".join(parts))
    return oid


# -- the setting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        (None, DEFAULT_MAX_FILE_SIZE),
        ("2048", 2048),
        ("1k", 1024),
        ("3K", 3 * 1024),
        ("20m", 20 * MIB),
        ("1g", 1 << 30),
        ("0x800", 2048),
    ],
)
def test_the_limit_reads_sizes_as_git_config_type_int_does(
    repo: Path, value: str | None, limit: int
) -> None:
    if value is not None:
        git(repo, "config", "tasks.maxFileSize", value)
        assert int(git(repo, "config", "--type=int", "tasks.maxFileSize")) == limit
    store = TaskStore.open(repo)
    store.init()
    assert store._repo.max_file_size() == limit


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5m", "1kb", "1t", ""])
def test_a_limit_that_is_not_a_positive_size_is_a_config_error(repo: Path, value: str) -> None:
    store = TaskStore.open(repo)
    store.init()
    git(repo, "config", "tasks.maxFileSize", value)
    with pytest.raises(ConfigError) as caught:
        TaskStore.open(repo).list()
    assert caught.value.key == "tasks.maxFileSize"
    assert "git config tasks.maxFileSize" in str(caught.value)


def test_the_default_holds_six_ten_thousand_task_indexes_of_long_titles() -> None:
    title = "Enhance task operations synchronization across workspaces"  # 57 characters
    link = "process/tasks/{n:03d}-enhance-task-operations-synchronization-across-workspaces.md"
    text = "# Tasks\n\n" + "".join(
        f"- [ ] {title} [#{n:03d}]({link.format(n=n)})\n" for n in range(1, 10_001)
    )
    assert 6 * len(text.encode()) < DEFAULT_MAX_FILE_SIZE


# -- reading --------------------------------------------------------------------------------------


def test_an_index_over_the_limit_is_refused_naming_path_size_limit_and_fix(
    store: TaskStore, repo: Path
) -> None:
    store.create("one")
    text = store.index_text() + "".join(f"prose line {n}\n" for n in range(200))
    size = len(text.encode())
    blob_id = hash_text(repo, text)
    tip = commit_file(repo, INDEX_PATH, blob_id)
    git(repo, "config", "tasks.maxFileSize", "1k")
    opened = TaskStore.open(repo)
    for call in (opened.list, lambda: opened.get(1), lambda: opened.set_status(1, "DONE")):
        with pytest.raises(FileTooLarge) as caught:
            call()
        error = caught.value
        assert isinstance(error, FormatError)
        assert (error.path, error.size, error.limit, error.oid) == (
            INDEX_PATH,
            size,
            1024,
            blob_id,
        )
        assert "git config tasks.maxFileSize 1m" in str(error)
        assert "\n" not in str(error)
    assert opened.head() == tip
    git(repo, "config", "tasks.maxFileSize", f"{size}")  # exactly the size: allowed
    assert [t.title for t in TaskStore.open(repo).list()] == ["one"]


def test_a_spec_over_the_limit_is_refused_and_the_index_still_reads(
    store: TaskStore, repo: Path
) -> None:
    store.create("one", description="small")
    store.create("two", description="x" * 4000)
    git(repo, "config", "tasks.maxFileSize", "2k")
    opened = TaskStore.open(repo)
    assert [t.title for t in opened.list(descriptions=False)] == ["one", "two"]
    assert opened.get(1).description == "small"
    with pytest.raises(FileTooLarge) as caught:
        opened.spec(2)
    assert caught.value.path == "process/tasks/002-two.md"
    assert caught.value.size > 4000


def test_a_file_read_before_under_a_higher_limit_is_measured_again(
    store: TaskStore, repo: Path
) -> None:
    store.create("one", description="y" * 3000)
    assert len(TaskStore.open(repo).spec(1)) > 3000  # now in this process's caches
    assert len(TaskStore.open(repo).index_text()) > 0
    git(repo, "config", "tasks.maxFileSize", "1k")
    with pytest.raises(FileTooLarge):
        TaskStore.open(repo).spec(1)
    git(repo, "config", "tasks.maxFileSize", "20")
    with pytest.raises(FileTooLarge):
        TaskStore.open(repo).list(descriptions=False)


def test_packed_and_deltified_files_are_measured_from_their_header(
    store: TaskStore, repo: Path
) -> None:
    store.create("one")
    bigger = store.index_text() + "".join(f"a line of prose number {n}\n" for n in range(300))
    commit_file(repo, INDEX_PATH, hash_text(repo, bigger))
    smaller = bigger[: -len("a line of prose number 299\n")]
    blob_id = hash_text(repo, smaller)
    commit_file(repo, INDEX_PATH, blob_id)
    git(repo, "repack", "-a", "-d", "-q")
    packs = [str(idx) for idx in (repo / ".git" / "objects" / "pack").glob("*.idx")]
    rows = {
        row.split()[0]: row.split() for row in git(repo, "verify-pack", "-v", *packs).splitlines()
    }
    assert len(rows[blob_id]) == 7  # "... depth base": the tip's file is stored as a delta
    assert not loose_objects(repo) & {blob_id}
    git(repo, "config", "tasks.maxFileSize", "2k")
    with pytest.raises(FileTooLarge) as caught:
        TaskStore.open(repo).list()
    assert caught.value.size == len(smaller.encode())


@pytest.mark.skipif(
    not Path("/proc/self/status").is_file(), reason="peak memory is read from /proc (Linux)"
)
def test_a_hundred_megabyte_index_is_refused_without_being_read(
    store: TaskStore, repo: Path
) -> None:
    store.create("one")
    size = 100 * MIB
    commit_file(repo, INDEX_PATH, zero_blob(repo, size))
    assert git(repo, "cat-file", "-s", f"{REF}:{INDEX_PATH}").strip() == str(size)
    # The peak resident size of the process's own memory (VmHWM): ru_maxrss would count the
    # parent's at the fork too.
    script = (
        "import sys\n"
        "from tasksync import FileTooLarge, TaskStore\n"
        "try:\n"
        "    TaskStore.open(sys.argv[1]).list()\n"
        "except FileTooLarge as error:\n"
        "    print(error.size, error.limit)\n"
        "with open('/proc/self/status') as status:\n"
        "    print(next(l.split()[1] for l in status if l.startswith('VmHWM:')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(repo)], capture_output=True, text=True, check=True
    )
    refused, peak = done.stdout.split("\n")[:2]
    assert refused == f"{size} {DEFAULT_MAX_FILE_SIZE}"
    # The interpreter, pygit2 and tasksync take about 31 MB; the file alone would be 100.
    assert int(peak) * 1024 < 80 * MIB, f"peak resident size {int(peak) // 1024} MB"
    cli = subprocess.run(
        [sys.executable, "-m", "tasksync", "-C", str(repo), "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1
    assert cli.stderr.startswith(f"error: {INDEX_PATH} (object ")
    assert "git config tasks.maxFileSize 100m" in cli.stderr
    assert len(cli.stderr.splitlines()) == 1


# -- writing --------------------------------------------------------------------------------------


def test_a_spec_over_the_limit_is_not_written_and_no_object_is_left(
    store: TaskStore, repo: Path
) -> None:
    store.create("one")
    tip = store.head()
    before = loose_objects(repo)
    big = "# Task #002: two\n\n" + "z" * (20 * MIB)
    with pytest.raises(FileTooLarge) as caught:
        store.create("two", spec=big)
    error = caught.value
    assert error.writing and error.path == "process/tasks/002-two.md"
    assert error.size >= 20 * MIB and error.limit == DEFAULT_MAX_FILE_SIZE
    assert "nothing was written" in str(error)
    with pytest.raises(FileTooLarge):
        store.update(1, spec=big)
    with pytest.raises(FileTooLarge):
        store.update(1, description="w" * (11 * MIB))
    assert store.head() == tip
    assert loose_objects(repo) == before


def test_an_index_that_would_grow_over_the_limit_is_not_written(
    store: TaskStore, repo: Path
) -> None:
    git(repo, "config", "tasks.maxFileSize", "300")
    opened = TaskStore.open(repo)
    created = 0
    with pytest.raises(FileTooLarge) as caught:
        for n in range(20):
            opened.create(f"task number {n}")
            created += 1
    assert caught.value.path == INDEX_PATH and caught.value.writing
    assert 0 < created < 20
    assert len(opened.list()) == created
    assert len(opened.index_text().encode()) <= 300


def test_migrate_refuses_an_in_tree_file_over_the_limit_before_reading_it(repo: Path) -> None:
    (repo / "process").mkdir()
    (repo / INDEX_PATH).write_text("# Tasks\n\n" + "- [ ] x [#001](process/tasks/001-x.md)\n" * 60)
    git(repo, "config", "tasks.maxFileSize", "1k")
    with pytest.raises(FileTooLarge) as caught:
        TaskStore.open(repo).migrate()
    assert caught.value.path == INDEX_PATH
    assert git(repo, "for-each-ref", "refs/tasks/").strip() == ""


def test_a_state_with_an_index_over_the_limit_is_not_merged_in(
    store: TaskStore, repo: Path
) -> None:
    store.create("one")
    base = store.head()
    assert base is not None
    big = commit_file(repo, INDEX_PATH, hash_text(repo, store.index_text() + "x" * 4096 + "\n"))
    git(repo, "update-ref", REF, base, big)
    git(repo, "config", "tasks.maxFileSize", "2k")
    opened = TaskStore.open(repo)
    with pytest.raises(FileTooLarge):
        opened.merge(big)  # a fast-forward, yet the other side's index is measured first
    assert opened.head() == base
