"""``git tasks migrate``: in-tree task files of the old backend imported into the tasks ref.

Every repository here is built with real ``git commit``s of files in the shapes the old
backend left (headings and prose, fenced examples, description bullets, ``tasks/NNN-…`` and
``process/tasks/…`` links, ``md#`` ids, CRLF, no final newline, duplicate ids).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import git, run_main
from hypothesis import given
from hypothesis import strategies as st

from tasksync import MigrationError, Status, TaskStore
from tasksync.blocks import TaskBlocks
from tasksync.history import parse_trailers
from tasksync.markdown import Index

REF = "refs/tasks/main"

# A tasks.md as the old backend's users kept it: heading, prose, a fenced example holding a
# task-shaped line, description bullets, both link styles, text after a link, a comment.
INDEX = (
    "# Tasks\n"
    "\n"
    "Tasks of the project. Each line looks like this:\n"
    "\n"
    "```\n"
    "- [ ] Example task [#999](process/tasks/999-example-task.md)\n"
    "```\n"
    "\n"
    "- [x] Add BLOCKED Status Support [#155](process/tasks/155-add-blocked-status-support.md)\n"
    "  - Statuses come from the checkbox\n"
    "  - See the spec\n"
    "- [+] Add Google Tasks Backend Support [#154](tasks/154-add-google-tasks-backend-support.md)\n"
    "\n"
    "- [ ] Enhance Task Operations Synchronization Across Workspaces "
    "[#157](process/tasks/157-enhance-task-operations-synchronization-across-workspaces.md)"
    " (after #155)\n"
    "\n"
    "<!-- finished or dropped -->\n"
    "- [!] Old idea [#003](tasks/003-old-idea.md)\n"
)
SPECS = {
    "process/tasks/155-add-blocked-status-support.md": (
        "# Task #155: Add BLOCKED Status Support\n\n## Context\n\nA status for waiting.\n"
    ),
    "process/tasks/154-add-google-tasks-backend-support.md": (
        "# Task: Add Google Tasks Backend Support\n\n## Context\n\nSync with Google Tasks.\n"
    ),
    "process/tasks/157-enhance-task-operations-synchronization-across-workspaces.md": (
        "# Enhance Task Operations Synchronization Across Workspaces\n\n## Status\n\nOpen\n"
    ),
    "process/tasks/003-old-idea.md": "# Task #003: Old idea\n",
}
# Later files: md# ids, CRLF line endings, no final newline, two tasks with one id.
CRLF_INDEX = (
    "# Tasks\r\n"
    "\r\n"
    "- [ ] First [md#001](process/tasks/001-first.md)\r\n"
    "- [-] Second [md#002](process/tasks/002-second.md)\r\n"
    "  - reviewed by two people\r\n"
    "- [ ] Second again [md#002](process/tasks/002-second-again.md)\r\n"
    "- [~] Blocked one [md#003](process/tasks/003-blocked-one.md)"
)
CRLF_SPECS = {
    "process/tasks/001-first.md": "# Task md#001: First\r\n\r\n## Context\r\n\r\nOne\r\n",
    "process/tasks/002-second.md": "# Task md#002: Second\r\n",
    "process/tasks/002-second-again.md": "# Task md#002: Second again\r\n",
    "process/tasks/003-blocked-one.md": "# Task md#003: Blocked one",
}


def write(repo: Path, files: Mapping[str, str | bytes]) -> None:
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_bytes(text.encode("utf-8"))


def commit(repo: Path, message: str, author: str = "Alice", date: str = "@1546300800 +0000") -> str:
    """Commit everything in the worktree as ``author`` at ``date``."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.com",
        "GIT_AUTHOR_DATE": date,
    }
    for args in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return git(repo, "rev-parse", "HEAD").strip()


def old_backend(repo: Path, index: str = INDEX, specs: dict[str, str] | None = None) -> str:
    write(repo, {"process/tasks.md": index, **(SPECS if specs is None else specs)})
    return commit(repo, "Add the tasks")


