"""``git tasks``: every command through CliRunner, exit codes through main, and real runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import git, run_main, tasks_md

import tasksync
from tasksync import Status, TaskStore
from tasksync.cli import cli

REF = "refs/tasks/main"
TASK_KEYS = {"id", "title", "status", "spec_path", "description"}
LOG_KEYS = {
    "commit",
    "summary",
    "operation",
    "task_ids",
    "workspace",
    "author",
    "time",
    "offset_minutes",
    "trailers",
}
STATUS_NAMES = ("TODO", "IN-PROGRESS", "IN-REVIEW", "DONE", "BLOCKED", "CLOSED")
SPEC = (
    "# Task: From the spec\n"
    "\n"
    "## Context\n"
    "\n"
    "Written in a file.\n"
    "\n"
    "## Requirements\n"
    "\n"
    "- keep this section\n"
)


def invoke(repo: Path, *args: str, stdin: str | None = None) -> Result:
    """Run ``git tasks -C repo ARGS`` in-process; tasksync errors propagate."""
    return CliRunner().invoke(cli, ["-C", str(repo), *args], input=stdin, catch_exceptions=False)


def ok(repo: Path, *args: str) -> str:
    result = invoke(repo, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def tip(path: Path) -> str:
    return git(path, "rev-parse", "-q", "--verify", REF, check=False).strip()


@pytest.fixture
def ready(repo: Path) -> Path:
    """A repository with an initialized store holding three tasks, one of them DONE."""
    ok(repo, "init")
    ok(repo, "create", "First task")
    ok(repo, "create", "Second task", "--description", "Why it matters")
    ok(repo, "create", "Finished task", "--status", "DONE")
    return repo


# -- commands through CliRunner ---------------------------------------------------------------


def test_init_creates_the_store_once(repo: Path) -> None:
    assert ok(repo, "init") == f"Initialized the task store on {REF}\n"
    first = tip(repo)
    assert first
    assert ok(repo, "init") == f"The task store on {REF} already exists\n"
    assert tip(repo) == first
    assert tasks_md(repo) == "# Tasks\n"


def test_create_prints_the_new_id(repo: Path) -> None:
    ok(repo, "init")
    assert ok(repo, "create", "First task") == "#001\n"
    assert ok(repo, "create", "Second", "-d", "short form") == "#002\n"
    assert TaskStore.open(repo).get(2).description == "short form"
    assert "- [ ] First task [#001](process/tasks/001-first-task.md)\n" in tasks_md(repo)


def test_create_json_with_description_and_status(repo: Path) -> None:
    ok(repo, "init")
    out = ok(
        repo, "create", "Second task", "--description", "Why", "--status", "in-progress", "--json"
    )
    task = json.loads(out)
    assert set(task) == TASK_KEYS
    assert task == {
        "id": "#001",
        "title": "Second task",
        "status": "IN-PROGRESS",
        "spec_path": "process/tasks/001-second-task.md",
        "description": "Why",
    }
    assert "- [+] Second task [#001]" in tasks_md(repo)


def test_create_from_a_spec_file(repo: Path, tmp_path: Path) -> None:
    ok(repo, "init")
    spec_file = tmp_path / "spec.md"
    spec_file.write_text(SPEC, encoding="utf-8")

    assert ok(repo, "create", "--spec-file", str(spec_file)) == "#001\n"
    store = TaskStore.open(repo)
    task = store.get(1)
    assert task.title == "From the spec"
    assert task.description == "Written in a file."
    spec = store.spec(1)
    assert "## Requirements\n\n- keep this section\n" in spec
    assert spec.startswith("# Task: From the spec\n")

    out = ok(repo, "create", "Own title", "--spec-file", str(spec_file), "-d", "Other", "--json")
    created = json.loads(out)
    assert (created["title"], created["description"]) == ("Own title", "Other")
    assert "## Requirements" in store.spec(2)


def test_create_without_a_title_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    ok(repo, "init")
    before = tip(repo)
    result = invoke(repo, "create")
    assert result.exit_code == 2
    assert "give a TITLE" in result.stderr
    headless = tmp_path / "headless.md"
    headless.write_text("no heading here\n", encoding="utf-8")
    assert invoke(repo, "create", "--spec-file", str(headless)).exit_code == 2
    assert tip(repo) == before


def test_list_hides_finished_tasks(ready: Path) -> None:
    assert ok(ready, "list") == (
        "#001  [ ] TODO         First task\n#002  [ ] TODO         Second task\n"
    )
    assert ok(ready, "list", "--all").splitlines()[-1] == "#003  [x] DONE         Finished task"
    assert ok(ready, "list", "--status", "DONE") == "#003  [x] DONE         Finished task\n"
    assert ok(ready, "list", "--status", "done") == ok(ready, "list", "--status", "DONE")
    assert ok(ready, "list", "--status", "BLOCKED") == ""


def test_list_json(ready: Path) -> None:
    tasks = json.loads(ok(ready, "list", "--json"))
    assert [t["id"] for t in tasks] == ["#001", "#002"]
    for task in tasks:
        assert set(task) == TASK_KEYS
    assert tasks[1] == {
        "id": "#002",
        "title": "Second task",
        "status": "TODO",
        "spec_path": "process/tasks/002-second-task.md",
        "description": "Why it matters",
    }
    every = json.loads(ok(ready, "list", "--all", "--json"))
    assert [t["status"] for t in every] == ["TODO", "TODO", "DONE"]
    done = json.loads(ok(ready, "list", "--status", "DONE", "--json"))
    assert [t["id"] for t in done] == ["#003"]


def test_list_of_an_empty_store(repo: Path) -> None:
    ok(repo, "init")
    assert ok(repo, "list") == ""
    assert json.loads(ok(repo, "list", "--json")) == []


def test_get(ready: Path) -> None:
    assert ok(ready, "get", "2") == (
        "#002  Second task\n"
        "status: TODO\n"
        "spec:   process/tasks/002-second-task.md\n"
        "\n"
        "Why it matters\n"
    )
    task = json.loads(ok(ready, "get", "#003", "--json"))
    assert set(task) == TASK_KEYS
    assert task["status"] == "DONE"
    assert json.loads(ok(ready, "get", "task#1", "--json"))["title"] == "First task"


def test_status_get_and_set(ready: Path) -> None:
    assert ok(ready, "status", "get", "1") == "TODO\n"
    assert ok(ready, "status", "set", "1", "in-progress") == "#001 IN-PROGRESS\n"
    assert ok(ready, "status", "get", "001") == "IN-PROGRESS\n"
    out = ok(ready, "status", "set", "1", "IN-REVIEW", "--expect", "IN-PROGRESS")
    assert out == "#001 IN-REVIEW\n"
    assert "- [-] First task [#001]" in tasks_md(ready)
    subject = git(ready, "log", "-1", "--format=%s", REF).strip()
    assert subject == "#001: status IN-PROGRESS → IN-REVIEW"


def test_edit(ready: Path, tmp_path: Path) -> None:
    assert ok(ready, "edit", "1", "--title", "Renamed task") == "#001 Renamed task\n"
    assert "- [ ] Renamed task [#001](process/tasks/001-first-task.md)" in tasks_md(ready)
    before = tip(ready)
    assert ok(ready, "edit", "1", "--title", "Renamed task") == "#001 unchanged\n"
    assert tip(ready) == before
    ok(ready, "edit", "2", "--description", "New reason")
    assert TaskStore.open(ready).get(2).description == "New reason"
    spec_file = tmp_path / "spec.md"
    spec_file.write_text(
        "# Task #002: Second task\n\n## Context\n\nFrom a file\n", encoding="utf-8"
    )
    ok(ready, "edit", "2", "--spec-file", str(spec_file))
    assert TaskStore.open(ready).spec(2) == spec_file.read_text(encoding="utf-8")

    result = invoke(ready, "edit", "1")
    assert result.exit_code == 2
    assert "nothing to change" in result.stderr


def test_delete_needs_force_without_a_terminal(ready: Path) -> None:
    before = tip(ready)
    result = invoke(ready, "delete", "2", stdin="y\n")
    assert result.exit_code == 2
    assert "refusing to delete #002 without --force" in result.stderr
    assert tip(ready) == before

    assert ok(ready, "delete", "2", "--force") == "Deleted #002 Second task\n"
    assert "#002" not in tasks_md(ready)
    assert "process/tasks/002-second-task.md" not in git(ready, "ls-tree", "-r", REF)
    assert ok(ready, "delete", "-f", "1") == "Deleted #001 First task\n"
    assert [t.id.number for t in TaskStore.open(ready).list(include_done=True)] == [3]


def test_spec_prints_the_spec_file(ready: Path) -> None:
    out = ok(ready, "spec", "2")
    assert out == git(ready, "show", f"{REF}:process/tasks/002-second-task.md")
    assert out.startswith("# Task #002: Second task\n")
    assert "Why it matters" in out


def test_log(ready: Path) -> None:
    ok(ready, "status", "set", "1", "BLOCKED")
    lines = ok(ready, "log").splitlines()
    commits = git(ready, "rev-list", REF).split()
    assert len(lines) == len(commits) == 5
    when = "2023-11-14 22:13 Test Author [repo] "
    assert lines[0] == f"{commits[0][:10]} {when} #001: status TODO → BLOCKED"
    assert lines[-1] == f"{commits[-1][:10]} {when} tasks: initialized the task store"
    assert ok(ready, "log", "1").splitlines() == [lines[0], lines[-2]]
    assert ok(ready, "log", "-n", "1") == lines[0] + "\n"

    entries = json.loads(ok(ready, "log", "--json"))
    assert [e["commit"] for e in entries] == commits
    for entry in entries:
        assert set(entry) == LOG_KEYS
    assert entries[0]["operation"] == "set-status"
    assert entries[0]["task_ids"] == ["#001"]
    assert entries[0]["workspace"] == "repo"
    assert entries[0]["author"] == "Test Author <author@example.com>"
    assert entries[0]["time"] == 1700000000
    assert ["Tasksync-Status", "TODO -> BLOCKED"] in entries[0]["trailers"]
    assert [e["operation"] for e in json.loads(ok(ready, "log", "2", "--json", "-n", "5"))] == [
        "create"
    ]


def test_commands_find_the_repository_from_the_working_directory(
    ready: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = worktree / "deep" / "dir"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = CliRunner().invoke(cli, ["status", "set", "2", "DONE"], catch_exceptions=False)
    assert result.exit_code == 0
    assert TaskStore.open(ready).get(2).status is Status.DONE
    assert git(ready, "status", "--porcelain") == ""


def test_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    where = re.search(r"A throwaway repository in (\S+):", out)
    assert where is not None
    assert Path(where.group(1)).parent == tmp_path
    assert not Path(where.group(1)).exists()
    assert "[session]$ git tasks status set 1 IN-PROGRESS" in out
    assert "    - [+] Enhance task sync [#001](process/tasks/001-enhance-task-sync.md)" in out
    assert "    - [x] Write the docs [#002](process/tasks/002-write-the-docs.md)" in out
    # The session clone (git clone of main) wrote straight into main's ref.
    assert '[clone]$ git tasks create "Review the sync"' in out
    assert "    - [ ] Review the sync [#003](process/tasks/003-review-the-sync.md)" in out

    kept = CliRunner().invoke(cli, ["demo", "--keep"], catch_exceptions=False)
    assert kept.exit_code == 0, kept.output
    found = re.search(r"Kept (\S+)", kept.stdout)
    assert found is not None
    root = Path(found.group(1))
    assert root.parent == tmp_path
    assert "Write the docs" in git(root / "main", "show", f"{REF}:process/tasks.md")


# -- exit codes through main ------------------------------------------------------------------


def assert_one_error_line(code: int, out: str, err: str) -> None:
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1


def test_errors_exit_1_with_one_line(
    ready: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tip(ready)
    code, out, err = run_main(capsys, "-C", str(ready), "get", "99")
    assert_one_error_line(code, out, err)
    assert "#099" in err

    code, out, err = run_main(capsys, "-C", str(ready), "status", "set", "1", "FINISHED")
    assert_one_error_line(code, out, err)
    for name in STATUS_NAMES:
        assert name in err

    code, out, err = run_main(
        capsys, "-C", str(ready), "status", "set", "1", "DONE", "--expect", "BLOCKED"
    )
    assert_one_error_line(code, out, err)
    assert "status is TODO, not BLOCKED" in err

    code, out, err = run_main(capsys, "-C", str(ready), "create", "bad\x07title")
    assert_one_error_line(code, out, err)
    code, out, err = run_main(
        capsys, "-C", str(ready), "create", "x", "--spec-file", str(tmp_path / "nope.md")
    )
    assert_one_error_line(code, out, err)
    assert tip(ready) == before

    plain = tmp_path / "plain"
    plain.mkdir()
    code, out, err = run_main(capsys, "-C", str(plain), "list")
    assert_one_error_line(code, out, err)
    assert "not a git repository" in err
    code, out, err = run_main(capsys, "-C", str(tmp_path / "missing"), "list")
    assert_one_error_line(code, out, err)


def test_not_initialized_exits_1_and_says_init(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "-C", str(repo), "list")
    assert_one_error_line(code, out, err)
    assert "git tasks init" in err


def test_config_and_contention_errors_exit_1(
    ready: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(ready, "config", "tasks.ref", "refs/heads/x")
    code, out, err = run_main(capsys, "-C", str(ready), "list")
    assert_one_error_line(code, out, err)
    assert "tasks.ref" in err
    git(ready, "config", "--unset", "tasks.ref")

    git(ready, "config", "tasks.retryTimeout", "0.2")
    lock = ready / ".git" / "refs" / "tasks" / "main.lock"
    lock.touch()
    started = time.monotonic()
    code, out, err = run_main(capsys, "-C", str(ready), "status", "set", "1", "DONE")
    assert time.monotonic() - started < 5
    assert_one_error_line(code, out, err)
    assert f"rm '{lock}'" in err or str(lock.resolve()) in err
    lock.unlink()
    assert run_main(capsys, "-C", str(ready), "status", "set", "1", "DONE")[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["status", "set", "1"],
        ["status", "frobnicate"],
        ["list", "--bogus"],
        ["get"],
        ["edit", "1"],
        ["create"],
        ["delete", "1"],
        ["log", "-n", "0"],
        [],
    ],
    ids=lambda args: " ".join(args) or "no-args",
)
def test_usage_errors_exit_2(
    ready: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    before = tip(ready)
    code, out, err = run_main(capsys, "-C", str(ready), *args)
    assert code == 2, (out, err)
    assert err
    assert "Traceback" not in err
    assert tip(ready) == before


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["init"],
        ["list"],
        ["get"],
        ["status"],
        ["status", "get"],
        ["status", "set"],
        ["create"],
        ["edit"],
        ["delete"],
        ["spec"],
        ["log"],
        ["demo"],
    ],
    ids=lambda args: " ".join(args) or "git-tasks",
)
def test_dash_h_prints_help(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run_main(capsys, *args, "-h")
    assert code == 0, err
    assert out.startswith(f"Usage: git tasks {' '.join(args)}".rstrip())
    assert err == ""
    assert run_main(capsys, *args, "--help")[1] == out


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_main(capsys, "-h")[1]
    for command in ("init", "list", "get", "status", "create", "edit", "delete", "spec", "log"):
        assert re.search(rf"^  {command}\s", out, re.MULTILINE), command
    status_help = run_main(capsys, "status", "set", "-h")[1]
    for name in STATUS_NAMES:
        assert name in status_help


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == 0
    assert out == f"git tasks (tasksync) {tasksync.__version__}\n"


# -- real processes ---------------------------------------------------------------------------


def subprocess_env() -> dict[str, str]:
    """The sealed environment with the interpreter's scripts directory first on PATH."""
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=subprocess_env(), capture_output=True, text=True, check=False
    )


