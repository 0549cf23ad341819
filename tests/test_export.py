"""export and apply: a copy of the task files for tools that read files, merged back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import git, run_main, tasks_md

from tasksync import Status, TaskStore
from tasksync.errors import ExportError, NotInHistory
from tasksync.export import PENDING, RECORD


def _copy(path: Path) -> Path:
    return path / ".tasks"


def test_export_writes_the_tip_and_makes_git_ignore_it(store: TaskStore, repo: Path) -> None:
    store.create("First", description="one")
    store.create("Second")
    done = store.export()
    copy = _copy(repo)
    assert done.directory == copy
    assert done.commit == store.head()
    assert done.ignored is True
    assert (copy / "process/tasks.md").read_text(encoding="utf-8") == tasks_md(repo)
    assert (copy / "process/tasks/001-first.md").read_text(encoding="utf-8") == store.spec(1)
    assert not (copy / ".tasksync").exists()  # tasksync's own records stay on the ref
    assert git(repo, "status", "--porcelain") == ""
    record = json.loads((copy / RECORD).read_text(encoding="utf-8"))
    assert record["commit"] == store.head()
    assert sorted(record["files"]) == [
        "process/tasks.md",
        "process/tasks/001-first.md",
        "process/tasks/002-second.md",
    ]
    again = store.export()
    assert again.written == () and again.ignored is False
    exclude = (repo / ".git/info/exclude").read_text(encoding="utf-8")
    assert exclude.count("/.tasks/") == 1


def test_export_follows_the_tip_and_removes_deleted_specs(store: TaskStore, repo: Path) -> None:
    store.create("First")
    store.create("Second")
    store.export()
    store.delete(2)
    store.set_status(1, Status.DONE)
    done = store.export()
    assert done.removed == ("process/tasks/002-second.md",)
    assert done.written == ("process/tasks.md",)
    assert not (_copy(repo) / "process/tasks/002-second.md").exists()
    assert (_copy(repo) / "process/tasks.md").read_text(encoding="utf-8") == tasks_md(repo)


def test_apply_keeps_edits_of_the_copy_and_of_another_workspace(
    store: TaskStore, repo: Path, worktree: Path
) -> None:
    for title in ("One", "Two", "Three"):
        store.create(title)
    store.export()
    copy = _copy(repo)
    index = copy / "process/tasks.md"
    index.write_text(
        index.read_text(encoding="utf-8").replace("- [ ] One", "- [+] One"), encoding="utf-8"
    )
    spec = copy / "process/tasks/003-three.md"
    spec.write_text(spec.read_text(encoding="utf-8") + "\n## Notes\n\nfrom the copy\n", "utf-8")
    # Meanwhile another worktree changes other tasks.
    other = TaskStore.open(worktree)
    other.set_status(2, Status.DONE)
    other.create("Four")
    done = store.apply()
    assert done.edited == ("process/tasks.md", "process/tasks/003-three.md")
    assert done.merged is not None and done.merged.outcome == "merged"
    assert done.merged.conflicts == ()
    status = {t.title: t.status for t in store.list(include_done=True)}
    assert status == {
        "One": Status.IN_PROGRESS,
        "Two": Status.DONE,
        "Three": Status.TODO,
        "Four": Status.TODO,
    }
    assert store.spec(3).endswith("## Notes\n\nfrom the copy\n")
    # The copy was brought up to the merged tip.
    assert done.refreshed is not None and done.refreshed.commit == store.head()
    assert index.read_text(encoding="utf-8") == tasks_md(repo)
    assert store.apply().merged is None  # nothing left to apply


def test_apply_alone_fast_forwards(store: TaskStore, repo: Path) -> None:
    store.create("One")
    before = store.head()
    store.export()
    index = _copy(repo) / "process/tasks.md"
    index.write_text(index.read_text(encoding="utf-8").replace("[ ]", "[x]"), encoding="utf-8")
    done = store.apply()
    assert done.merged is not None and done.merged.outcome == "fast-forward"
    assert store.get(1).status is Status.DONE
    assert git(repo, "rev-parse", "refs/tasks/main~1").strip() == before


def test_a_task_added_in_the_copy_under_a_taken_id_is_renumbered(
    store: TaskStore, repo: Path
) -> None:
    store.create("One")
    store.export()
    copy = _copy(repo)
    index = copy / "process/tasks.md"
    line = "- [ ] Hand made [#002](process/tasks/002-hand-made.md)\n"
    index.write_text(index.read_text(encoding="utf-8") + line, encoding="utf-8")
    (copy / "process/tasks/002-hand-made.md").write_text("# Task #002: Hand made\n", "utf-8")
    store.create("Made elsewhere")  # takes #002 on the ref first
    done = store.apply()
    assert done.merged is not None
    titles = {t.id.number: t.title for t in store.list()}
    assert titles == {1: "One", 2: "Made elsewhere", 3: "Hand made"}
    assert [(r.old.number, r.new.number) for r in done.merged.renumbered] == [(2, 3)]
    assert store.spec(3).startswith("# Task #003: Hand made")


def test_removing_a_spec_in_the_copy_removes_it_but_tasks_md_must_stay(
    store: TaskStore, repo: Path
) -> None:
    store.create("One")
    store.export()
    copy = _copy(repo)
    (copy / "process/tasks/001-one.md").unlink()
    store.apply()
    tree = git(repo, "ls-tree", "-r", "--name-only", "refs/tasks/main").split()
    assert "process/tasks/001-one.md" not in tree
    assert "process/tasks.md" in tree
    (copy / "process/tasks.md").unlink()
    head = store.head()
    with pytest.raises(ExportError, match=r"process/tasks\.md is missing"):
        store.apply()
    assert store.head() == head


def test_export_refuses_to_overwrite_unapplied_edits(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.export()
    index = _copy(repo) / "process/tasks.md"
    edited = index.read_text(encoding="utf-8") + "\nnotes\n"
    index.write_text(edited, encoding="utf-8")
    store.set_status(1, Status.DONE)
    with pytest.raises(ExportError, match=r"edits not applied yet \(process/tasks.md\)"):
        store.export()
    assert index.read_text(encoding="utf-8") == edited
    store.export(force=True)
    assert index.read_text(encoding="utf-8") == tasks_md(repo)


def test_export_refuses_files_it_did_not_write(store: TaskStore, repo: Path) -> None:
    store.create("One")
    (repo / "process").mkdir()
    (repo / "process/tasks.md").write_text("- [ ] Old [#001](process/tasks/001-old.md)\n", "utf-8")
    git(repo, "add", "process")
    git(repo, "commit", "-q", "-m", "in-tree tasks")
    with pytest.raises(ExportError, match="tasksync did not write"):
        store.export(repo)
    assert "Old" in (repo / "process/tasks.md").read_text(encoding="utf-8")
    # Once the in-tree files are gone (after migrating), the worktree itself can hold the
    # copy, where tools that read process/tasks.md look.
    git(repo, "rm", "-q", "-r", "process")
    done = store.export(repo)
    assert (repo / "process/tasks.md").read_text(encoding="utf-8") == tasks_md(repo)
    assert done.ignored is False


def test_an_interrupted_export_is_not_mistaken_for_edits(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.create("Two")
    store.export()
    copy = _copy(repo)
    store.set_status(1, Status.DONE)
    store.delete(2)
    # An export that died after writing its pending record and tasks.md, before the rest.
    new_index = tasks_md(repo)
    record = json.loads((copy / RECORD).read_text(encoding="utf-8"))
    pending = dict(record, commit=store.head())
    pending["files"] = {
        "process/tasks.md": hashlib.sha256(new_index.encode()).hexdigest(),
        "process/tasks/001-one.md": record["files"]["process/tasks/001-one.md"],
    }
    (copy / PENDING).write_text(json.dumps(pending), encoding="utf-8")
    (copy / "process/tasks.md").write_text(new_index, encoding="utf-8")
    assert store.apply().merged is None  # files matching either record are not edits
    done = store.export()  # completes it: no edits in the way
    assert not (copy / PENDING).exists()
    assert done.removed == ("process/tasks/002-two.md",)
    assert store.apply().merged is None


def test_apply_after_an_export_that_died_first_asks_for_a_new_one(
    store: TaskStore, repo: Path
) -> None:
    store.create("One")
    store.export()
    copy = _copy(repo)
    (copy / RECORD).replace(copy / PENDING)
    with pytest.raises(ExportError, match="interrupted"):
        store.apply()
    store.export()
    assert (copy / RECORD).is_file() and not (copy / PENDING).exists()


def test_an_edit_of_a_file_an_interrupted_export_was_rewriting_is_refused(
    store: TaskStore, repo: Path
) -> None:
    store.create("One")
    store.export()
    copy = _copy(repo)
    store.set_status(1, Status.DONE)
    record = json.loads((copy / RECORD).read_text(encoding="utf-8"))
    pending = dict(record, commit=store.head())
    pending["files"] = dict(record["files"])
    pending["files"]["process/tasks.md"] = hashlib.sha256(tasks_md(repo).encode()).hexdigest()
    (copy / PENDING).write_text(json.dumps(pending), encoding="utf-8")
    (copy / "process/tasks.md").write_text("edited by hand\n", encoding="utf-8")
    head = store.head()
    with pytest.raises(ExportError, match="interrupted export rewrote it"):
        store.apply()
    assert store.head() == head


def test_apply_refuses_a_copy_of_another_history(
    store: TaskStore, repo: Path, tmp_path: Path
) -> None:
    store.create("One")
    store.export()
    other_repo = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other_repo))
    other = TaskStore.open(other_repo)
    other.init()
    with pytest.raises(ExportError, match="does not have"):
        other.apply(_copy(repo))
    with pytest.raises(ExportError, match="holds no export"):
        store.apply(tmp_path / "nothing")


def test_apply_refuses_invalid_utf8_and_changes_nothing(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.export()
    head = store.head()
    (_copy(repo) / "process/tasks/001-one.md").write_bytes(b"# Task #001: One\n\xff\n")
    with pytest.raises(ExportError, match=r"001-one.md is not valid UTF-8"):
        store.apply()
    assert store.head() == head


def test_merge_edits_checks_its_base_and_paths(store: TaskStore) -> None:
    store.create("One")
    base = store.head()
    assert base is not None
    with pytest.raises(NotInHistory):
        store.merge_edits("0" * 40, {}, summary="x")
    with pytest.raises(ValueError, match="not a file of the tasks tree"):
        store.merge_edits(base, {"README.md": "x"}, summary="x")
    assert store.merge_edits(base, {}, summary="x").outcome == "up-to-date"


def test_cli_export_and_apply(
    store: TaskStore,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.create("One")
    monkeypatch.chdir(repo)
    code, out, _ = run_main(capsys, "export")
    assert code == 0 and "Exported 2 files" in out and "ignores it" in out
    index = repo / ".tasks/process/tasks.md"
    index.write_text(index.read_text(encoding="utf-8").replace("[ ]", "[-]"), encoding="utf-8")
    code, out, _ = run_main(capsys, "apply", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["edited"] == ["process/tasks.md"] and result["outcome"] == "fast-forward"
    assert result["refreshed"]["commit"] == store.head()
    assert store.get(1).status is Status.IN_REVIEW
    code, out, _ = run_main(capsys, "apply")
    assert code == 0 and "Nothing to apply" in out
    index.write_text("changed\n", encoding="utf-8")
    code, _, err = run_main(capsys, "export")
    assert code == 1 and err.startswith("error: ") and "git tasks apply" in err


def test_bare_repository_needs_a_directory(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    store = TaskStore.open(bare)
    store.init()
    with pytest.raises(ExportError, match="bare repository"):
        store.export()
    done = store.export(tmp_path / "copy")
    assert (done.directory / "process/tasks.md").read_text(encoding="utf-8") == store.index_text()


def test_the_rollback_in_the_docs_loses_nothing(store: TaskStore, repo: Path) -> None:
    """docs/rollback.md, steps 3 and 6: the working tree gets the ref's files byte for byte."""
    store.create("First", description="one")
    store.create("Second")
    store.set_status(2, Status.BLOCKED)
    git(repo, "bundle", "create", "-q", "tasks-backup.bundle", "refs/tasks/main")
    store.export(repo)
    (repo / RECORD).unlink()
    git(repo, "add", "process/")
    git(repo, "commit", "-q", "-m", "tasks: back in the working tree")
    assert git(repo, "diff", "refs/tasks/main", "HEAD", "--", "process/") == ""
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    git(repo, "update-ref", "-d", "refs/tasks/main")
    assert store.head() is None
    # The bundle brings the ref back as it was.
    git(repo, "fetch", "-q", "tasks-backup.bundle", "refs/tasks/main:refs/tasks/main")
    assert store.get(2).status is Status.BLOCKED