def on_ref(repo: Path, path: str = "process/tasks.md") -> bytes:
    done = subprocess.run(
        ["git", "show", f"{REF}:{path}"], cwd=repo, capture_output=True, check=True
    )
    return done.stdout


def ref_paths(repo: Path) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", REF).split()


def tip(repo: Path) -> str | None:
    found = git(repo, "rev-parse", "-q", "--verify", REF, check=False).strip()
    return found or None


def loose_objects(repo: Path) -> set[str]:
    objects = repo / ".git" / "objects"
    return {str(p.relative_to(objects)) for p in objects.glob("??/*")}


def message_of(repo: Path, commit_id: str) -> tuple[str, dict[str, list[str]]]:
    subject, trailers = parse_trailers(git(repo, "log", "-1", "--format=%B", commit_id))
    out: dict[str, list[str]] = {}
    for key, value in trailers:
        out.setdefault(key, []).append(value)
    return subject, out


# -- reading task blocks ------------------------------------------------------------------------

LINES = [
    "- [ ] One [#001](process/tasks/001-one.md)",
    "- [x] Two [md#002](tasks/002-two.md) trailing text",
    "- [?] Unknown box [#003](process/tasks/003-x.md)",
    "- [ ] One again [#001](process/tasks/001-again.md)",
    "- [ ] Not a task, no link",
    "  - a description bullet",
    "\t- a tab bullet",
    "  -",
    "  not a bullet",
    "```",
    "  ```python",
    "",
    "   ",
    "# Heading",
    "prose with [#004](x) in it",
    "- [+] Title with [#9](a) inside [#005](process/tasks/005-b.md)",
]


@given(
    st.lists(st.sampled_from(LINES), max_size=30),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_blocks_are_read_as_the_index_reads_them(
    lines: list[str], eol: str, final_newline: bool
) -> None:
    text = eol.join(lines) + (eol if final_newline and lines else "")
    index = Index.parse(text)
    expected: dict[int, list[str]] = {}
    for task in index.tasks:
        block = "".join(index.lines[task.line : task.end])
        expected.setdefault(task.id.number, []).append(block)
    reader = TaskBlocks()
    assert reader.blocks(text) == expected
    assert reader.blocks(text) == expected  # and again, with every line known
    for number, blocks in expected.items():
        task = next(t for t in index.tasks if t.id.number == number)
        assert reader.head(blocks[0]) == (task.id, task.spec_path)


# -- the first import ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "specs"), [(INDEX, SPECS), (CRLF_INDEX, CRLF_SPECS)], ids=["lf", "crlf-md-dups"]
)
def test_first_migrate_puts_the_files_on_the_ref_byte_for_byte(
    repo: Path, index: str, specs: dict[str, str]
) -> None:
    head = old_backend(repo, index, specs)
    store = TaskStore.open(repo)
    done = store.migrate()
    assert done.outcome == "created"
    assert done.commit == tip(repo) == store.head()
    assert on_ref(repo) == (repo / "process/tasks.md").read_bytes() == index.encode()
    for path, text in specs.items():
        assert on_ref(repo, path) == text.encode()
    assert sorted(ref_paths(repo)) == sorted(["process/tasks.md", *specs])
    # One commit, of the whole file, naming HEAD as its source and written as HEAD was: its
    # author and committer, dates included, and nothing of the workspace importing it.
    assert len(done.steps) == 1
    assert git(repo, "rev-list", "--count", REF).strip() == "1"
    assert done.commit is not None
    subject, trailers = message_of(repo, done.commit)
    assert subject.startswith(f"tasks: imported {head[:12]} Add the tasks")
    assert trailers["Tasksync-Operation"] == ["import"]
    assert trailers["Tasksync-Source"] == [head]
    assert "Tasksync-Workspace" not in trailers
    people = "%an <%ae> %ad|%cn <%ce> %cd"
    assert git(repo, "log", "-1", f"--format={people}", REF) == git(
        repo, "log", "-1", f"--format={people}", head
    )
    tasks = store.list(include_done=True)
    assert done.tasks == len(tasks) == 4  # the fenced example is no task
    ids = sorted({str(t.id) for t in tasks})
    assert trailers["Tasksync-Task"] == ids  # every task is new; duplicates named once