def test_git_tasks_end_to_end(repo: Path, worktree: Path) -> None:
    assert (Path(sys.executable).parent / "git-tasks").exists()
    done = run(repo, "git", "tasks", "init")
    assert (done.returncode, done.stdout) == (0, f"Initialized the task store on {REF}\n"), (
        done.stderr
    )
    done = run(worktree, "git", "tasks", "create", "End to end", "-d", "through git")
    assert (done.returncode, done.stdout) == (0, "#001\n"), done.stderr
    done = run(repo, "git", "tasks", "status", "set", "1", "IN-PROGRESS")
    assert (done.returncode, done.stdout) == (0, "#001 IN-PROGRESS\n"), done.stderr

    done = run(worktree, "git", "tasks", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {
            "id": "#001",
            "title": "End to end",
            "status": "IN-PROGRESS",
            "spec_path": "process/tasks/001-end-to-end.md",
            "description": "through git",
        }
    ]
    assert tasks_md(worktree) == (
        "# Tasks\n\n- [+] End to end [#001](process/tasks/001-end-to-end.md)\n"
    )

    done = run(repo, "git", "tasks", "get", "99")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: task #099 not found")
    assert done.stderr.count("\n") == 1
    done = run(repo, "git", "tasks", "status", "set", "1", "bogus")
    assert done.returncode == 1
    assert all(name in done.stderr for name in STATUS_NAMES)
    assert run(repo, "git", "tasks", "nope").returncode == 2
    done = run(repo, "git", "tasks", "-h")
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: git tasks")

    assert git(repo, "status", "--porcelain") == ""
    assert git(worktree, "status", "--porcelain") == ""
    assert int(git(repo, "rev-list", "--count", REF)) == 3


