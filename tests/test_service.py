"""``TaskService``: the markdown backend's service on the tasks ref, against FORMAT.md's rules;
and the ``git tasks`` commands and JSON that docs/integration.md shows non-Python callers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import git, tasks_md

from tasksync import (
    AmbiguousTaskId,
    InvalidStatus,
    InvalidTitle,
    SpecContent,
    SpecNotFound,
    Status,
    TaskExists,
    TaskId,
    TaskNotFound,
    TaskService,
    TaskStore,
    TaskSyncError,
)
from tasksync.cli import cli

REF = "refs/tasks/main"
ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = (ROOT / "docs" / "integration.md").read_text(encoding="utf-8")
STATUS_NAMES = ("TODO", "IN-PROGRESS", "IN-REVIEW", "DONE", "BLOCKED", "CLOSED")
TASK_KEYS = {"id", "title", "status", "spec_path", "description"}

# An index as the markdown backend's users have it: prose, a fenced example, every checkbox,
# description bullets, an old relative link, a URL link and text after a link.
LEGACY = (
    "# Tasks\n"
    "\n"
    "Prose the team wrote.\n"
    "\n"
    "```\n"
    "- [ ] Example in a fence [#900](process/tasks/900-example.md)\n"
    "```\n"
    "\n"
    "- [ ] Enhance task sync [#001](process/tasks/001-enhance-task-sync.md)\n"
    "- [+] Add Google Tasks backend [#002](process/tasks/002-add-google-tasks-backend.md)\n"
    "  - first description bullet\n"
    "  - second description bullet\n"
    "- [x] Add BLOCKED status [#003](process/tasks/003-add-blocked-status.md)\n"
    "- [X] Upper-case done [#004](tasks/004-upper-case-done.md)\n"
    "- [!] Closed one [#005](process/tasks/005-closed-one.md)\n"
    "- [~] Blocked one [#006](process/tasks/006-blocked-one.md)\n"
    "- [-] In review [#007](https://example.com/tasks/7) <!-- keep -->\n"
)
LEGACY_SPECS = {
    "process/tasks/001-enhance-task-sync.md": (
        "# Task #001: Enhance task sync\n\n## Context\n\nMake sessions agree\n"
    ),
    "process/tasks/002-add-google-tasks-backend.md": (
        "# Task: Add Google Tasks backend\n\n## Requirements\n\n- OAuth\n"
    ),
    "process/tasks/004-upper-case-done.md": "# Upper-case done\n",
}
MD_STYLE = (
    "# Tasks\n"
    "\n"
    "- [ ] First [md#001](process/tasks/001-first.md)\n"
    "- [ ] Second [md#002](process/tasks/002-second.md)\n"
)


def put_files(repo: Path, files: dict[str, str]) -> str:
    """Commit ``files`` as the whole tree of a new tip of the tasks ref, with plain git."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "service-test-index")}

    def run(*args: str, stdin: str = "") -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=repo,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    run("read-tree", "--empty")
    for path, text in files.items():
        blob = run("hash-object", "-w", "--stdin", stdin=text)
        run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    tree = run("write-tree")
    parent = git(repo, "rev-parse", "-q", "--verify", REF, check=False).strip()
    commit = run("commit-tree", tree, *(["-p", parent] if parent else []), "-m", "import")
    run("update-ref", REF, commit, *([parent] if parent else []))
    return commit


def ref_state(repo: Path) -> tuple[str, str]:
    """The ref's commit and ``process/tasks.md`` on it, read with the git CLI."""
    return git(repo, "rev-parse", REF).strip(), tasks_md(repo)


@pytest.fixture
def legacy(repo: Path) -> TaskService:
    put_files(repo, {"process/tasks.md": LEGACY, **LEGACY_SPECS})
    return TaskService(workspace_path=repo)


@pytest.fixture
def md_style(repo: Path) -> TaskService:
    put_files(repo, {"process/tasks.md": MD_STYLE})
    return TaskService(workspace_path=repo)


# -- reads ----------------------------------------------------------------------------------------


def test_list_hides_done_and_closed_unless_all(legacy: TaskService) -> None:
    assert [(str(t.id), t.status.value) for t in legacy.list_tasks()] == [
        ("#001", "TODO"),
        ("#002", "IN-PROGRESS"),
        ("#006", "BLOCKED"),
        ("#007", "IN-REVIEW"),
    ]
    every = legacy.list_tasks(all=True)
    assert [str(t.id) for t in every] == [f"#00{n}" for n in range(1, 8)]
    assert every[3].status is Status.DONE  # `[X]` reads as DONE
    assert "#900" not in {str(t.id) for t in every}  # a fenced example is no task