def test_the_lf_shapes_read_back_as_tasks(repo: Path) -> None:
    old_backend(repo)
    store = TaskStore.open(repo)
    store.migrate()
    old = store.get(154)
    assert old.spec_path == "process/tasks/154-add-google-tasks-backend-support.md"
    assert old.status is Status.IN_PROGRESS
    assert store.get(155).description == "A status for waiting."
    assert store.get(3).status is Status.CLOSED
    assert store.check() == []


def test_a_store_with_duplicate_ids_is_reported_not_rewritten(repo: Path) -> None:
    old_backend(repo, CRLF_INDEX, CRLF_SPECS)
    done = TaskStore.open(repo).migrate()
    assert on_ref(repo) == CRLF_INDEX.encode()
    assert any("duplicate task id: md#002" in problem for problem in done.problems)


def test_uncommitted_edits_and_new_specs_are_imported(repo: Path) -> None:
    head = old_backend(repo)
    edited = (
        INDEX.replace("- [ ] Enhance", "- [+] Enhance") + "- [ ] New [#158](tasks/158-new.md)\n"
    )
    write(repo, {"process/tasks.md": edited, "process/tasks/158-new.md": "# Task #158: New\n"})
    done = TaskStore.open(repo).migrate()
    assert on_ref(repo) == edited.encode()
    assert on_ref(repo, "process/tasks/158-new.md") == b"# Task #158: New\n"
    # HEAD's files first (the same commit in every clone that imports HEAD), then the edits.
    assert [s.source for s in done.steps] == [head, "worktree"]
    assert git(repo, "rev-parse", f"{REF}^").strip() == done.steps[0].commit
    subject, trailers = message_of(repo, done.steps[1].commit or "")
    assert subject == "tasks: imported working-tree edits"
    assert trailers["Tasksync-Source"] == ["worktree"]
    assert trailers["Tasksync-Workspace"] == ["repo"]
    assert trailers["Tasksync-Task"] == ["#157", "#158"]
    assert " rm -r -q -f " in done.commands[0]  # the edits are uncommitted


def test_other_files_under_the_spec_directory_are_left_out(repo: Path) -> None:
    old_backend(repo)
    write(repo, {"process/tasks/diagram.png": b"\x89PNG\r\n", "process/notes.txt": "notes\n"})
    (repo / "process/tasks/003-old-idea.md").chmod(0o755)
    write(repo, {".gitignore": "*.draft.md\n", "process/tasks/kept.draft.md": "# Kept\n"})
    git(repo, "add", "-f", "process/tasks/kept.draft.md")
    commit(repo, "more files")
    write(repo, {"process/tasks/new.draft.md": "# Mine only\n"})  # untracked and ignored
    store = TaskStore.open(repo)
    done = store.migrate()
    assert done.left_out == ("process/tasks/diagram.png",)
    assert "process/tasks/diagram.png" not in ref_paths(repo)
    assert "process/notes.txt" not in ref_paths(repo)
    assert "process/tasks/new.draft.md" not in ref_paths(repo)
    assert on_ref(repo, "process/tasks/kept.draft.md") == b"# Kept\n"
    mode = git(repo, "ls-tree", REF, "process/tasks/003-old-idea.md").split()[0]
    assert mode == "100644"
    assert store.check() == []
    # The spec files by name: the picture and the ignored draft stay in the tree.
    assert "-- process/tasks.md process/tasks/003-old-idea.md" in done.commands[0]
    assert " process/tasks " not in done.commands[0]
    subprocess.run(["sh", "-c", done.commands[0]], cwd=repo, check=True)
    assert (repo / "process/tasks/new.draft.md").read_text() == "# Mine only\n"
    assert git(repo, "ls-files", "process").split() == [
        "process/notes.txt",
        "process/tasks/diagram.png",
    ]


