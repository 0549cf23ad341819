"""The merge driver: real ``git merge`` and ``git rebase`` runs, direct calls, and install."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import git, run_main

from tasksync.cli import cli
from tasksync.driver import ATTRIBUTES_LINE, COMMAND, DESCRIPTION

TASKS = "process/tasks.md"
BASE = (
    "# Tasks\n"
    "\n"
    "- [ ] First task [#001](process/tasks/001-first-task.md)\n"
    "- [ ] Second task [#002](process/tasks/002-second-task.md)\n"
    "- [ ] Third task [#003](process/tasks/003-third-task.md)\n"
)


def tick(text: str, number: int, checkbox: str = "x") -> str:
    """``text`` with the checkbox of task ``number`` replaced."""
    marker = f"[#{number:03d}]"
    lines = [
        f"- [{checkbox}]{line[5:]}" if marker in line else line
        for line in text.splitlines(keepends=True)
    ]
    assert lines != text.splitlines(keepends=True)
    return "".join(lines)


def add_task(text: str, number: int, title: str) -> str:
    slug = title.lower().replace(" ", "-")
    return f"{text}- [ ] {title} [#{number:03d}](process/tasks/{number:03d}-{slug}.md)\n"


def commit_tasks(repo: Path, text: str, message: str) -> None:
    (repo / TASKS).write_text(text, encoding="utf-8", newline="")
    git(repo, "add", TASKS)
    git(repo, "commit", "-q", "-m", message)


def branch(repo: Path, name: str, text: str) -> None:
    """A branch ``name`` off main whose one commit writes ``text`` to tasks.md."""
    git(repo, "checkout", "-q", "-b", name, "main")
    commit_tasks(repo, text, f"tasks on {name}")


def invoke(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(repo), *args], catch_exceptions=False)


def assert_one_error_line(code: int, out: str, err: str) -> None:
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert err.endswith("\n")


def local_config(repo: Path, key: str) -> list[str]:
    return git(repo, "config", "--local", "--get-all", key, check=False).splitlines()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository whose main branch has ``process/tasks.md`` (BASE) in its working tree."""
    path = tmp_path / "project"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    (path / "process").mkdir()
    commit_tasks(path, BASE, "three tasks")
    return path


@pytest.fixture
def installed(project: Path, on_path: None) -> Path:
    """``project`` with the driver installed and ``.gitattributes`` committed on main."""
    assert invoke(project, "merge-driver", "install").exit_code == 0
    git(project, "add", ".gitattributes")
    git(project, "commit", "-q", "-m", "merge tasks.md with git tasks")
    return project


def merged_text(repo: Path) -> str:
    return (repo / TASKS).read_text(encoding="utf-8")


# -- real merges ------------------------------------------------------------------------------


def test_merge_of_neighbouring_ticks_conflicts_without_the_driver_and_not_with_it(
    project: Path, on_path: None
) -> None:
    branch(project, "one", tick(BASE, 1))
    branch(project, "two", tick(BASE, 2))
    git(project, "checkout", "-q", "one")

    plain = git(project, "merge", "--no-edit", "two", check=False)
    assert "CONFLICT (content): Merge conflict in process/tasks.md" in plain
    assert "<<<<<<<" in merged_text(project)
    git(project, "merge", "--abort")

    assert invoke(project, "merge-driver", "install").exit_code == 0
    git(project, "add", ".gitattributes")
    git(project, "commit", "-q", "-m", "merge tasks.md with git tasks")
    git(project, "merge", "--no-edit", "two")

    assert merged_text(project) == tick(tick(BASE, 1), 2)
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-list", "--parents", "-1", "HEAD").count(" ") == 2  # a merge commit