def test_list_by_status_includes_finished_tasks_asked_for(legacy: TaskService) -> None:
    assert [str(t.id) for t in legacy.list_tasks(status="DONE")] == ["#003", "#004"]
    assert [str(t.id) for t in legacy.list_tasks(status="CLOSED")] == ["#005"]
    assert [str(t.id) for t in legacy.list_tasks(status="in-progress")] == ["#002"]
    with pytest.raises(InvalidStatus) as caught:
        legacy.list_tasks(status="FINISHED")
    assert all(name in str(caught.value) for name in STATUS_NAMES)


@pytest.mark.parametrize("form", ["2", "02", "002", "#2", "#002", "task#2", "task#002"])
def test_every_input_form_finds_the_task(legacy: TaskService, form: str) -> None:
    task = legacy.get_task(form)
    assert task is not None
    assert (task.id, task.title) == (TaskId(2), "Add Google Tasks backend")
    assert legacy.get_task_status(form) == "IN-PROGRESS"


@pytest.mark.parametrize("form", ["md#2", "md#002", "2", "002", "#2", "task#2"])
def test_every_input_form_finds_an_md_style_task(md_style: TaskService, form: str) -> None:
    task = md_style.get_task(form)
    assert task is not None
    assert (str(task.id), task.title) == ("md#002", "Second")


def test_get_task_reads_title_status_spec_path_and_description(legacy: TaskService) -> None:
    first = legacy.get_task(1)
    assert first is not None
    assert (first.title, first.spec_path, first.description) == (
        "Enhance task sync",
        "process/tasks/001-enhance-task-sync.md",
        "Make sessions agree",
    )
    second = legacy.get_task(TaskId(2))
    assert second is not None
    assert second.description == "first description bullet\nsecond description bullet"
    old_link = legacy.get_task("4")
    assert old_link is not None
    assert old_link.spec_path == "process/tasks/004-upper-case-done.md"
    assert [legacy.get_task_status(n) for n in range(1, 8)] == [
        "TODO",
        "IN-PROGRESS",
        "DONE",
        "DONE",
        "CLOSED",
        "BLOCKED",
        "IN-REVIEW",
    ]


def test_spec_path_and_content(legacy: TaskService) -> None:
    assert legacy.get_task_spec_path("task#001") == "process/tasks/001-enhance-task-sync.md"
    found = legacy.get_task_spec_content(1)
    assert isinstance(found, SpecContent)
    assert found == (
        LEGACY_SPECS["process/tasks/001-enhance-task-sync.md"],
        "process/tasks/001-enhance-task-sync.md",
        legacy.get_task(1),
    )
    content, spec_path, task = legacy.get_task_spec_content("4")
    assert (content, spec_path, task.title) == (
        "# Upper-case done\n",
        "process/tasks/004-upper-case-done.md",
        "Upper-case done",
    )
    with pytest.raises(SpecNotFound):  # the link is a URL
        legacy.get_task_spec_path(7)
    with pytest.raises(SpecNotFound):  # the file is not on the ref
        legacy.get_task_spec_content(3)
    with pytest.raises(TaskNotFound):
        legacy.get_task_spec_path(99)


# -- unknown ids and invalid statuses write nothing ------------------------------------------


@pytest.mark.parametrize("unknown", ["99", "#099", "task#99", "md#99", "abc"])
def test_unknown_id_leaves_the_ref_identical(repo: Path, legacy: TaskService, unknown: str) -> None:
    before = ref_state(repo)
    assert legacy.get_task(unknown) is None
    assert legacy.get_task_status(unknown) is None
    assert legacy.delete_task(unknown) is False
    assert legacy.delete_task(unknown, force=True) is False
    with pytest.raises(TaskSyncError) as caught:
        legacy.set_task_status(unknown, "DONE")
    if unknown != "abc":
        assert isinstance(caught.value, TaskNotFound)
        assert "#099" in str(caught.value)
    assert ref_state(repo) == before


def test_invalid_status_lists_the_valid_names_and_writes_nothing(
    repo: Path, legacy: TaskService
) -> None:
    before = ref_state(repo)
    with pytest.raises(InvalidStatus) as caught:
        legacy.set_task_status(1, "FINISHED")
    assert all(name in str(caught.value) for name in STATUS_NAMES)
    assert caught.value.valid == STATUS_NAMES
    assert ref_state(repo) == before