def test_line_endings_are_stored_as_git_would_commit_them(repo: Path) -> None:
    git(repo, "config", "core.autocrlf", "true")
    old_backend(repo, INDEX.replace("\n", "\r\n"))
    assert b"\r\n" in (repo / "process/tasks.md").read_bytes()
    head_blob = git(repo, "rev-parse", "HEAD:process/tasks.md").strip()
    done = TaskStore.open(repo).migrate()
    assert git(repo, "rev-parse", f"{REF}:process/tasks.md").strip() == head_blob
    assert done.steps[0].source == git(repo, "rev-parse", "HEAD").strip()


# -- history -------------------------------------------------------------------------------------


def history(repo: Path) -> list[str]:
    """Four commits by three people, one of them not touching the task files."""
    first = {"process/tasks.md": INDEX, **SPECS}
    write(repo, first)
    ids = [commit(repo, "Add the tasks", "Alice", "@1546300800 +0100")]
    write(repo, {"README": "hello\n"})
    ids.append(commit(repo, "Add a readme", "Bob", "@1549000000 +0000"))
    spec = "process/tasks/155-add-blocked-status-support.md"
    write(repo, {spec: SPECS[spec] + "\n## Notes\n\nMore.\n"})
    ids.append(commit(repo, "Note on 155", "Carol", "@1551700000 +0530"))
    later = INDEX.replace("- [+] Add Google", "- [x] Add Google") + (
        "- [ ] Add md export [#158](process/tasks/158-add-md-export.md)\n"
    )
    write(repo, {"process/tasks.md": later, "process/tasks/158-add-md-export.md": "# Export\n"})
    ids.append(commit(repo, "Finish 154, add 158", "Alice", "@1554400000 -0700"))
    return ids


def test_history_is_replayed_one_commit_per_change_with_authors_and_dates(repo: Path) -> None:
    ids = history(repo)
    edited = (repo / "process/tasks.md").read_text().replace("- [ ] Enhance", "- [-] Enhance")
    write(repo, {"process/tasks.md": edited})
    store = TaskStore.open(repo)
    done = store.migrate(history=True)
    assert done.outcome == "created"
    lines = git(repo, "log", "--date=raw", "--format=%an|%ad|%cn|%s", REF).splitlines()
    assert lines == [
        "Test Author|1700000000 +0000|Test Committer|tasks: imported working-tree edits",
        f"Alice|1554400000 -0700|Test Committer|tasks: imported {ids[3][:12]} Finish 154, add 158",
        f"Carol|1551700000 +0530|Test Committer|tasks: imported {ids[2][:12]} Note on 155",
        f"Alice|1546300800 +0100|Test Committer|tasks: imported {ids[0][:12]} Add the tasks",
    ]
    imports = git(repo, "rev-list", REF).split()
    assert [message_of(repo, c)[1]["Tasksync-Source"] for c in imports] == [
        ["worktree"],
        [ids[3]],
        [ids[2]],
        [ids[0]],
    ]
    assert [message_of(repo, c)[1].get("Tasksync-Task") for c in imports[:3]] == [
        ["#157"],
        ["#154", "#158"],
        ["#155"],
    ]
    assert len(message_of(repo, imports[3])[1]["Tasksync-Task"]) == 4
    # Each imported state holds the source commit's very blobs and spec tree.
    for imported, source in zip(imports[1:], [ids[3], ids[2], ids[0]], strict=True):
        for path in ("process/tasks.md", "process/tasks"):
            assert git(repo, "rev-parse", f"{imported}:{path}") == git(
                repo, "rev-parse", f"{source}:{path}"
            )
    assert on_ref(repo) == edited.encode()
    entries = store.history()
    assert [e.operation for e in entries] == ["import"] * 4
    assert [e.task_ids for e in store.history(155)] == [("#155",), ("#003", "#154", "#155", "#157")]
    assert [s.source for s in done.steps] == [ids[0], ids[2], ids[3], "worktree"]


def test_a_second_run_changes_nothing(repo: Path) -> None:
    history(repo)
    store = TaskStore.open(repo)
    first = store.migrate(history=True)
    before = tip(repo)
    for again in (store.migrate(history=True), store.migrate(), TaskStore.open(repo).migrate()):
        assert again.outcome == "up-to-date"
        assert again.steps == ()
        assert again.commit is None
        assert tip(repo) == before == first.commit


