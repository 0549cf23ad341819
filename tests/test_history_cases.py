"""History, undo, export and apply: the hard cases, against real repositories.

Each test states a behaviour the documentation or the module docstrings promise: races between
exports and applies, interrupted runs, renumbered tasks, reflogs, and the exact commands that
error messages and docs/rollback.md give.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import git, run_main, tasks_md

import tasksync.export as export_module
from tasksync import Status, TaskStore
from tasksync.errors import ExportError, UndoRefused
from tasksync.export import RECORD

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _copy(path: Path) -> Path:
    return path / ".tasks"


def _tip(repo: Path) -> str:
    return git(repo, "rev-parse", "refs/tasks/main").strip()


def _titles(store: TaskStore) -> dict[int, str]:
    return {t.id.number: t.title for t in store.list(include_done=True)}


def _tree(repo: Path) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", "refs/tasks/main").split()


def _clone_with_own_ref(repo: Path, path: Path) -> TaskStore:
    """A clone of ``repo`` that keeps its own tasks ref (no hub), filled by ``sync``."""
    git(repo.parent, "clone", "-q", str(repo), str(path))
    git(path, "config", "tasks.hub", "none")
    other = TaskStore.open(path)
    assert other.hub is None
    other.sync()
    return other


def _add_hand_made_task(copy: Path, number: str = "002") -> None:
    index = copy / "process/tasks.md"
    line = f"- [ ] Hand made [#{number}](process/tasks/{number}-hand-made.md)\n"
    index.write_text(index.read_text(encoding="utf-8") + line, encoding="utf-8")
    (copy / f"process/tasks/{number}-hand-made.md").write_text(
        f"# Task #{number}: Hand made\n", encoding="utf-8"
    )


# -- undo and reading the past ----------------------------------------------------------------


def test_cli_undo_json_names_the_commit_it_undid(
    store: TaskStore,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.create("First")
    store.set_status(1, Status.DONE)
    target = _tip(repo)
    monkeypatch.chdir(repo)
    code, out, _ = run_main(capsys, "undo", "@{0}", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["commit"] == _tip(repo)
    assert result["undone"] == target


def test_reflog_entries_work_in_a_clone_whose_ref_came_from_sync(
    store: TaskStore, repo: Path, tmp_path: Path
) -> None:
    store.create("First")
    other = _clone_with_own_ref(repo, tmp_path / "other")
    other.set_status(1, Status.DONE)
    assert other.get(1, at="@{1}").status is Status.TODO


def test_undoing_a_create_keeps_its_id_from_being_given_again(store: TaskStore) -> None:
    store.create("One")
    store.create("Two")
    store.undo("@{0}")
    assert _titles(store) == {1: "One"}
    assert store.create("Three").id.number == 3


def test_undo_refusal_gives_the_command_that_gets_out(store: TaskStore, repo: Path) -> None:
    store.create("First")
    store.set_status(1, Status.IN_PROGRESS)
    target = _tip(repo)
    store.set_status(1, Status.DONE)
    blocker = _tip(repo)
    with pytest.raises(UndoRefused) as raised:
        store.undo(target)
    assert f"git tasks undo {blocker[:10]}" in str(raised.value)


def test_cli_spec_json_at_reads_one_state(
    store: TaskStore,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.create("First", description="old words")
    state = _tip(repo)
    other = TaskStore.open(repo)
    real_get = TaskStore.get

    def get_then_another_write(self: TaskStore, task: object, **kw: object) -> object:
        found = real_get(self, task, **kw)  # type: ignore[arg-type]
        other.update(1, description="new words")  # lands between the two reads
        return found

    monkeypatch.setattr(TaskStore, "get", get_then_another_write)
    monkeypatch.chdir(repo)
    code, out, _ = run_main(capsys, "spec", "1", "--at", "@{0}", "--json")
    assert code == 0
    assert json.loads(out)["content"] == store.spec(1, at=state)


# -- merge_edits ------------------------------------------------------------------------------


def test_merge_edits_accepts_the_revisions_state_accepts(store: TaskStore, repo: Path) -> None:
    store.create("One")
    base = _tip(repo)
    store.create("Two")
    edited = store.index_text(at=base).replace("- [ ] One", "- [x] One")
    store.merge_edits(base[:10], {"process/tasks.md": edited}, summary="short id")
    assert store.get(1).status is Status.DONE
    store.set_status(1, Status.TODO)
    store.merge_edits(
        "@{1}",
        {"process/tasks.md": tasks_md(repo).replace("[ ] One", "[+] One")},
        summary="reflog entry",
    )
    assert store.get(1).status is Status.IN_PROGRESS


# -- apply: what lands on the ref ---------------------------------------------------------------


def test_apply_again_after_an_interrupted_refresh_adds_nothing_twice(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("One")
    store.export()
    _add_hand_made_task(_copy(repo))

    def killed(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt  # the process dies once the merge has landed

    with monkeypatch.context() as patched:
        patched.setattr(export_module, "_write", killed)
        with pytest.raises(KeyboardInterrupt):
            store.apply()
    assert _titles(store) == {1: "One", 2: "Hand made"}
    store.apply()  # "applies the same edits again next time, which merges to no change"
    assert _titles(store) == {1: "One", 2: "Hand made"}


def test_newer_edits_after_a_renumbering_apply_keep_the_task(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("One")
    store.export()
    copy = _copy(repo)
    index = copy / "process/tasks.md"
    _add_hand_made_task(copy)
    store.create("Elsewhere")  # takes #002 first: the hand-made task becomes #003
    real = TaskStore.merge_edits

    def edited_meanwhile(self: TaskStore, *args: object, **kwargs: object) -> object:
        merged = real(self, *args, **kwargs)  # type: ignore[arg-type]
        index.write_text(
            index.read_text(encoding="utf-8").replace("- [ ] One", "- [x] One"), "utf-8"
        )
        return merged

    with monkeypatch.context() as patched:
        patched.setattr(TaskStore, "merge_edits", edited_meanwhile)
        first = store.apply()
    assert first.refreshed is None  # the copy changed during the apply: left alone
    assert _titles(store) == {1: "One", 2: "Elsewhere", 3: "Hand made"}
    store.apply()  # only the newer edit: #001 done
    assert _titles(store) == {1: "One", 2: "Elsewhere", 3: "Hand made"}
    assert store.get(1).status is Status.DONE
    assert store.check() == []


def test_a_task_removed_in_the_copy_keeps_its_id_taken(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.create("Two")
    store.export()
    copy = _copy(repo)
    index = copy / "process/tasks.md"
    kept = [
        line for line in index.read_text(encoding="utf-8").splitlines(True) if "Two" not in line
    ]
    index.write_text("".join(kept), encoding="utf-8")
    (copy / "process/tasks/002-two.md").unlink()
    store.apply()
    assert _titles(store) == {1: "One"}
    assert store.create("Three").id.number == 3  # as after `git tasks delete` or `edit`


def test_a_renumbering_by_apply_is_recorded(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.export()
    _add_hand_made_task(_copy(repo))
    store.create("Made elsewhere")
    done = store.apply()
    assert done.merged is not None and len(done.merged.renumbered) == 1
    assert [(r.old.number, r.new.number) for r in store.renumbered(3)] == [(2, 3)]


def test_log_of_a_task_lists_an_applied_edit_of_it(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.create("Two")
    store.export()
    index = _copy(repo) / "process/tasks.md"
    index.write_text(
        index.read_text(encoding="utf-8").replace("- [ ] One", "- [x] One"), encoding="utf-8"
    )
    store.apply()
    assert [e.operation for e in store.history(1)] != ["create"]
    assert any(e.operation in ("edit", "merge") for e in store.history(1))


def test_a_dot_named_spec_on_the_ref_survives_export_and_apply(repo: Path, tmp_path: Path) -> None:
    (repo / "process/tasks").mkdir(parents=True)
    (repo / "process/tasks.md").write_text(
        "# Tasks\n\n- [ ] One [#001](process/tasks/001-one.md)\n", encoding="utf-8"
    )
    (repo / "process/tasks/001-one.md").write_text("# Task #001: One\n", encoding="utf-8")
    (repo / "process/tasks/.template.md").write_text("# Task #NNN: Title\n", encoding="utf-8")
    git(repo, "add", "process")
    git(repo, "commit", "-q", "-m", "tasks in the tree")
    store = TaskStore.open(repo)
    store.migrate()
    assert "process/tasks/.template.md" in _tree(repo)
    copy = tmp_path / "copy"
    store.export(copy)
    index = copy / "process/tasks.md"
    index.write_text(index.read_text(encoding="utf-8").replace("[ ]", "[x]"), encoding="utf-8")
    done = store.apply(copy)
    assert done.edited == ("process/tasks.md",)
    assert "process/tasks/.template.md" in _tree(repo)
    store.export(copy)  # nothing left to apply


def test_apply_names_a_copy_file_whose_name_is_not_utf8(store: TaskStore, repo: Path) -> None:
    store.create("One")
    store.export()
    name = os.fsdecode(b"caf\xe9.md")  # a Latin-1 name, as an old editor saves it
    (_copy(repo) / "process/tasks" / name).write_bytes(b"# notes\n")
    head = store.head()
    with pytest.raises(ExportError, match="caf"):
        store.apply()
    assert store.head() == head


# -- the copy: crashes and races --------------------------------------------------------------


def test_two_interrupted_exports_leave_no_false_edits(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("One")
    store.create("Two")
    store.export()
    real = export_module._replace

    def dies_at(name: str) -> object:
        def replace(path: Path, data: bytes) -> None:
            if path.name == name:
                raise OSError(28, "No space left on device")
            real(path, data)

        return replace

    store.set_status(1, Status.DONE)
    store.update(1, description="more")
    with monkeypatch.context() as patched:  # dies after tasks.md, before 001-one.md
        patched.setattr(export_module, "_replace", dies_at("001-one.md"))
        with pytest.raises(ExportError):
            store.export()
    store.set_status(2, Status.DONE)
    with monkeypatch.context() as patched:  # dies before tasks.md
        patched.setattr(export_module, "_replace", dies_at("tasks.md"))
        with pytest.raises(ExportError):
            store.export()
    # Nobody edited the copy: "an interrupted export never makes stale files look like edits".
    assert store.apply().merged is None
    store.export()
    assert (_copy(repo) / "process/tasks.md").read_text(encoding="utf-8") == tasks_md(repo)


def test_an_export_racing_an_apply_never_reverts_other_changes(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("One", description="one")
    store.create("Two", description="two")
    store.export()
    index = _copy(repo) / "process/tasks.md"
    index.write_text(
        index.read_text(encoding="utf-8").replace("- [ ] One", "- [+] One"), encoding="utf-8"
    )
    other = TaskStore.open(repo)
    other.create("Three")  # the tip moves, so apply's refresh rewrites tasks.md
    real = export_module._replace
    fired: list[bool] = []

    def replace(path: Path, data: bytes) -> None:
        real(path, data)
        if path.name == "tasks.md" and not fired:
            fired.append(True)
            # Another workspace writes, and `git tasks watch --exec "git tasks export"` runs.
            other.update(2, description="two, edited elsewhere")
            monkeypatch.setattr(export_module, "_replace", real)
            other.export()
            monkeypatch.setattr(export_module, "_replace", replace)

    monkeypatch.setattr(export_module, "_replace", replace)
    with pytest.raises(ExportError):
        store.apply()  # its last rename fails: the export took its pending record
    monkeypatch.setattr(export_module, "_replace", real)
    assert fired
    assert store.get(2).description == "two, edited elsewhere"
    store.apply()
    assert store.get(2).description == "two, edited elsewhere"


def test_an_edit_made_while_apply_refreshes_is_kept(
    store: TaskStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("One")
    store.export()
    copy = _copy(repo)
    index = copy / "process/tasks.md"
    index.write_text(index.read_text(encoding="utf-8").replace("[ ]", "[+]"), encoding="utf-8")
    spec = copy / "process/tasks/001-one.md"
    other = TaskStore.open(repo)
    other.update(1, description="from elsewhere")  # the refresh rewrites the spec
    real = TaskStore.files
    mine = "# Task #001: One\n\n## Context\n\nmy newer words\n"

    def files(self: TaskStore, **kwargs: object) -> dict[str, str]:
        spec.write_text(mine, encoding="utf-8")  # the user saves once more, just now
        return real(self, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(TaskStore, "files", files)
        store.apply()
    assert spec.read_text(encoding="utf-8") == mine  # left alone, for the next apply


# -- error messages -----------------------------------------------------------------------------


def test_apply_in_a_bare_repository_names_its_own_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    TaskStore.open(bare).init()
    code, _, err = run_main(capsys, "-C", str(bare), "apply")
    assert code == 1
    assert "--from DIR" in err and "--to" not in err


def test_refusals_about_a_copy_elsewhere_name_that_copy(store: TaskStore, tmp_path: Path) -> None:
    store.create("One")
    copy = tmp_path / "copy"
    store.export(copy)
    index = copy / "process/tasks.md"
    index.write_text(index.read_text(encoding="utf-8") + "notes\n", encoding="utf-8")
    with pytest.raises(ExportError) as refused:
        store.export(copy)
    message = str(refused.value)
    assert f"git tasks apply --from {copy}" in message
    assert f"git tasks export --to {copy} --force" in message


def test_relative_to_dir_is_relative_to_the_c_path(
    store: TaskStore,
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.create("One")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, _ = run_main(capsys, "-C", str(repo), "export", "--to", "copy")
    assert code == 0
    assert (repo / "copy/process/tasks.md").is_file()  # as `git -C REPO tasks export`
    assert not (elsewhere / "copy").exists()


# -- docs ---------------------------------------------------------------------------------------


def test_log_docs_list_the_undo_operation() -> None:
    text = (DOCS / "usage.md").read_text(encoding="utf-8")
    log = text.split("\n### log\n", 1)[1].split("\n### ", 1)[0]
    values = log.split("Each JSON operation has", 1)[1]
    assert "`undo`" in values and "`edit`" in values


def test_rollback_step_three_works_for_a_store_without_spec_files(
    store: TaskStore, repo: Path
) -> None:
    store.export(repo)
    (repo / RECORD).unlink()
    git(repo, "add", "process/")
    git(repo, "commit", "-q", "-m", "tasks: back in the working tree")
    assert git(repo, "diff", "refs/tasks/main", "HEAD", "--", "process/") == ""


def test_rollback_is_done_from_a_repository_holding_the_ref() -> None:
    """A session clone has no refs/tasks/main of its own: the document says where to run it."""
    text = (DOCS / "rollback.md").read_text(encoding="utf-8")
    assert "not a session clone" in text and "git tasks hub" in text


def test_going_forward_again_after_the_rollback_keeps_each_task_once(
    store: TaskStore, repo: Path
) -> None:
    store.create("First")
    store.create("Second")
    git(repo, "bundle", "create", "-q", "tasks-backup.bundle", "refs/tasks/main")
    store.export(repo)
    (repo / RECORD).unlink()
    git(repo, "add", "process/")
    git(repo, "commit", "-q", "-m", "tasks: back in the working tree")
    git(repo, "update-ref", "-d", "refs/tasks/main")
    # Work goes on in the tree, then forward again as the document says.
    index = repo / "process/tasks.md"
    index.write_text(
        index.read_text(encoding="utf-8").replace("- [ ] First", "- [x] First"), "utf-8"
    )
    git(repo, "commit", "-q", "-am", "tick First")
    again = TaskStore.open(repo)
    again.migrate()  # onto a new ref, as the document says
    assert _titles(again) == {1: "First", 2: "Second"}
    assert again.get(1).status is Status.DONE
    # The old history stays readable beside it.
    git(repo, "fetch", "-q", "tasks-backup.bundle", "refs/tasks/main:refs/tasksync/archive")
    assert "created" in git(repo, "log", "--format=%s", "refs/tasksync/archive")