def test_python_dash_m_tasksync(ready: Path) -> None:
    done = run(ready, sys.executable, "-m", "tasksync", "--version")
    assert (done.returncode, done.stdout) == (0, f"git tasks (tasksync) {tasksync.__version__}\n")
    done = run(ready.parent, sys.executable, "-m", "tasksync", "-C", str(ready), "list", "--json")
    assert done.returncode == 0, done.stderr
    assert [t["id"] for t in json.loads(done.stdout)] == ["#001", "#002"]
    done = run(ready, sys.executable, "-m", "tasksync", "status", "set", "2", "BLOCKED")
    assert (done.returncode, done.stdout) == (0, "#002 BLOCKED\n")
    assert TaskStore.open(ready).get(2).status is Status.BLOCKED
    done = run(ready, sys.executable, "-m", "tasksync", "get", "42")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert run(ready, sys.executable, "-m", "tasksync", "bogus").returncode == 2


def test_the_process_runs_exit_handlers_and_waits_for_threads_before_it_ends(
    ready: Path, tmp_path: Path
) -> None:
    # The entry point ends the process without finalizing modules, but as Python would in
    # every other way: a thread still working and an exit handler both get to finish.
    marks = tmp_path / "marks"
    code = (
        "import atexit, pathlib, sys, threading, time\n"
        f"marks = pathlib.Path({str(marks)!r})\n"
        "atexit.register(lambda: (marks / 'exit-handler').touch())\n"
        "def late():\n"
        "    time.sleep(0.2)\n"
        "    (marks / 'thread').touch()\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['git-tasks', 'status', 'set', '1', 'DONE']\n"
        "from tasksync.cli import run\n"
        "run()\n"
    )
    marks.mkdir()
    done = run(ready, sys.executable, "-c", code)
    assert (done.returncode, done.stdout, done.stderr) == (0, "#001 DONE\n", "")
    assert sorted(p.name for p in marks.iterdir()) == ["exit-handler", "thread"]
    done = run(ready, sys.executable, "-c", code.replace("'1', 'DONE'", "'77', 'DONE'"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: task #077 not found")


def test_the_process_ends_with_an_idle_thread_pool_left_open(ready: Path) -> None:
    # Python tells idle concurrent.futures workers to stop before it joins threads at exit;
    # so must the entry point, or a program that left a pool open would never end.
    code = (
        "import concurrent.futures, sys\n"
        "pool = concurrent.futures.ThreadPoolExecutor(1)\n"
        "pool.submit(lambda: None).result()\n"
        "sys.argv = ['git-tasks', 'status', 'get', '1']\n"
        "from tasksync.cli import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ready,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "TODO\n", "")


def test_commands_defined_in_other_modules_are_listed_for_loading() -> None:
    from importlib import import_module

    from tasksync.cli import LAZY_COMMANDS

    for module in set(LAZY_COMMANDS.values()):
        import_module(f"tasksync.{module}")
    for name, command in cli.commands.items():
        assert command.callback is not None
        module = command.callback.__module__.rsplit(".", 1)[1]
        assert LAZY_COMMANDS.get(name, "cli") == module, name


def test_a_one_shot_command_does_not_import_the_other_command_modules() -> None:
    code = (
        "import sys, tasksync.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('tasksync.cli_')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_package_of_the_source_is_installed() -> None:
    """A non-editable install (the README's demo command) ships exactly the listed packages."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    listed = re.search(r"^packages = \[(.*)\]$", text, re.MULTILINE)
    assert listed is not None
    packages = set(re.findall(r'"([^"]+)"', listed.group(1)))
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "tasksync").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert packages == found