def test_history_continues_after_the_last_imported_commit(repo: Path) -> None:
    history(repo)
    store = TaskStore.open(repo)
    store.migrate(history=True)
    before = tip(repo)
    text = (repo / "process/tasks.md").read_text().replace("- [ ] Add md", "- [+] Add md")
    write(repo, {"process/tasks.md": text})
    later = commit(repo, "Start 158", "Dave", "@1560000000 +0200")
    done = store.migrate(history=True)
    assert done.outcome == "fast-forward"
    assert [s.source for s in done.steps] == [later]
    assert git(repo, "rev-parse", f"{REF}^").strip() == before
    assert git(repo, "log", "-1", "--format=%an %ad", "--date=raw", REF).strip() == (
        "Dave 1560000000 +0200"
    )
    assert done.steps[0].tasks == ("#158",)


def test_committing_imported_edits_imports_nothing(repo: Path) -> None:
    history(repo)
    write(repo, {"process/tasks/158-add-md-export.md": "# Export\n\nDetails.\n"})
    store = TaskStore.open(repo)
    assert store.migrate(history=True).steps[-1].source == "worktree"
    before = tip(repo)
    commit(repo, "Details of 158", "Alice")
    done = store.migrate(history=True)
    assert (done.outcome, done.steps, tip(repo)) == ("up-to-date", (), before)


def test_a_plain_migrate_then_history_imports_only_later_commits(repo: Path) -> None:
    history(repo)
    store = TaskStore.open(repo)
    store.migrate()
    assert store.migrate(history=True).outcome == "up-to-date"


def test_progress_is_reported_up_to_the_total(repo: Path) -> None:
    history(repo)
    seen: list[tuple[int, int]] = []
    TaskStore.open(repo).migrate(history=True, progress=lambda n, total: seen.append((n, total)))
    assert seen[0] == (0, 6)  # the fixture's first commit, four more and the working tree
    assert seen[-1] == (6, 6)
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)


# -- later runs merge with the ref -----------------------------------------------------------------


def test_an_in_tree_edit_after_migrate_is_merged_with_work_on_the_ref(
    repo: Path, worktree: Path
) -> None:
    old_backend(repo, CRLF_INDEX, CRLF_SPECS)
    store = TaskStore.open(repo)
    store.migrate()
    # Another workspace works on the ref meanwhile.
    TaskStore.open(worktree).set_status("md#003", Status.DONE)
    # Someone still edits the in-tree file, then migrates again.
    edited = CRLF_INDEX.replace("- [ ] First", "- [+] First")
    write(repo, {"process/tasks.md": edited})
    done = store.migrate()
    assert done.outcome == "merged"
    assert [s.tasks for s in done.steps] == [("md#001",)]
    assert done.conflicts == ()
    text = store.index_text()
    assert "- [+] First [md#001]" in text
    assert "- [~] Blocked" not in text and "- [x] Blocked one [md#003]" in text
    assert text.count("[md#002]") == 2  # the duplicates are left as they were
    merge = git(repo, "log", "-1", "--format=%P", REF).split()
    assert len(merge) == 2 and merge[1] == done.steps[0].commit
    assert "import" in [e.operation for e in store.history()[:3]]
    before = tip(repo)
    assert store.migrate().outcome == "up-to-date"
    assert tip(repo) == before


def test_in_tree_ids_win_over_tasks_created_on_the_ref(repo: Path) -> None:
    old_backend(repo)
    store = TaskStore.open(repo)
    store.init()
    created = store.create("Made on the ref first")
    assert str(created.id) == "#001"
    write(
        repo, {"process/tasks.md": INDEX + "- [ ] In-tree one [#001](tasks/001-in-tree-one.md)\n"}
    )
    done = store.migrate()
    assert done.outcome == "merged"
    assert store.get(1).title == "In-tree one"
    assert [(str(r.old), r.title) for r in done.renumbered] == [("#001", "Made on the ref first")]
    assert store.get(done.renumbered[0].new).title == "Made on the ref first"


# -- dry runs -------------------------------------------------------------------------------------