# -- writes -------------------------------------------------------------------------------------


def test_set_task_status_rewrites_only_the_checkbox(repo: Path, legacy: TaskService) -> None:
    legacy.set_task_status("1", "DONE")
    assert tasks_md(repo) == LEGACY.replace("- [ ] Enhance", "- [x] Enhance")
    assert legacy.get_task_status(1) == "DONE"
    assert [str(t.id) for t in legacy.list_tasks()] == ["#002", "#006", "#007"]
    legacy.set_task_status("task#4", "in_review")
    assert "- [-] Upper-case done [#004](tasks/004-upper-case-done.md)\n" in tasks_md(repo)
    before = ref_state(repo)
    legacy.set_task_status(4, "IN-REVIEW")  # the status it has: no commit
    assert ref_state(repo) == before


@pytest.mark.parametrize(
    "heading",
    ["# Task #157: Spec title", "# Task md#157: Spec title", "# Task: Spec title", "# Spec title"],
)
def test_create_task_from_each_heading_form(
    repo: Path, legacy: TaskService, tmp_path: Path, heading: str
) -> None:
    body = "\n\n## Context\n\nWhy it matters\n\n## Requirements\n\n- keep this\n"
    spec_file = tmp_path / "new-spec.md"
    spec_file.write_text(heading + body, encoding="utf-8")

    task = legacy.create_task(spec_file)
    assert (task.id, task.title, task.status) == (TaskId(8), "Spec title", Status.TODO)
    assert task.description == "Why it matters"
    assert task.spec_path == "process/tasks/008-spec-title.md"
    content = legacy.get_task_spec_content(8).content
    assert content == "# Task #008: Spec title" + body
    assert tasks_md(repo) == LEGACY + "- [ ] Spec title [#008](process/tasks/008-spec-title.md)\n"


def test_create_task_keeps_crlf_and_reads_relative_paths_from_the_workspace(
    repo: Path, legacy: TaskService
) -> None:
    (repo / "notes").mkdir()
    (repo / "notes" / "idea.md").write_bytes(b"# Task: Windows spec\r\n\r\n## Context\r\n\r\nx\r\n")
    from_subdir = TaskService(workspace_path=repo / "notes")
    assert from_subdir.get_workspace_path() == str(repo)
    task = from_subdir.create_task("notes/idea.md")
    assert task.description == "x"
    assert legacy.get_task_spec_content(task.id).content == (
        "# Task #008: Windows spec\r\n\r\n## Context\r\n\r\nx\r\n"
    )


def test_create_task_naming_an_existing_id_refuses_unless_forced(
    repo: Path, legacy: TaskService, tmp_path: Path
) -> None:
    spec_file = tmp_path / "copied.md"
    spec_file.write_text("# Task #002: A copy\n\n## Context\n\nagain\n", encoding="utf-8")
    before = ref_state(repo)
    with pytest.raises(TaskExists) as caught:
        legacy.create_task(spec_file)
    assert (caught.value.task_id, caught.value.title) == ("#002", "Add Google Tasks backend")
    assert "force=True" in str(caught.value)
    assert ref_state(repo) == before

    task = legacy.create_task(spec_file, force=True)
    assert (str(task.id), task.title) == ("#008", "A copy")
    assert legacy.get_task(2) == legacy.get_task("#002")  # the task it named is untouched
    assert legacy.get_task_spec_content(2).content.startswith("# Task: Add Google Tasks backend")