def test_rebase_with_the_driver(installed: Path) -> None:
    branch(installed, "one", tick(BASE, 1))
    branch(installed, "two", add_task(tick(BASE, 2), 4, "Fourth task"))
    one = git(installed, "rev-parse", "one").strip()

    git(installed, "rebase", "one")

    assert merged_text(installed) == add_task(tick(tick(BASE, 1), 2), 4, "Fourth task")
    assert git(installed, "rev-parse", "HEAD^").strip() == one
    assert git(installed, "status", "--porcelain") == ""


def test_one_task_set_to_two_statuses_keeps_the_documented_winner(installed: Path) -> None:
    branch(installed, "blocked", tick(BASE, 3, "~"))
    branch(installed, "done", tick(BASE, 3, "x"))
    git(installed, "checkout", "-q", "blocked")

    done = git(installed, "merge", "--no-edit", "done")  # fails the test if git stops

    assert "- [x] Third task [#003]" in merged_text(installed)
    assert merged_text(installed) == tick(BASE, 3, "x")
    assert "Merge made by" in done


def test_driver_reports_each_settled_conflict_on_stderr(tmp_path: Path) -> None:
    base, ours, theirs = tmp_path / "base", tmp_path / "ours", tmp_path / "theirs"
    base.write_text(BASE, encoding="utf-8")
    ours.write_text(tick(BASE, 3, "~"), encoding="utf-8")
    theirs.write_text(tick(tick(BASE, 3, "x"), 1, "+"), encoding="utf-8")

    result = invoke(tmp_path, "merge-driver", "base", "ours", "theirs", TASKS)

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"{TASKS}: #003 status: kept DONE (set aside: BLOCKED)\n"
    assert ours.read_text(encoding="utf-8") == tick(tick(BASE, 3, "x"), 1, "+")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ours", "theirs"]

    # The rule does not depend on which side is ours: swapped, the same text and report.
    ours.write_text(tick(tick(BASE, 3, "x"), 1, "+"), encoding="utf-8")
    theirs.write_text(tick(BASE, 3, "~"), encoding="utf-8")
    swapped = invoke(tmp_path, "merge-driver", "base", "ours", "theirs")
    assert swapped.exit_code == 0
    assert swapped.stderr == f"{ours}: #003 status: kept DONE (set aside: BLOCKED)\n"
    assert ours.read_text(encoding="utf-8") == tick(tick(BASE, 3, "x"), 1, "+")