def test_a_dry_run_writes_nothing(repo: Path) -> None:
    ids = history(repo)
    store = TaskStore.open(repo)
    objects = loose_objects(repo)
    plan = store.migrate(history=True, dry_run=True)
    assert tip(repo) is None
    assert loose_objects(repo) == objects
    assert plan.dry_run and plan.outcome == "created" and plan.commit is None
    assert [s.source for s in plan.steps] == [ids[0], ids[2], ids[3]]
    assert all(s.commit is None for s in plan.steps)
    assert plan.tasks == 5
    done = store.migrate(history=True)
    assert [s[:6] for s in plan.steps] == [s[:6] for s in done.steps]


def test_a_dry_run_previews_the_merge(repo: Path, worktree: Path) -> None:
    old_backend(repo)
    store = TaskStore.open(repo)
    store.migrate()
    TaskStore.open(worktree).set_status(157, Status.BLOCKED)
    write(repo, {"process/tasks.md": INDEX.replace("- [ ] Enhance", "- [+] Enhance")})
    before = tip(repo)
    plan = store.migrate(dry_run=True)
    assert plan.outcome == "merged"
    assert tip(repo) == before
    assert [(c.task and str(c.task), c.field) for c in plan.conflicts] == [("#157", "status")]
    done = store.migrate()
    assert done.conflicts == plan.conflicts


# -- refusals -------------------------------------------------------------------------------------


def test_no_in_tree_file_is_refused(repo: Path) -> None:
    old_backend(repo)
    store = TaskStore.open(repo)
    store.migrate()
    before = tip(repo)
    git(repo, "rm", "-r", "-q", "process")
    with pytest.raises(MigrationError, match=r"process/tasks\.md: not in the working tree"):
        store.migrate()
    with pytest.raises(MigrationError):
        store.migrate(history=True)
    assert tip(repo) == before
    assert len(store.list(include_done=True)) == 4


def test_a_bare_repository_needs_history(repo: Path, tmp_path: Path) -> None:
    ids = history(repo)
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    store = TaskStore.open(bare)
    with pytest.raises(MigrationError, match="bare repository"):
        store.migrate()
    done = store.migrate(history=True)
    assert [s.source for s in done.steps] == [ids[0], ids[2], ids[3]]
    assert done.commands == ("git tasks hooks install", "git tasks sync")
    assert store.migrate(history=True).outcome == "up-to-date"


def latin1_history(repo: Path) -> tuple[str, str]:
    old_backend(repo)
    spec = "process/tasks/003-old-idea.md"
    write(repo, {spec: "# Task #003: Old id\xe9e\n".encode("latin-1")})
    bad = commit(repo, "Latin-1 spec", "Bob")
    write(repo, {spec: "# Task #003: Old idée\n"})
    return bad, commit(repo, "Fix the encoding", "Bob")


def test_a_past_file_that_is_not_utf8_is_refused_or_skipped(repo: Path) -> None:
    bad, fixed = latin1_history(repo)
    store = TaskStore.open(repo)
    with pytest.raises(MigrationError) as caught:
        store.migrate(history=True)
    assert caught.value.commit == bad
    assert caught.value.path == "process/tasks/003-old-idea.md"
    assert "--skip-non-utf8" in str(caught.value)
    assert tip(repo) is None
    done = store.migrate(history=True, skip_non_utf8=True)
    assert [(s.source, s.path) for s in done.skipped] == [(bad, "process/tasks/003-old-idea.md")]
    assert done.steps[-1].source == fixed
    assert on_ref(repo, "process/tasks/003-old-idea.md").decode() == "# Task #003: Old idée\n"


def test_a_present_file_that_is_not_utf8_is_always_refused(repo: Path) -> None:
    latin1_history(repo)
    latin1 = INDEX + "- [ ] Caf\xe9 [#200](tasks/200-cafe.md)\n"
    write(repo, {"process/tasks.md": latin1.encode("latin-1")})
    store = TaskStore.open(repo)
    for history_too in (False, True):
        with pytest.raises(MigrationError, match="working tree") as caught:
            store.migrate(history=history_too, skip_non_utf8=True)
        assert caught.value.commit is None and caught.value.path == "process/tasks.md"
    assert tip(repo) is None