def test_create_task_from_a_file_without_title_or_unreadable_writes_nothing(
    repo: Path, legacy: TaskService, tmp_path: Path
) -> None:
    before = ref_state(repo)
    headless = tmp_path / "headless.md"
    headless.write_text("no heading\n\n## Context\n\ntext\n", encoding="utf-8")
    with pytest.raises(InvalidTitle):
        legacy.create_task(headless)
    empty_title = tmp_path / "empty.md"
    empty_title.write_text("# Task #010: \n", encoding="utf-8")
    with pytest.raises(InvalidTitle):
        legacy.create_task(empty_title)
    with pytest.raises(TaskSyncError, match="cannot read the spec file"):
        legacy.create_task(tmp_path / "missing.md")
    latin1 = tmp_path / "latin1.md"
    latin1.write_bytes("# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(TaskSyncError, match="UTF-8"):
        legacy.create_task(latin1)
    assert ref_state(repo) == before


def test_create_from_title_and_description_writes_the_spec(repo: Path, legacy: TaskService) -> None:
    task = legacy.create_task_from_title_and_description("Write the docs", "For every command")
    assert (str(task.id), task.status, task.description) == (
        "#008",
        Status.TODO,
        "For every command",
    )
    assert legacy.get_task_spec_content("8").content == (
        "# Task #008: Write the docs\n\n## Context\n\nFor every command\n\n"
    )
    assert tasks_md(repo) == (
        LEGACY + "- [ ] Write the docs [#008](process/tasks/008-write-the-docs.md)\n"
    )


def test_new_ids_follow_the_files_md_style(repo: Path, md_style: TaskService) -> None:
    task = md_style.create_task_from_title_and_description("Third", "")
    assert str(task.id) == "md#003"
    assert tasks_md(repo) == MD_STYLE + "- [ ] Third [md#003](process/tasks/003-third.md)\n"
    assert md_style.get_task_spec_content("3").content.startswith("# Task md#003: Third\n")


def test_delete_removes_line_description_and_spec(repo: Path, legacy: TaskService) -> None:
    spec = "process/tasks/002-add-google-tasks-backend.md"
    assert git(repo, "cat-file", "-t", f"{REF}:{spec}").strip() == "blob"
    assert legacy.delete_task("#2") is True
    assert tasks_md(repo) == LEGACY.replace(
        "- [+] Add Google Tasks backend [#002](process/tasks/002-add-google-tasks-backend.md)\n"
        "  - first description bullet\n"
        "  - second description bullet\n",
        "",
    )
    assert git(repo, "cat-file", "-t", f"{REF}:{spec}", check=False) == ""
    assert legacy.get_task(2) is None
    before = ref_state(repo)
    assert legacy.delete_task(2) is False
    assert ref_state(repo) == before


def test_from_store_and_the_workspace_path(repo: Path, worktree: Path) -> None:
    store = TaskStore.open(worktree)
    store.init()
    service = TaskService.from_store(store)
    assert service.store is store
    assert service.get_workspace_path() == str(worktree)
    created = service.create_task_from_title_and_description("Shared", "")
    assert TaskService(workspace_path=repo).get_task(created.id) == created


# -- an existing command, with only its import switched ------------------------------------------
#
# Written as a command of the markdown backend was: ids and statuses as strings, `None` for an
# unknown task, the spec read through the service. Only `TaskService` comes from tasksync.


def tasks_status_set_command(workspace: Path, task_id: str, status: str) -> str:
    service = TaskService(workspace_path=workspace)
    previous = service.get_task_status(task_id)
    if previous is None:
        return f"Task {task_id} not found"
    service.set_task_status(task_id, status)
    return f"Status of task {task_id} changed from {previous} to {status}"


def tasks_list_command(workspace: Path, show_all: bool = False) -> list[str]:
    service = TaskService(workspace_path=workspace)
    return [f"{task.id}: {task.title}" for task in service.list_tasks(all=show_all)]


def tasks_spec_command(workspace: Path, task_id: str) -> str:
    service = TaskService(workspace_path=workspace)
    if service.get_task(task_id) is None:
        return f"Task {task_id} not found"
    data = service.get_task_spec_content(task_id)
    return f"{data.spec_path}\n{data.content}"


def test_an_existing_command_works_with_the_import_switched(repo: Path, worktree: Path) -> None:
    store = TaskStore.open(repo)
    store.init()
    service = TaskService(workspace_path=repo)
    service.create_task_from_title_and_description("Enhance task sync", "Make sessions agree")
    service.create_task_from_title_and_description("Write the docs", "")

    # A session workspace changes a status; the main workspace sees it on the next call.
    assert tasks_status_set_command(worktree, "task#001", "IN-PROGRESS") == (
        "Status of task task#001 changed from TODO to IN-PROGRESS"
    )
    assert tasks_status_set_command(repo, "2", "DONE") == (
        "Status of task 2 changed from TODO to DONE"
    )
    assert tasks_status_set_command(repo, "42", "DONE") == "Task 42 not found"
    assert tasks_list_command(repo) == ["#001: Enhance task sync"]
    assert tasks_list_command(worktree, show_all=True) == [
        "#001: Enhance task sync",
        "#002: Write the docs",
    ]
    assert tasks_spec_command(worktree, "1") == (
        "process/tasks/001-enhance-task-sync.md\n"
        "# Task #001: Enhance task sync\n\n## Context\n\nMake sessions agree\n\n"
    )
    assert tasks_md(repo) == (
        "# Tasks\n"
        "\n"
        "- [+] Enhance task sync [#001](process/tasks/001-enhance-task-sync.md)\n"
        "- [x] Write the docs [#002](process/tasks/002-write-the-docs.md)\n"
    )
    assert git(repo, "status", "--porcelain") == ""  # no file in any working tree
    assert git(worktree, "status", "--porcelain") == ""


# -- non-Python callers: the commands, JSON and exit codes of docs/integration.md ---------------


def doc_block(language: str, after: str) -> str:
    """The first fenced ``language`` block of integration.md after the text ``after``."""
    start = INTEGRATION.index(after)
    found = re.compile(rf"^```{language}\n(.*?)^```$", re.M | re.S).search(INTEGRATION, start)
    assert found is not None, f"no ```{language} block after {after!r}"
    return found.group(1)


def invoke(repo: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["-C", str(repo), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def documented(repo: Path) -> Path:
    """The store the JSON examples of integration.md show."""
    store = TaskStore.open(repo)
    store.init()
    store.create("Enhance task sync", description="Make sessions agree")
    store.set_status(1, Status.IN_PROGRESS)
    return repo


def test_the_documented_json_is_what_the_commands_print(documented: Path) -> None:
    task = json.loads(doc_block("json", "A task object"))
    spec = json.loads(doc_block("json", "A spec ("))
    assert json.loads(invoke(documented, "get", "1", "--json")) == task
    assert json.loads(invoke(documented, "list", "--json")) == [task]
    assert json.loads(invoke(documented, "spec", "1", "--json")) == spec
    assert json.loads(invoke(documented, "status", "set", "1", "IN-PROGRESS", "--json")) == task
    assert json.loads(invoke(documented, "delete", "1", "--force", "--json")) == task
    assert json.loads(invoke(documented, "list", "--all", "--json")) == []
    ts = doc_block("ts", "In TypeScript")
    for key in TASK_KEYS:
        assert f"  {key}: " in ts
    assert "content: string" in ts


def subprocess_env() -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=cwd,
        env=subprocess_env(),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_exit_codes_a_caller_reads(documented: Path) -> None:
    done = run(documented, "git", "tasks", "get", "1", "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["status"] == "IN-PROGRESS"
    done = run(documented, "git", "tasks", "status", "set", "1", "DONE")
    assert (done.returncode, done.stdout, done.stderr) == (0, "#001 DONE\n", "")
    before = ref_state(documented)
    for args, name in (
        (("get", "157", "--json"), "#157"),
        (("status", "set", "1", "FINISHED"), ""),
    ):
        done = run(documented, "git", "tasks", *args)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.startswith("error: ")
        assert done.stderr.count("\n") == 1
        assert name in done.stderr
    assert run(documented, "git", "tasks", "status", "set", "1").returncode == 2
    assert ref_state(documented) == before


@pytest.mark.skipif(shutil.which("jq") is None, reason="the shell example uses jq")
def test_the_shell_example_runs(documented: Path) -> None:
    script = doc_block("sh", "### From a shell")
    run(documented, "git", "tasks", "create", "Write the docs")
    run(documented, "git", "tasks", "status", "set", "1", "TODO")

    first = run(documented, "sh", "-c", script)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == (
        "task #001: Enhance task sync\n"
        "claimed\n"
        "#001 IN-PROGRESS Enhance task sync\n"
        "#002 TODO Write the docs\n"
    )
    second = run(documented, "sh", "-c", script)
    assert second.returncode == 0
    assert "not claimed\n" in second.stdout
    assert second.stderr.startswith("error: task #001: status is IN-PROGRESS, not TODO")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_node_example_runs(documented: Path) -> None:
    script = doc_block("js", "### From Node.js")
    done = run(documented, "node", "--input-type=module", "-", stdin=script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "1 open tasks\nnot found: error: task #157 not found; "
        "`git tasks list --all` shows every task\n#001 is DONE\n"
    )
    assert TaskService(workspace_path=documented).get_task_status(1) == "DONE"


def test_a_repeated_id_reads_as_its_first_task_as_the_old_service_found_it(
    store: TaskStore,
) -> None:
    store.create("First")
    base = store.index_text()
    store.edit_index(base, base + "- [x] Second copy [#001](process/tasks/001-second-copy.md)\n")
    service = TaskService.from_store(store)
    task = service.get_task("1")
    assert task is not None and task.title == "First"
    assert service.get_task_status("#001") == "TODO"
    with pytest.raises(AmbiguousTaskId):
        service.set_task_status("1", "DONE")