def test_git_shows_the_drivers_report(installed: Path) -> None:
    branch(installed, "blocked", tick(BASE, 3, "~"))
    branch(installed, "done", tick(BASE, 3, "x"))

    run = subprocess.run(
        ["git", "merge", "--no-edit", "blocked"],
        cwd=installed,
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert f"{TASKS}: #003 status: kept DONE (set aside: BLOCKED)\n" in run.stderr
    assert merged_text(installed) == tick(BASE, 3, "x")


def test_same_id_created_on_both_branches_keeps_both_tasks(installed: Path) -> None:
    branch(installed, "left", add_task(BASE, 4, "Left task"))
    branch(installed, "right", add_task(BASE, 4, "Right task"))

    git(installed, "merge", "--no-edit", "left")

    text = merged_text(installed)
    assert "Left task [#004](process/tasks/004-left-task.md)" in text
    assert "Right task [#005](process/tasks/005-right-task.md)" in text
    assert text.count("[#004]") == 1
    assert text.count("[#005]") == 1


def test_driver_reports_a_renumbered_task(tmp_path: Path) -> None:
    (tmp_path / "base").write_text(BASE, encoding="utf-8")
    (tmp_path / "ours").write_text(add_task(BASE, 4, "Left task"), encoding="utf-8")
    (tmp_path / "theirs").write_text(add_task(BASE, 4, "Right task"), encoding="utf-8")

    result = invoke(tmp_path, "merge-driver", "base", "ours", "theirs", TASKS)

    assert result.exit_code == 0
    assert result.stderr == (
        f"{TASKS}: #004 created on both sides: 'Right task' renumbered to #005; "
        "move its spec process/tasks/004-right-task.md to process/tasks/005-right-task.md\n"
    )


def test_driver_keeps_line_endings(tmp_path: Path) -> None:
    crlf = BASE.replace("\n", "\r\n")
    (tmp_path / "base").write_bytes(crlf.encode())
    (tmp_path / "ours").write_bytes(tick(crlf, 1).encode())
    (tmp_path / "theirs").write_bytes(tick(crlf, 2).encode())

    assert invoke(tmp_path, "merge-driver", "base", "ours", "theirs").exit_code == 0

    assert (tmp_path / "ours").read_bytes() == tick(tick(crlf, 1), 2).encode()


# -- input that is not UTF-8 ------------------------------------------------------------------


def test_non_utf8_input_exits_1_and_leaves_ours_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "base").write_text(BASE, encoding="utf-8")
    ours_bytes = tick(BASE, 1).encode()
    (tmp_path / "ours").write_bytes(ours_bytes)
    (tmp_path / "theirs").write_bytes(tick(BASE, 2).encode("utf-8") + b"- [ ] Caf\xe9\n")

    code, out, err = run_main(
        capsys, "-C", str(tmp_path), "merge-driver", "base", "ours", "theirs", TASKS
    )

    assert_one_error_line(code, out, err)
    assert err.startswith(f"error: {TASKS}: their version ({tmp_path / 'theirs'}) is not UTF-8")
    assert f"git add {TASKS}" in err
    assert (tmp_path / "ours").read_bytes() == ours_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ours", "theirs"]

    code, out, err = run_main(
        capsys, "-C", str(tmp_path), "merge-driver", "missing", "ours", "theirs"
    )
    assert_one_error_line(code, out, err)
    assert "cannot read common ancestor" in err
    assert (tmp_path / "ours").read_bytes() == ours_bytes


def test_git_marks_a_non_utf8_file_conflicted(installed: Path) -> None:
    git(installed, "checkout", "-q", "-b", "latin1", "main")
    (installed / TASKS).write_bytes(tick(BASE, 1).encode() + b"- [ ] Caf\xe9\n")
    git(installed, "commit", "-q", "-am", "latin-1")
    branch(installed, "other", tick(BASE, 2))
    ours_bytes = (installed / TASKS).read_bytes()

    merge = git(installed, "merge", "--no-edit", "latin1", check=False)

    assert "CONFLICT" in merge
    assert git(installed, "diff", "--name-only", "--diff-filter=U") == f"{TASKS}\n"
    assert (installed / TASKS).read_bytes() == ours_bytes


# -- install ----------------------------------------------------------------------------------