# -- session clones ------------------------------------------------------------------------------


def test_a_session_clone_imports_into_its_hub(repo: Path, tmp_path: Path) -> None:
    old_backend(repo)
    clone = tmp_path / "session"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    write(clone, {"process/tasks/158-new.md": "# Task #158: New\n"})
    write(clone, {"process/tasks.md": INDEX + "- [ ] New [#158](tasks/158-new.md)\n"})
    commit(clone, "New task in the session", "Erin")
    done = TaskStore.open(clone).migrate(history=True)
    assert done.outcome == "created"
    assert tip(clone) is None  # the clone keeps no tasks ref of its own
    assert on_ref(repo, "process/tasks/158-new.md") == b"# Task #158: New\n"
    git(repo, "fsck", "--connectivity-only")


# -- the command line ----------------------------------------------------------------------------


def test_cli_prints_the_commands_that_finish_the_move(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_backend(repo)
    code, out, err = run_main(capsys, "-C", str(repo), "migrate")
    assert code == 0, err
    assert "refs/tasks/main: created with the imported history" in out
    assert "4 tasks in the in-tree file" in out
    removal = next(line.strip() for line in out.splitlines() if " rm " in line)
    assert removal == (
        f"git -C {repo} rm -r -q --ignore-unmatch -- process/tasks.md process/tasks && "
        f'git -C {repo} commit -q -m "Move the tasks to the tasks ref (git tasks migrate)" '
        "-- process/tasks.md process/tasks"
    )
    assert "git tasks hooks install" in out and "git tasks sync" in out
    # The printed command works as printed, and leaves the tasks on the ref alone.
    subprocess.run(["sh", "-c", removal], cwd=repo, check=True)
    assert not (repo / "process").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert on_ref(repo) == INDEX.encode()
    code, _, err = run_main(capsys, "-C", str(repo), "migrate")
    assert code == 1 and "the move is done" in err and "nothing was imported" in err


def test_cli_json_and_dry_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = history(repo)
    code, out, _ = run_main(capsys, "-C", str(repo), "migrate", "--history", "--dry-run")
    assert code == 0
    assert f"Would import 3 states of process/tasks.md and its specs: {ids[0][:12]}" in out
    assert "would be created" in out and "Dry run: nothing was written." in out
    assert " rm " not in out
    code, out, _ = run_main(capsys, "-C", str(repo), "migrate", "--history", "--json")
    data = json.loads(out)
    assert data["outcome"] == "created" and data["commit"] == tip(repo)
    assert [s["source"] for s in data["steps"]] == [ids[0], ids[2], ids[3]]
    assert data["steps"][1]["author"] == "Carol <carol@example.com>"
    assert data["steps"][1]["tasks"] == ["#155"]
    assert data["commands"][1:] == ["git tasks hooks install", "git tasks sync"]
    code, out, _ = run_main(capsys, "-C", str(repo), "migrate", "--history")
    assert "up to date with the in-tree files" in out


def test_cli_warns_about_skipped_states(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, _ = latin1_history(repo)
    code, _, err = run_main(capsys, "-C", str(repo), "migrate", "--history")
    assert code == 1
    assert f"process/tasks/003-old-idea.md at {bad[:12]}: is not valid UTF-8" in err
    code, _, err = run_main(capsys, "-C", str(repo), "migrate", "--history", "--skip-non-utf8")
    assert code == 0
    assert f"warning: left out {bad[:12]}" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_long_imports_show_a_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasksync import cli_migrate

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    short = cli_migrate._Bar()
    short(0, cli_migrate.PROGRESS_FROM - 1)
    short.close()
    assert terminal.getvalue() == ""
    bar = cli_migrate._Bar()
    for done in range(cli_migrate.PROGRESS_FROM + 1):
        bar(done, cli_migrate.PROGRESS_FROM)
    bar.close()
    assert "Importing" in terminal.getvalue()
    assert f"{cli_migrate.PROGRESS_FROM}/{cli_migrate.PROGRESS_FROM}" in terminal.getvalue()
