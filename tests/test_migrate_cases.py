"""``git tasks migrate`` and ``TaskService`` in situations users of the old backend meet:
older worktrees and session clones, refs made by ``init``, several clones migrating, sparse
checkouts and submodules, and the printed commands run as printed.

Each case here was a defect once.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import git, run_main

from tasksync import MigrationError, NotInitialized, TaskService, TaskStore

REF = "refs/tasks/main"
INDEX = "process/tasks.md"
ONE = "- [ ] One [#001](process/tasks/001-one.md)\n"
TWO = "- [ ] Two [#002](process/tasks/002-two.md)\n"
THREE = "- [ ] Three [#003](process/tasks/003-three.md)\n"
SPECS = {
    "process/tasks/001-one.md": "# Task #001: One\n",
    "process/tasks/002-two.md": "# Task #002: Two\n",
    "process/tasks/003-three.md": "# Task #003: Three\n",
}


def write(repo: Path, files: Mapping[str, str]) -> None:
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))


def commit(repo: Path, message: str, **env: str) -> str:
    """Commit everything in the worktree (``env`` overrides the identity)."""
    full = {**os.environ, **env}
    for args in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", *args], cwd=repo, env=full, check=True, capture_output=True)
    return git(repo, "rev-parse", "HEAD").strip()


def specs(*names: str) -> dict[str, str]:
    return {path: text for path, text in SPECS.items() if any(n in path for n in names)}


def ids_on_ref(path: Path) -> list[str]:
    return [str(t.id) for t in TaskStore.open(path).list(include_done=True)]


def ref_paths(repo: Path) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", REF).splitlines()


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, capture_output=True, text=True, check=False
    )


# -- a re-run from an older state of the files -------------------------------------------------


def test_migrate_in_an_older_worktree_keeps_the_tasks_it_lacks(repo: Path) -> None:
    write(repo, {INDEX: ONE + TWO, **specs("001", "002")})
    commit(repo, "Add one and two")
    older = repo.parent / "older"
    git(repo, "worktree", "add", "-q", "-b", "older", str(older))
    write(repo, {INDEX: ONE + TWO + THREE, **specs("003")})
    commit(repo, "Add three")
    TaskStore.open(repo).migrate()
    assert ids_on_ref(repo) == ["#001", "#002", "#003"]

    TaskStore.open(older).migrate()  # nothing was edited there since the import

    assert ids_on_ref(repo) == ["#001", "#002", "#003"]
    assert "process/tasks/003-three.md" in ref_paths(repo)


def test_history_migrate_in_a_session_clone_behind_its_hub_keeps_tasks(
    repo: Path, tmp_path: Path
) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    commit(repo, "Add one")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    write(repo, {INDEX: ONE + TWO, **specs("002")})
    commit(repo, "Add two")
    TaskStore.open(repo).migrate(history=True)

    TaskStore.open(clone).migrate(history=True)

    assert ids_on_ref(repo) == ["#001", "#002"]
    assert "process/tasks/002-two.md" in ref_paths(repo)


def test_history_after_a_working_tree_import_never_goes_back(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    commit(repo, "Add one")
    write(repo, {INDEX: ONE + TWO, **specs("002")})
    commit(repo, "Add two")
    write(repo, {INDEX: ONE.replace("[ ]", "[+]") + TWO})
    store = TaskStore.open(repo)
    first = store.migrate().commit
    assert first is not None
    commit(repo, "Start one")

    store.migrate(history=True)

    later = git(repo, "rev-list", f"{first}..{REF}").split()
    for state in later:
        text = git(repo, "show", f"{state}:{INDEX}")
        assert "[#002]" in text and "- [+] One" in text, f"{state} went back to an older state"


def test_edits_in_a_worktree_behind_the_last_import_are_refused_until_merged(repo: Path) -> None:
    write(repo, {INDEX: ONE + TWO, **specs("001", "002")})
    commit(repo, "Add one and two")
    older = repo.parent / "older"
    git(repo, "worktree", "add", "-q", "-b", "older", str(older))
    write(repo, {INDEX: ONE + TWO + THREE, **specs("003")})
    newer = commit(repo, "Add three")
    TaskStore.open(repo).migrate()
    before = git(repo, "rev-parse", REF)
    write(older, {INDEX: ONE.replace("[ ]", "[x]") + TWO})  # an edit, or #003 deleted?

    with pytest.raises(MigrationError) as caught:
        TaskStore.open(older).migrate()

    assert f"does not contain {newer[:12]}" in str(caught.value)
    assert f"`git merge {newer[:12]}`" in str(caught.value)
    assert git(repo, "rev-parse", REF) == before
    # Done as it says, the edit is imported and the task the branch lacked stays.
    commit(older, "Finish one")
    git(older, "merge", "-q", "--no-edit", newer[:12])
    TaskStore.open(older).migrate()
    assert ids_on_ref(repo) == ["#001", "#002", "#003"]
    assert TaskStore.open(repo).get(1).status.name == "DONE"


def test_an_import_of_files_never_committed_is_no_base_for_later_edits(repo: Path) -> None:
    write(repo, {INDEX: ONE})
    store = TaskStore.open(repo)
    store.migrate()  # untracked files: a working-tree state, no commit to compare with later
    before = git(repo, "rev-parse", REF)
    assert store.migrate().outcome == "up-to-date"
    commit(repo, "Add the tasks")  # as imported
    assert store.migrate(history=True).outcome == "up-to-date"
    write(repo, {INDEX: ONE + TWO})

    with pytest.raises(MigrationError, match=r"`git tasks edit --raw`"):
        store.migrate()

    assert git(repo, "rev-parse", REF) == before


# -- refs that exist before the import -----------------------------------------------------------


def test_migrate_into_a_ref_made_by_init_keeps_the_file_byte_for_byte(repo: Path) -> None:
    store = TaskStore.open(repo)
    store.init()
    index = "# Project tasks\n\nProse.\n\n" + ONE + TWO.rstrip("\n")
    write(repo, {INDEX: index, **specs("001", "002")})
    commit(repo, "Add the tasks")

    store.migrate()

    assert git(repo, "show", f"{REF}:{INDEX}") == index


def test_two_clones_migrating_the_same_files_do_not_duplicate_tasks(
    repo: Path, tmp_path: Path
) -> None:
    write(repo, {INDEX: "# Tasks\n\n" + ONE + TWO, **specs("001", "002")})
    commit(repo, "Add the tasks")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    clones = []
    for name in ("alice", "bob"):
        clone = tmp_path / name
        git(tmp_path, "clone", "-q", str(origin), str(clone))
        git(clone, "config", "tasks.hub", "none")  # as a clone of a network remote
        clones.append(clone)
    alice, bob = clones
    TaskStore.open(alice).migrate()
    write(bob, {INDEX: "# Tasks\n\n" + ONE.replace("[ ]", "[x]") + TWO})  # not pushed yet
    bobs = TaskStore.open(bob)
    bobs.migrate()
    git(bob, "fetch", "-q", str(alice), f"+{REF}:refs/remotes/alice/tasks/main")

    bobs.merge("refs/remotes/alice/tasks/main")

    titles = [t.title for t in bobs.list(include_done=True)]
    assert sorted(titles) == ["One", "Two"], bobs.index_text()


def clones(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two clones of a bare copy of ``repo``, as clones of a network remote are."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    made = []
    for name in ("alice", "bob"):
        clone = tmp_path / name
        git(tmp_path, "clone", "-q", str(origin), str(clone))
        git(clone, "config", "tasks.hub", "none")
        made.append(clone)
    return made[0], made[1]


def test_clones_importing_one_commit_write_the_same_commit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo, {INDEX: ONE + TWO, **specs("001", "002")})
    commit(repo, "Add the tasks", GIT_COMMITTER_NAME="Releaser")
    alice, bob = clones(repo, tmp_path)

    one = TaskStore.open(alice).migrate()
    for role in ("AUTHOR", "COMMITTER"):  # someone else, a day later
        monkeypatch.setenv(f"GIT_{role}_NAME", "Bob")
        monkeypatch.setenv(f"GIT_{role}_DATE", "@1700086400 +0100")
    other = TaskStore.open(bob).migrate()

    assert one.commit is not None and one.commit == other.commit


def test_a_plain_and_a_history_import_of_one_commit_merge_without_duplicates(
    repo: Path, tmp_path: Path
) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    commit(repo, "Add one")
    write(repo, {INDEX: ONE + TWO, **specs("002")})
    commit(repo, "Add two")
    alice, bob = clones(repo, tmp_path)
    TaskStore.open(alice).migrate()  # the last commit alone
    write(bob, {INDEX: ONE.replace("[ ]", "[x]") + TWO})
    bobs = TaskStore.open(bob)
    bobs.migrate(history=True)  # both commits, then the edit: no commit in common
    git(bob, "fetch", "-q", str(alice), f"+{REF}:refs/remotes/alice/tasks/main")

    merged = bobs.merge("refs/remotes/alice/tasks/main")

    assert (merged.outcome, merged.renumbered, merged.conflicts) == ("merged", (), ())
    assert [(str(t.id), t.status.name) for t in bobs.list(include_done=True)] == [
        ("#001", "DONE"),
        ("#002", "TODO"),
    ]


def test_clones_importing_into_a_shared_ref_made_by_init_merge_without_duplicates(
    repo: Path, tmp_path: Path
) -> None:
    write(repo, {INDEX: ONE + TWO, **specs("001", "002")})
    commit(repo, "Add the tasks")
    alice, bob = clones(repo, tmp_path)
    TaskStore.open(alice).init()
    git(bob, "fetch", "-q", str(alice), f"+{REF}:{REF}")  # as a sync would share it
    TaskStore.open(alice).migrate()
    write(bob, {INDEX: ONE.replace("[ ]", "[x]") + TWO})
    bobs = TaskStore.open(bob)
    bobs.migrate()
    git(bob, "fetch", "-q", str(alice), f"+{REF}:refs/remotes/alice/tasks/main")

    merged = bobs.merge("refs/remotes/alice/tasks/main")

    assert merged.renumbered == ()
    assert [(str(t.id), t.status.name) for t in bobs.list(include_done=True)] == [
        ("#001", "DONE"),
        ("#002", "TODO"),
    ]


# -- what the working tree holds ------------------------------------------------------------------


def test_a_submodule_under_the_spec_directory_is_not_imported(repo: Path, tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    git(tmp_path, "init", "-q", "-b", "main", str(vendor))
    write(vendor, {"README.md": "# Vendor readme\n"})
    commit(vendor, "vendor")
    write(repo, {INDEX: ONE, **specs("001")})
    git(
        repo,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(vendor),
        "process/tasks/vendor",
    )
    head = commit(repo, "Add the tasks and a submodule")

    done = TaskStore.open(repo).migrate()

    assert "process/tasks/vendor/README.md" not in ref_paths(repo)
    assert done.steps[0].source == head  # the tree is clean: HEAD's files are imported


def test_specs_outside_a_sparse_checkout_are_imported(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001"), "src/app.py": "pass\n"})
    head = commit(repo, "Add the tasks")
    git(repo, "sparse-checkout", "set", "--no-cone", "/process/tasks.md", "/src/")
    assert not (repo / "process/tasks/001-one.md").exists()
    assert git(repo, "status", "--porcelain") == ""

    done = TaskStore.open(repo).migrate()

    assert git(repo, "show", f"{REF}:process/tasks/001-one.md") == SPECS["process/tasks/001-one.md"]
    assert done.steps[0].source == head
    ran = sh(done.commands[0], repo)
    assert ran.returncode == 0, ran.stderr
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD").split() == ["src/app.py"]


# -- the printed commands, run as printed ----------------------------------------------------------


def test_the_removal_command_works_where_migrate_ran(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001"), "docs/readme.txt": "docs\n"})
    commit(repo, "Add the tasks")
    subdir = repo / "docs"

    done = TaskStore.open(subdir).migrate()
    ran = sh(done.commands[0], subdir)

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert not (repo / INDEX).exists()


def test_the_removal_command_commits_only_the_task_files(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001"), "app.py": "old\n"})
    commit(repo, "Add the tasks")
    write(repo, {"app.py": "work in progress\n"})
    git(repo, "add", "app.py")

    done = TaskStore.open(repo).migrate()
    ran = sh(done.commands[0], repo)

    assert ran.returncode == 0, ran.stderr
    changed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert changed == [INDEX, "process/tasks/001-one.md"]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["app.py"]


def test_the_removal_command_of_a_lone_uncommitted_index_succeeds(repo: Path) -> None:
    write(repo, {INDEX: "- [ ] One [#001](https://example.com/1)\n"})

    done = TaskStore.open(repo).migrate()
    ran = sh(done.commands[0], repo)

    assert not (repo / INDEX).exists()
    assert ran.returncode == 0, ran.stderr


def test_the_removal_command_removes_imported_untracked_specs(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    commit(repo, "Add the tasks")
    write(repo, {INDEX: ONE + TWO, **specs("002")})  # a new task, its spec not added yet

    done = TaskStore.open(repo).migrate()
    assert "process/tasks/002-two.md" in ref_paths(repo)
    ran = sh(done.commands[0], repo)

    assert ran.returncode == 0, ran.stderr
    assert not (repo / "process/tasks/002-two.md").exists()


def test_the_removal_command_keeps_files_that_were_not_imported(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    (repo / "process/tasks/latest.md").symlink_to("001-one.md")
    commit(repo, "Add the tasks")

    done = TaskStore.open(repo).migrate()
    assert done.left_out == ("process/tasks/latest.md",)
    ran = sh(done.commands[0], repo)

    assert ran.returncode == 0, ran.stderr
    assert "process/tasks/latest.md" in git(repo, "ls-files").split()


def test_the_removal_command_takes_names_literally(repo: Path) -> None:
    write(repo, {INDEX: ONE, "process/tasks/001-*.md": SPECS["process/tasks/001-one.md"]})
    (repo / "process/tasks/001-one.md").symlink_to("001-*.md")  # matched by the glob
    commit(repo, "Add the tasks")

    done = TaskStore.open(repo).migrate()
    ran = sh(done.commands[0], repo)

    assert ran.returncode == 0, ran.stderr
    assert git(repo, "ls-files", "process").split() == ["process/tasks/001-one.md"]


@pytest.mark.usefixtures("on_path")  # `git tasks` works, as where migrate was installed
def test_the_command_in_the_error_after_the_move_works(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    commit(repo, "Add the tasks")
    store = TaskStore.open(repo)
    ran = sh(store.migrate().commands[0], repo)
    assert ran.returncode == 0, ran.stderr

    with pytest.raises(MigrationError) as caught:
        store.migrate()
    suggested = re.findall(r"`([^`]+)`", str(caught.value))
    assert suggested, str(caught.value)
    for command in suggested:
        tried = sh(command, repo)
        assert tried.returncode == 0, f"{command}: {tried.stderr}"


# -- history as git records it ------------------------------------------------------------------


def test_history_with_an_empty_author_email_is_imported(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    source = commit(repo, "Add the tasks", GIT_AUTHOR_NAME="Build Bot", GIT_AUTHOR_EMAIL="")
    assert git(repo, "log", "-1", "--format=%an <%ae>").strip() == "Build Bot <>"

    done = TaskStore.open(repo).migrate(history=True)

    assert [(s.source, s.author) for s in done.steps] == [(source, "Build Bot <>")]


# -- TaskService in a repository still in the old layout -------------------------------------------


def test_service_in_an_unmigrated_repository_points_to_migrate(repo: Path) -> None:
    write(repo, {INDEX: ONE, **specs("001")})
    commit(repo, "Add the tasks")
    service = TaskService(workspace_path=repo)

    with pytest.raises(NotInitialized) as caught:
        service.list_tasks()

    assert "git tasks migrate" in str(caught.value)
    assert caught.value.in_tree and caught.value.ref == REF


def test_commands_in_an_unmigrated_repository_point_to_migrate(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, {INDEX: ONE})

    code, _, err = run_main(capsys, "-C", str(repo / "process"), "list")

    assert code == 1
    assert "run `git tasks migrate` to import it" in err


# -- errors ---------------------------------------------------------------------------------------


def test_a_symlinked_index_is_named_as_a_symlink(repo: Path) -> None:
    write(repo, {"docs/TASKS.md": ONE})
    (repo / "process").mkdir()
    (repo / INDEX).symlink_to("../docs/TASKS.md")
    commit(repo, "Keep the tasks in docs/")

    with pytest.raises(MigrationError) as caught:
        TaskStore.open(repo).migrate()

    assert "not in the working tree" not in str(caught.value)
    assert "symlink" in str(caught.value)


def test_an_error_naming_a_file_with_a_newline_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, {INDEX: ONE})
    (repo / "process/tasks").mkdir()
    (repo / "process/tasks/a\nb.md").write_bytes(b"caf\xe9\n")

    code, _, err = run_main(capsys, "-C", str(repo), "migrate")

    assert code == 1
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err


def test_the_removal_command_keeps_ignored_files_that_were_not_imported(repo: Path) -> None:
    write(repo, {".gitignore": "*.draft.md\n"})
    commit(repo, "Ignore drafts")
    write(repo, {INDEX: ONE, **specs("001"), "process/tasks/mine.draft.md": "# Mine only\n"})

    done = TaskStore.open(repo).migrate()
    assert "process/tasks/mine.draft.md" not in ref_paths(repo)
    ran = sh(done.commands[0], repo)

    assert ran.returncode == 0, ran.stderr
    assert (repo / "process/tasks/mine.draft.md").read_text() == "# Mine only\n"