def test_install_is_idempotent(project: Path) -> None:
    first = invoke(project, "merge-driver", "install")
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        f"Set merge.tasks.name = {DESCRIPTION} (repository config)\n"
        f"Set merge.tasks.driver = {COMMAND} (repository config)\n"
        f"Added `{ATTRIBUTES_LINE}` to {project / '.gitattributes'}\n"
    )
    sub = project / "process"
    second = invoke(sub, "merge-driver", "install")  # from a subdirectory: the same files
    assert second.exit_code == 0, second.output
    assert second.stdout == (
        f"Already set: merge.tasks.name = {DESCRIPTION} (repository config)\n"
        f"Already set: merge.tasks.driver = {COMMAND} (repository config)\n"
        f"{project / '.gitattributes'} already has `{ATTRIBUTES_LINE}`\n"
    )
    assert local_config(project, "merge.tasks.name") == [DESCRIPTION]
    assert local_config(project, "merge.tasks.driver") == ["git tasks merge-driver %O %A %B %P"]
    assert (project / ".gitattributes").read_text(encoding="utf-8") == (
        "process/tasks.md merge=tasks\n"
    )
    assert not (sub / ".gitattributes").exists()
    assert git(project, "check-attr", "merge", "--", TASKS) == f"{TASKS}: merge: tasks\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("*.png binary", "*.png binary\nprocess/tasks.md merge=tasks\n"),
        ("*.png binary\n", "*.png binary\nprocess/tasks.md merge=tasks\n"),
        ("*.png binary\r\n", "*.png binary\r\nprocess/tasks.md merge=tasks\r\n"),
        ("", "process/tasks.md merge=tasks\n"),
        (
            "a b\nprocess/tasks.md   merge=tasks  \nc d",
            "a b\nprocess/tasks.md   merge=tasks  \nc d",
        ),
        (
            "process/tasks.md merge=union\n",
            "process/tasks.md merge=union\n" + ATTRIBUTES_LINE + "\n",
        ),
    ],
    ids=["no-final-newline", "final-newline", "crlf", "empty", "already-there", "overridden"],
)
def test_install_appends_to_an_existing_gitattributes(
    project: Path, before: str, after: str
) -> None:
    attributes = project / ".gitattributes"
    attributes.write_bytes(before.encode())
    attributes.chmod(0o640)

    for _ in range(2):
        assert invoke(project, "merge-driver", "install").exit_code == 0
        assert attributes.read_bytes() == after.encode()

    assert attributes.stat().st_mode & 0o777 == 0o640
    assert git(project, "check-attr", "merge", "--", TASKS) == f"{TASKS}: merge: tasks\n"
    assert sorted(p.name for p in project.iterdir()) == [".git", ".gitattributes", "process"]


def test_install_global_writes_the_users_config(project: Path) -> None:
    result = invoke(project, "merge-driver", "install", "--global")

    assert result.exit_code == 0, result.output
    assert "(global config)" in result.stdout
    home_config = Path(os.environ["GIT_CONFIG_GLOBAL"])
    assert f"driver = {COMMAND}" in home_config.read_text(encoding="utf-8")
    assert git(project, "config", "--global", "--get", "merge.tasks.driver") == f"{COMMAND}\n"
    assert local_config(project, "merge.tasks.driver") == []
    assert (project / ".gitattributes").read_text(encoding="utf-8") == f"{ATTRIBUTES_LINE}\n"


def test_install_outside_a_repository_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    code, out, err = run_main(capsys, "-C", str(plain), "merge-driver", "install")

    assert_one_error_line(code, out, err)
    assert f"not a git repository: {plain}" in err
    assert list(plain.iterdir()) == []
    code, out, err = run_main(capsys, "-C", str(tmp_path / "nowhere"), "merge-driver", "install")
    assert_one_error_line(code, out, err)
    assert "not a git repository" in err


def test_install_in_a_bare_repository_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))

    code, out, err = run_main(capsys, "-C", str(bare), "merge-driver", "install")

    assert_one_error_line(code, out, err)
    assert "not in a working tree" in err
    assert "git tasks merge-driver install" in err
    assert local_config(bare, "merge.tasks.driver") == []
    assert not (bare / ".gitattributes").exists()


# -- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [[], ["a", "b"], ["a", "b", "c", "d", "e"], ["installs"], ["a", "b", "c", "--global"]],
    ids=["none", "two-files", "five-files", "typo", "global-without-install"],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run_main(capsys, "-C", str(tmp_path), "merge-driver", *args)

    assert code == 2, (out, err)
    assert "Usage: git tasks merge-driver" in err
    assert list(tmp_path.iterdir()) == []


def test_help_names_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "merge-driver", "-h")

    assert code == 0, err
    assert out.startswith("Usage: git tasks merge-driver [OPTIONS] install | BASE OURS THEIRS")
    assert "git tasks merge-driver install [--global]" in out
    assert "git tasks merge-driver BASE OURS THEIRS [PATH]" in out
    assert "--global" in out
    top = run_main(capsys, "-h")[1]
    assert any(line.split()[:1] == ["merge-driver"] for line in top.splitlines())
