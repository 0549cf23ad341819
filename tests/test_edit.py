"""Hand edits in $EDITOR (``edit --raw``, ``edit ID --spec``) while other processes write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import git, tasks_md

from tasksync import Status, TaskStore
from tasksync.cli import cli
from tasksync.model import TaskId

REF = "refs/tasks/main"
SPEC = (
    "# Task #001: Write the parser\n"
    "\n"
    "## Context\n"
    "\n"
    "Read tasks.md.\n"
    "\n"
    "## Requirements\n"
    "\n"
    "- line one\n"
    "- line two\n"
    "- line three\n"
    "- line four\n"
    "- line five\n"
    "- line six\n"
    "- line seven\n"
)

# Runs in the editor's process: ``path`` is the file being edited, ``text`` what it holds, and
# ``tasks(cwd, *args)`` runs ``python -m tasksync`` as yet another process and waits for it.
PRELUDE = f"""#!{sys.executable}
import subprocess
import sys
from pathlib import Path

path = Path(sys.argv[1])
text = path.read_text(encoding="utf-8")


def tasks(cwd, *args):
    done = subprocess.run(
        [{sys.executable!r}, "-m", "tasksync", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit("the other writer failed: " + done.stderr)

"""


def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """Make $EDITOR a script that runs ``body`` (Python) after :data:`PRELUDE`."""
    script = tmp_path / "editor.py"
    script.write_text(PRELUDE + body, encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(script))
    return script


def git_tasks(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tasksync ARGS`` as a real process, with the editor in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "tasksync", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )


def tip(path: Path) -> str:
    return git(path, "rev-parse", REF).strip()


def count(path: Path) -> int:
    return int(git(path, "rev-list", "--count", REF))


def paths(path: Path) -> list[str]:
    return git(path, "ls-tree", "-r", "--name-only", REF).split()


def scratch_files(repo: Path) -> list[Path]:
    folder = repo / ".git" / "tasksync"
    return sorted(folder.glob("edit-*")) if folder.exists() else []


@pytest.fixture
def three(store: TaskStore) -> TaskStore:
    store.create("Write the parser", spec=SPEC)
    store.create("Write the merge")
    store.create("Write the docs")
    return store


# -- edit --raw -----------------------------------------------------------------------------------


def test_raw_edit_keeps_a_tick_made_meanwhile_in_another_worktree(
    repo: Path, worktree: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(
        tmp_path,
        monkeypatch,
        f"tasks({str(worktree)!r}, 'status', 'set', '2', 'DONE')\n"
        "path.write_text(text.replace('- [ ] Write the parser', '- [x] Write the parser'))\n",
    )
    before = count(repo)

    done = git_tasks(repo, "edit", "--raw")

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"tasks.md saved ({tip(repo)[:12]})\n"
    assert [t.status for t in three.list(include_done=True)] == [
        Status.DONE,
        Status.DONE,
        Status.TODO,
    ]
    assert count(repo) == before + 2
    assert git(repo, "log", "-1", "--format=%s", REF).strip() == (
        "tasks.md: edited by hand (1 changed)"
    )
    assert scratch_files(repo) == []


def test_a_task_added_by_hand_whose_id_was_taken_is_renumbered(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "- [ ] Added by hand [#004](process/tasks/004-added-by-hand.md)\n"
    editor(
        tmp_path,
        monkeypatch,
        f"tasks({str(repo)!r}, 'create', 'Created meanwhile')\npath.write_text(text + {line!r})\n",
    )

    done = git_tasks(repo, "edit", "--raw")

    assert done.returncode == 0, done.stderr
    assert "#004 was taken meanwhile: your task is #005\n" in done.stdout
    tasks = {t.title: t.id for t in three.list()}
    assert tasks["Created meanwhile"] == TaskId(4)
    assert tasks["Added by hand"] == TaskId(5)
    assert "- [ ] Added by hand [#005](process/tasks/005-added-by-hand.md)\n" in tasks_md(repo)
    assert "Tasksync-Renumbered: #004 -> #005" in git(repo, "log", "-1", "--format=%B", REF)
    assert "process/tasks/004-created-meanwhile.md" in paths(repo)
    assert [(r.old, r.new) for r in three.renumbered(4)] == [(TaskId(4), TaskId(5))]


def test_a_task_line_deleted_by_hand_takes_its_spec_along(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(
        tmp_path,
        monkeypatch,
        f"tasks({str(repo)!r}, 'status', 'set', '2', 'IN-PROGRESS')\n"
        "kept = [l for l in text.splitlines(True) if 'Write the docs' not in l]\n"
        "path.write_text(''.join(kept))\n",
    )
    assert "process/tasks/003-write-the-docs.md" in paths(repo)

    done = git_tasks(repo, "edit", "--raw")

    assert done.returncode == 0, done.stderr
    assert [t.id.number for t in three.list(include_done=True)] == [1, 2]
    assert three.get(2).status is Status.IN_PROGRESS
    assert "process/tasks/003-write-the-docs.md" not in paths(repo)
    assert "process/tasks/001-write-the-parser.md" in paths(repo)


def test_an_editor_that_fails_changes_nothing_and_keeps_the_text(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(tmp_path, monkeypatch, "path.write_text(text + '- [ ] Half typed\\n')\nsys.exit(3)\n")
    before = tip(repo)

    done = git_tasks(repo, "edit", "--raw")

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert "exited with status 3" in done.stderr
    kept = scratch_files(repo)
    assert len(kept) == 1
    assert str(kept[0]) in done.stderr
    assert kept[0].read_text(encoding="utf-8").endswith("- [ ] Half typed\n")
    assert tip(repo) == before


def test_saving_unchanged_writes_nothing(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(tmp_path, monkeypatch, f"tasks({str(repo)!r}, 'status', 'set', '3', 'BLOCKED')\n")
    before = count(repo)

    done = git_tasks(repo, "edit", "--raw")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "tasks.md unchanged\n"
    assert count(repo) == before + 1  # only the other process's commit
    assert git(repo, "log", "-1", "--format=%s", REF).strip() == "#003: status TODO → BLOCKED"
    assert scratch_files(repo) == []


# -- edit ID --spec -------------------------------------------------------------------------------


def test_spec_edit_keeps_a_concurrent_change_to_other_lines(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs.md"
    theirs.write_text(SPEC.replace("- line seven\n", "- line seven, theirs\n"), encoding="utf-8")
    editor(
        tmp_path,
        monkeypatch,
        f"tasks({str(repo)!r}, 'edit', '1', '--spec-file', {str(theirs)!r})\n"
        "path.write_text(text.replace('- line one\\n', '- line one, mine\\n'))\n",
    )

    done = git_tasks(repo, "edit", "1", "--spec")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "#001 spec saved\n"
    assert three.spec(1) == SPEC.replace("- line one\n", "- line one, mine\n").replace(
        "- line seven\n", "- line seven, theirs\n"
    )
    assert three.conflicts() == ()
    assert git(repo, "log", "-1", "--format=%s", REF).strip() == "#001: edited its spec by hand"


def test_spec_edit_of_the_same_lines_stands_and_records_a_conflict(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs_text = SPEC.replace("- line four\n", "- line four, theirs\n")
    theirs = tmp_path / "theirs.md"
    theirs.write_text(theirs_text, encoding="utf-8")
    editor(
        tmp_path,
        monkeypatch,
        f"tasks({str(repo)!r}, 'edit', '1', '--spec-file', {str(theirs)!r})\n"
        "path.write_text(text.replace('- line four\\n', '- line four, mine\\n'))\n",
    )
    mine = SPEC.replace("- line four\n", "- line four, mine\n")

    done = git_tasks(repo, "edit", "1", "--spec")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#001 spec saved\nconflict: #001 spec")
    assert three.spec(1) == mine
    assert "<<<<<<<" not in three.spec(1)
    recorded = three.conflicts(1)
    assert len(recorded) == 1
    conflict = recorded[0]
    assert (conflict.field, conflict.base, conflict.ours, conflict.theirs, conflict.kept) == (
        "spec",
        SPEC,
        mine,
        theirs_text,
        mine,
    )


def test_spec_edit_saved_unchanged(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor(tmp_path, monkeypatch, "")
    before = tip(repo)
    done = git_tasks(repo, "edit", "2", "--spec")
    assert (done.returncode, done.stdout) == (0, "#002 spec unchanged\n"), done.stderr
    assert tip(repo) == before


@pytest.mark.parametrize(
    "args",
    [["edit", "1", "--raw"], ["edit", "--spec"], ["edit", "--raw", "--spec"]],
    ids=" ".join,
)
def test_edit_option_misuse_is_a_usage_error(
    repo: Path, three: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    marker = tmp_path / "editor-ran"
    editor(tmp_path, monkeypatch, f"Path({str(marker)!r}).touch()\n")
    before = tip(repo)
    result = CliRunner().invoke(cli, ["-C", str(repo), *args])
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert tip(repo) == before
    assert not marker.exists()


# -- the API --------------------------------------------------------------------------------------


def test_edit_index_merges_onto_a_tip_that_moved(repo: Path, three: TaskStore) -> None:
    other = TaskStore.open(repo)
    base = three.index_text()
    other.set_status(3, Status.DONE)
    other.create("Created meanwhile")
    moved = tip(repo)
    edited = base.replace("- [ ] Write the merge", "- [+] Write the merge") + (
        "- [ ] By hand [#004](process/tasks/004-by-hand.md)\n"
    )

    merged = three.edit_index(base, edited)

    assert merged is not None
    assert three.last_commit == tip(repo)
    assert git(repo, "rev-parse", f"{REF}^").strip() == moved
    assert [(r.old, r.new, r.side) for r in merged.renumbered] == [(TaskId(4), TaskId(5), "ours")]
    assert {t.title: (t.id.number, t.status) for t in three.list(include_done=True)} == {
        "Write the parser": (1, Status.TODO),
        "Write the merge": (2, Status.IN_PROGRESS),
        "Write the docs": (3, Status.DONE),
        "Created meanwhile": (4, Status.TODO),
        "By hand": (5, Status.TODO),
    }
    assert merged.text == tasks_md(repo)


def test_edit_index_of_nothing_writes_nothing(repo: Path, three: TaskStore) -> None:
    base = three.index_text()
    TaskStore.open(repo).set_status(1, Status.DONE)
    before = tip(repo)
    assert three.edit_index(base, base) is None
    assert three.last_commit is None
    assert tip(repo) == before
    # An edit that the tip already holds writes nothing either.
    ticked = base.replace("- [ ] Write the parser", "- [x] Write the parser")
    assert three.edit_index(base, ticked) is None
    assert tip(repo) == before


def test_edit_spec_onto_a_tip_that_moved(repo: Path, three: TaskStore) -> None:
    base = three.spec(1)
    TaskStore.open(repo).update(1, spec=base.replace("- line two\n", "- line two, other\n"))
    assert three.edit_spec(1, base, base.replace("- line six\n", "- line six, mine\n")) is True
    assert three.spec(1) == base.replace("- line two\n", "- line two, other\n").replace(
        "- line six\n", "- line six, mine\n"
    )
    before = tip(repo)
    assert three.edit_spec(1, base, base) is False
    assert tip(repo) == before
