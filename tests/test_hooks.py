"""Push hooks: real ``git push`` runs against a bare repository on disk, hooks installed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import bare_with_main, git, run_main
from test_docs import MAN_TEXT, USAGE, man_entries

from tasksync.cli import cli
from tasksync.errors import HookError
from tasksync.hooks import (
    IN_TREE_KEY,
    STALE_KEY,
    RefUpdate,
    parse_push_lines,
    pre_commit_update,
)
from tasksync.store import Repo
from tasksync.verify import check_store_commit, conflict_markers

REF = "refs/tasks/main"
TRACKING = "refs/tasksync/remotes/origin/main"
ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "process/tasks.md": (
        "# Tasks\n\n"
        "- [ ] One [#001](process/tasks/001-one.md)\n"
        "- [ ] Two [#002](process/tasks/002-two.md)\n"
        "- [ ] Elsewhere [#003](https://example.com/tasks/3)\n"
    ),
    "process/tasks/001-one.md": "# Task #001: One\n\n## Context\n\nFirst\n",
    "process/tasks/002-two.md": "Two\n===\n\n## Context\n\nSecond\n",
}

Files = Mapping[str, str | tuple[str, str]]


def run_git(
    cwd: Path, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def tasks_commit(repo: Path, files: Files, parent: str | None = None, message: str = "t") -> str:
    """A commit whose tree holds ``files`` (text, or (mode, text)), made with plain git."""
    index = {"GIT_INDEX_FILE": str(repo / ".git" / "tasks-test-index")}
    Path(index["GIT_INDEX_FILE"]).unlink(missing_ok=True)
    for path, value in files.items():
        mode, text = ("100644", value) if isinstance(value, str) else value
        if mode == "160000":
            oid = text
        else:
            oid = run_git(repo, "hash-object", "-w", "--stdin", stdin=text).stdout.strip()
        entry = f"{mode},{oid},{path}"
        done = run_git(repo, "update-index", "--add", "--cacheinfo", entry, env=index)
        assert done.returncode == 0, done.stderr
    tree = run_git(repo, "write-tree", env=index).stdout.strip()
    parents = ["-p", parent] if parent else []
    return git(repo, "commit-tree", tree, *parents, "-m", message).strip()


def set_ref(repo: Path, ref: str, oid: str) -> None:
    git(repo, "update-ref", ref, oid)


def push(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_git(repo, "push", "origin", *args)


def remote_tip(server: Path, ref: str) -> str | None:
    done = run_git(server, "rev-parse", "--verify", "--quiet", ref)
    return done.stdout.strip() or None


def invoke(repo: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["-C", str(repo), *args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def server(tmp_path: Path) -> Path:
    """A bare repository with a main branch (no tasks ref yet)."""
    return bare_with_main(tmp_path, "server.git")


def clone(server: Path, name: str) -> Path:
    """A clone of the server as on another machine: its own tasks ref, not a session of it."""
    path = server.parent / name
    git(server.parent, "clone", "-q", str(server), str(path))
    git(path, "config", "tasks.hub", "none")
    return path


@pytest.fixture
def local(server: Path, on_path: None) -> Path:
    """A clone of ``server`` with tasksync's pre-push hook installed."""
    path = clone(server, "local")
    code, out, _ = invoke(path, "hooks", "install")
    assert code == 0, out
    return path


# -- the tasks ref ----------------------------------------------------------------------------


def test_valid_tasks_ref_is_pushed_and_fast_forwards_accepted(local: Path, server: Path) -> None:
    first = tasks_commit(local, GOOD)
    set_ref(local, REF, first)
    done = push(local, REF)
    assert done.returncode == 0, done.stderr
    assert "error:" not in done.stderr and "warning:" not in done.stderr
    assert remote_tip(server, REF) == first

    second = tasks_commit(local, {**GOOD, "process/tasks/001-one.md": "# One, edited\n"}, first)
    set_ref(local, REF, second)
    done = push(local, REF)
    assert done.returncode == 0, done.stderr
    assert remote_tip(server, REF) == second


def test_rewound_tasks_ref_is_refused_even_forced(local: Path, server: Path) -> None:
    first = tasks_commit(local, GOOD)
    second = tasks_commit(local, {**GOOD, "process/tasks/002-two.md": "# Two\n"}, first)
    set_ref(local, REF, second)
    assert push(local, REF).returncode == 0
    set_ref(local, REF, first)

    done = push(local, "--force", REF)
    assert done.returncode == 1
    assert f"error: {REF}: not a fast-forward of origin's {second[:12]}" in done.stderr
    assert "`git tasks sync origin`" in done.stderr
    assert remote_tip(server, REF) == second


def test_tasks_ref_that_the_remote_moved_is_refused(local: Path, server: Path) -> None:
    first = tasks_commit(local, GOOD)
    set_ref(local, REF, first)
    assert push(local, REF).returncode == 0
    other = clone(server, "other")
    git(other, "fetch", "-q", "origin", f"{REF}:{REF}")
    theirs = tasks_commit(other, {**GOOD, "process/tasks/001-one.md": "# Theirs\n"}, first)
    set_ref(other, REF, theirs)
    assert push(other, REF).returncode == 0
    ours = tasks_commit(local, {**GOOD, "process/tasks/002-two.md": "# Ours\n"}, first)
    set_ref(local, REF, ours)

    done = push(local, "--force", REF)  # the remote's commit is not here: cannot tell
    assert done.returncode == 1
    assert f"origin has {theirs[:12]}, which is not here" in done.stderr
    assert "run `git tasks sync origin`" in done.stderr

    git(local, "fetch", "-q", "origin", f"{REF}:{TRACKING}")  # now it can tell
    done = push(local, "--force", REF)
    assert done.returncode == 1
    assert "not a fast-forward" in done.stderr
    assert remote_tip(server, REF) == theirs


def test_deleting_the_tasks_ref_is_refused(local: Path, server: Path) -> None:
    first = tasks_commit(local, GOOD)
    set_ref(local, REF, first)
    assert push(local, REF).returncode == 0
    done = push(local, "--delete", REF)
    assert done.returncode == 1
    assert f"error: {REF}: refusing to delete the tasks ref on origin" in done.stderr
    assert "`git tasks sync origin`" in done.stderr
    assert remote_tip(server, REF) == first


BAD_TREES: dict[str, tuple[Files, str]] = {
    "duplicate id": (
        {
            **GOOD,
            "process/tasks.md": GOOD["process/tasks.md"]
            + "- [ ] One again [#001](process/tasks/001-one.md)\n",
        },
        "duplicate task id: #001 is on lines 3, 6 of process/tasks.md",
    ),
    "conflict marker in a spec": (
        {
            **GOOD,
            "process/tasks/001-one.md": "# One\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> b\n",
        },
        "conflict marker: process/tasks/001-one.md has unresolved conflict markers on lines 2, "
        "4, 6 ('<<<<<<< HEAD' first)",
    ),
    "missing linked spec": (
        {path: text for path, text in GOOD.items() if not path.endswith("002-two.md")},
        "missing spec: #002 links 'process/tasks/002-two.md'",
    ),
    "path outside process": (
        {**GOOD, "src/main.py": "print()\n"},
        "outside process/: src is not a task file",
    ),
    "symlink": (
        {**GOOD, "process/tasks/link.md": ("120000", "001-one.md")},
        "symlink: process/tasks/link.md is a symbolic link",
    ),
    "executable": (
        {**GOOD, "process/tasks/001-one.md": ("100755", "# One\n")},
        "executable: process/tasks/001-one.md has the executable bit",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TREES))
def test_unsound_tasks_tree_is_refused(local: Path, server: Path, case: str) -> None:
    files, rule = BAD_TREES[case]
    set_ref(local, REF, tasks_commit(local, files))
    done = push(local, REF)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith(f"error: {REF}")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {REF}: {rule}")
    assert "git tasks sync origin" in lines[0]
    assert remote_tip(server, REF) is None


def test_check_store_commit_covers_submodules_records_and_markers(repo: Path) -> None:
    handle = Repo.discover(repo)
    assert check_store_commit(handle, tasks_commit(repo, GOOD)) == []
    bad: Files = {
        **GOOD,
        "process/vendor": ("160000", "1" * 40),
        ".tasksync/records.json": "{not json",
        ".tasksync/other.json": "{}",
        "process/tasks.md": GOOD["process/tasks.md"] + ">>>>>>> theirs\n",
    }
    problems = check_store_commit(handle, tasks_commit(repo, bad))
    kinds = sorted(problem.split(":", 1)[0] for problem in problems)
    assert kinds == [
        "conflict marker",
        "outside process/",
        "submodule",
        "unreadable records",
    ], problems
    assert check_store_commit(handle, tasks_commit(repo, {"README": "x"}))[-1].startswith(
        "missing index: process/tasks.md"
    )


def test_a_heading_underline_is_not_a_conflict_marker() -> None:
    assert conflict_markers("Title\n=======\n\ntext\n") == []
    assert conflict_markers("<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n") == [
        (1, "<<<<<<< ours"),
        (3, "======="),
        (5, ">>>>>>> theirs"),
    ]


# -- branches ---------------------------------------------------------------------------------


def test_plain_branch_push_passes_silently(local: Path, server: Path) -> None:
    set_ref(local, REF, tasks_commit(local, GOOD))
    git(local, "commit", "-q", "--allow-empty", "-m", "work")
    done = push(local, "main")
    assert done.returncode == 0, done.stderr
    assert "warning:" not in done.stderr and "error:" not in done.stderr
    assert remote_tip(server, "main") == git(local, "rev-parse", "main").strip()


def test_stale_tasks_ref_warns_and_can_refuse(local: Path, server: Path) -> None:
    first = tasks_commit(local, GOOD)
    fetched = tasks_commit(local, {**GOOD, "process/tasks/001-one.md": "# Newer\n"}, first)
    set_ref(local, REF, first)
    set_ref(local, TRACKING, fetched)
    git(local, "commit", "-q", "--allow-empty", "-m", "work")

    done = push(local, "main")
    assert done.returncode == 0, done.stderr
    assert f"warning: {REF} is behind origin's tasks" in done.stderr
    assert "run `git tasks sync origin`" in done.stderr

    git(local, "config", STALE_KEY, "refuse")
    git(local, "commit", "-q", "--allow-empty", "-m", "more work")
    done = push(local, "main")
    assert done.returncode == 1
    assert f"error: {REF} is behind origin's tasks" in done.stderr
    assert remote_tip(server, "main") != git(local, "rev-parse", "main").strip()

    git(local, "config", STALE_KEY, "ignore")
    done = push(local, "main")
    assert done.returncode == 0, done.stderr
    assert "behind" not in done.stderr


def test_a_session_clone_pushing_to_its_hub_is_judged_by_the_hub(
    server: Path, on_path: None
) -> None:
    # A session clone (origin a path on this machine) shares the hub's tasks ref: its own
    # refs/tasks/main and tracking refs say nothing, so no stale warning comes from them.
    session = server.parent / "session"
    git(server.parent, "clone", "-q", str(server), str(session))
    code, out, _ = invoke(session, "hooks", "install")
    assert code == 0, out
    set_ref(session, TRACKING, tasks_commit(session, GOOD))  # would read as "behind"
    git(session, "commit", "-q", "--allow-empty", "-m", "work")
    done = push(session, "main")
    assert done.returncode == 0, done.stderr
    assert "warning:" not in done.stderr


def test_diverged_tasks_ref_warns(local: Path) -> None:
    first = tasks_commit(local, GOOD)
    ours = tasks_commit(local, {**GOOD, "process/tasks/001-one.md": "a\n"}, first)
    theirs = tasks_commit(local, {**GOOD, "process/tasks/001-one.md": "b\n"}, first)
    set_ref(local, REF, ours)
    set_ref(local, TRACKING, theirs)
    git(local, "commit", "-q", "--allow-empty", "-m", "work")
    done = push(local, "main")
    assert done.returncode == 0
    assert f"warning: {REF} has diverged from origin's tasks" in done.stderr


def test_in_tree_tasks_edit_is_refused_and_can_be_allowed(local: Path, server: Path) -> None:
    set_ref(local, REF, tasks_commit(local, GOOD))
    (local / "process").mkdir()
    (local / "process" / "tasks.md").write_text("# Tasks\n- [ ] In tree [#001](x.md)\n")
    git(local, "add", "process/tasks.md")
    git(local, "commit", "-q", "-m", "edit tasks in the tree")
    edit = git(local, "rev-parse", "--short", "HEAD").strip()

    done = push(local, "main")
    assert done.returncode == 1
    assert f"error: refs/heads/main: 1 pushed commit ({edit}) change the in-tree" in done.stderr
    assert f"keeps its tasks on {REF} now" in done.stderr
    assert "`git tasks edit --raw`" in done.stderr

    git(local, "checkout", "-q", "-b", "topic")  # a new branch: commits not on any remote
    done = push(local, "topic")
    assert done.returncode == 1
    assert "error: refs/heads/topic: 1 pushed commit" in done.stderr

    git(local, "config", IN_TREE_KEY, "warn")
    done = push(local, "main")
    assert done.returncode == 0, done.stderr
    assert "warning: refs/heads/main: 1 pushed commit" in done.stderr
    assert remote_tip(server, "main") == git(local, "rev-parse", "main").strip()


def test_removing_the_in_tree_tasks_md_is_allowed(local: Path, server: Path) -> None:
    (local / "process").mkdir()
    (local / "process" / "tasks.md").write_text("# Tasks\n")
    git(local, "add", "process/tasks.md")
    git(local, "commit", "-q", "-m", "tasks in the tree, before the ref existed")
    assert push(local, "main").returncode == 0  # no tasks ref: nothing to protect
    set_ref(local, REF, tasks_commit(local, GOOD))
    git(local, "rm", "-q", "process/tasks.md")
    git(local, "commit", "-q", "-m", "tasks live on the ref now")
    done = push(local, "main")
    assert done.returncode == 0, done.stderr
    assert "error:" not in done.stderr


def test_no_verify_skips_the_hook(local: Path, server: Path) -> None:
    first = tasks_commit(local, GOOD)
    set_ref(local, REF, first)
    assert push(local, REF).returncode == 0
    assert push(local, "--no-verify", "--delete", REF).returncode == 0
    assert remote_tip(server, REF) is None


# -- install and uninstall ----------------------------------------------------------------------


def test_install_and_uninstall_are_idempotent(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-push"
    code, out, _ = invoke(repo, "hooks", "install")
    assert (code, out) == (0, f"Installed the pre-push hook {hook}\n")
    assert os.access(hook, os.X_OK)
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert 'git tasks hooks pre-push "$@"' in text
    code, out, _ = invoke(repo, "hooks", "install")
    assert (code, out) == (0, f"Already installed: the pre-push hook {hook}\n")
    assert hook.read_text() == text

    code, out, _ = invoke(repo, "hooks", "uninstall")
    assert (code, out) == (0, f"Removed the pre-push hook {hook}\n")
    assert not hook.exists()
    code, out, _ = invoke(repo, "hooks", "uninstall")
    assert (code, out) == (0, f"No tasksync pre-push hook in {hook.parent}\n")


def test_install_respects_core_hooks_path(local: Path, server: Path) -> None:
    invoke(local, "hooks", "uninstall")
    git(local, "config", "core.hooksPath", ".githooks")
    code, out, _ = invoke(local / ".", "hooks", "install")
    hook = local / ".githooks" / "pre-push"
    assert (code, out) == (0, f"Installed the pre-push hook {hook}\n")
    assert not (local / ".git" / "hooks" / "pre-push").exists()
    set_ref(local, REF, tasks_commit(local, GOOD))
    assert push(local, REF).returncode == 0
    done = push(local, "--delete", REF)  # the hook in .githooks runs
    assert done.returncode == 1
    assert "refusing to delete" in done.stderr

    elsewhere = server.parent / "shared-hooks"
    git(local, "config", "core.hooksPath", str(elsewhere))
    code, out, _ = invoke(local, "hooks", "install")
    assert (code, out) == (0, f"Installed the pre-push hook {elsewhere / 'pre-push'}\n")


def test_linked_worktree_installs_into_the_common_hooks_dir(repo: Path, worktree: Path) -> None:
    code, out, _ = invoke(worktree, "hooks", "install")
    hook = repo / ".git" / "hooks" / "pre-push"
    assert (code, out) == (0, f"Installed the pre-push hook {hook}\n")
    where = git(worktree, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip()
    assert Path(where) / "pre-push" == hook
    code, out, _ = invoke(repo, "hooks", "install")
    assert out.startswith("Already installed")


FOREIGN = """#!/bin/sh
echo "foreign $1 $2" >> "$(git rev-parse --git-common-dir)/foreign.log"
cat >> "$(git rev-parse --git-common-dir)/foreign.log"
if [ -e "$(git rev-parse --git-common-dir)/veto" ]; then
    echo "foreign hook says no" >&2
    exit 1
fi
"""


def test_existing_hook_is_chained_and_restored(local: Path, server: Path) -> None:
    hooks = local / ".git" / "hooks"
    invoke(local, "hooks", "uninstall")
    (hooks / "pre-push").write_text(FOREIGN)
    (hooks / "pre-push").chmod(0o755)

    code, out, _ = invoke(local, "hooks", "install")
    assert code == 0
    assert out == (
        f"Installed the pre-push hook {hooks / 'pre-push'}\n"
        f"The earlier pre-push hook, kept as {hooks / 'pre-push.tasksync-chained'}, runs first\n"
    )
    assert (hooks / "pre-push.tasksync-chained").read_text() == FOREIGN
    assert invoke(local, "hooks", "install")[1].startswith("Already installed")

    first = tasks_commit(local, GOOD)
    set_ref(local, REF, first)
    assert push(local, REF).returncode == 0
    log = (local / ".git" / "foreign.log").read_text()
    assert log == f"foreign origin {server}\n{REF} {first} {REF} {'0' * 40}\n"

    done = push(local, "--delete", REF)  # the foreign hook passes, ours refuses
    assert done.returncode == 1
    assert "refusing to delete" in done.stderr

    (local / ".git" / "veto").touch()  # ours would pass, the foreign hook refuses
    git(local, "commit", "-q", "--allow-empty", "-m", "work")
    done = push(local, "main")
    assert done.returncode == 1
    assert "foreign hook says no" in done.stderr

    code, out, _ = invoke(local, "hooks", "uninstall")
    assert out == (
        f"Removed the pre-push hook {hooks / 'pre-push'}\n"
        f"Restored the earlier pre-push hook {hooks / 'pre-push'}\n"
    )
    assert (hooks / "pre-push").read_text() == FOREIGN
    assert not (hooks / "pre-push.tasksync-chained").exists()
    code, out, _ = invoke(local, "hooks", "uninstall")
    assert out == f"{hooks / 'pre-push'} is not tasksync's pre-push hook; left it alone\n"
    assert (hooks / "pre-push").read_text() == FOREIGN


def test_install_refuses_when_the_chained_name_is_taken(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-push").write_text("#!/bin/sh\n")
    (hooks / "pre-push.tasksync-chained").write_text("#!/bin/sh\n")
    code, out, err = run_main(capsys, "-C", str(repo), "hooks", "install")
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {hooks / 'pre-push'}: another pre-push hook is there")
    assert "pre-push.tasksync-chained is taken already" in err
    assert (hooks / "pre-push").read_text() == "#!/bin/sh\n"


# -- server side ------------------------------------------------------------------------------


def test_server_hook_guards_the_tasks_ref_and_leaves_branches_alone(
    server: Path, on_path: None
) -> None:
    code, out, _ = invoke(server, "hooks", "server", "--install")
    assert (code, out) == (0, f"Installed the update hook {server / 'hooks' / 'update'}\n")
    assert os.access(server / "hooks" / "update", os.X_OK)
    local = clone(server, "client")  # no client-side hook: the server decides

    first = tasks_commit(local, GOOD)
    set_ref(local, REF, first)
    done = push(local, REF)
    assert done.returncode == 0, done.stderr
    second = tasks_commit(local, {**GOOD, "process/tasks/001-one.md": "# Newer\n"}, first)
    set_ref(local, REF, second)
    assert push(local, REF).returncode == 0  # a fast-forward
    assert remote_tip(server, REF) == second

    set_ref(local, REF, first)
    done = push(local, "--force", REF)
    assert done.returncode != 0
    assert f"remote: error: {REF}: not a fast-forward of {second[:12]}" in done.stderr

    bad = tasks_commit(local, {**GOOD, "src/x.py": "x\n"}, second)
    set_ref(local, REF, bad)
    done = push(local, REF)
    assert done.returncode != 0
    assert f"remote: error: {REF}: outside process/: src is not a task file" in done.stderr

    done = push(local, "--delete", REF)
    assert done.returncode != 0
    assert "deleting the tasks ref is refused" in done.stderr
    assert remote_tip(server, REF) == second

    (local / "process").mkdir()
    (local / "process" / "tasks.md").write_text("# in tree\n")
    git(local, "add", ".")
    git(local, "commit", "-q", "-m", "in-tree tasks")
    assert push(local, "main").returncode == 0
    git(local, "reset", "-q", "--hard", "HEAD^")
    assert push(local, "--force", "main").returncode == 0  # branches are not its business
    assert remote_tip(server, "main") == git(local, "rev-parse", "main").strip()


def test_server_prints_the_update_script() -> None:
    result = CliRunner().invoke(cli, ["hooks", "server"])
    assert result.exit_code == 0
    assert result.stdout.startswith("#!/bin/sh\n# tasksync-hook: update\n")
    assert 'exec git tasks hooks update "$@"' in result.stdout


# -- the protocol -------------------------------------------------------------------------------


def test_push_lines_of_either_hash_length_are_parsed() -> None:
    sha1, sha256 = "a" * 40, "B" * 64
    text = (
        f"refs/heads/main {sha1} refs/heads/main {'0' * 40}\n"
        "\n"
        f"refs/tasks/main {sha256} refs/tasks/main {'c' * 64}\n"
        f"(delete) {'0' * 64} refs/tasks/old {'d' * 64}\n"
    )
    first, second, third = parse_push_lines(text)
    assert first == RefUpdate("refs/heads/main", sha1, "refs/heads/main", "0" * 40)
    assert first.is_new and not first.is_deletion
    assert second == RefUpdate("refs/tasks/main", "b" * 64, "refs/tasks/main", "c" * 64)
    assert not second.is_new and not second.is_deletion
    assert third.is_deletion and third.remote_oid == "d" * 64
    with pytest.raises(HookError, match="line 1 of the input"):
        parse_push_lines(f"refs/heads/main {'a' * 50} refs/heads/main {'0' * 40}\n")


def test_pre_commit_environment_is_read(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    env = {
        "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main",
        "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main",
    }
    assert pre_commit_update(env, repo) == RefUpdate(
        "refs/heads/main", head, "refs/heads/main", "0" * 40
    )
    assert pre_commit_update({}, repo) is None

    set_ref(repo, REF, tasks_commit(repo, GOOD))
    (repo / "process").mkdir()
    (repo / "process" / "tasks.md").write_text("# in tree\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "in-tree tasks")
    for key, value in {
        **env,
        "PRE_COMMIT_FROM_REF": head,
        "PRE_COMMIT_TO_REF": git(repo, "rev-parse", "HEAD").strip(),
        "PRE_COMMIT_REMOTE_NAME": "origin",
    }.items():
        monkeypatch.setenv(key, value)
    code, _, err = invoke(repo, "hooks", "pre-push")
    assert code == 1
    assert err.startswith("error: refs/heads/main: 1 pushed commit")


def test_update_command_refuses_deletion_and_ignores_other_refs(repo: Path) -> None:
    old = tasks_commit(repo, GOOD)
    code, _, err = invoke(repo, "hooks", "update", REF, old, "0" * 40)
    assert (code, err) == (1, f"error: {REF}: deleting the tasks ref is refused on this server\n")
    assert invoke(repo, "hooks", "update", "refs/heads/x", old, "0" * 40)[0] == 0


# -- documentation ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [STALE_KEY, IN_TREE_KEY])
def test_hook_config_keys_are_documented(key: str) -> None:
    assert f"| `{key}` |" in USAGE
    assert key in man_entries("CONFIGURATION")


def test_pre_commit_framework_entry() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "- id: tasksync-pre-push\n" in text
    assert "  stages: [pre-push]\n" in text
    assert "  language: python\n" in text
    assert "  entry: git-tasks hooks pre-push\n" in text
    assert "tasksync-pre-push" in USAGE and "--no-verify" in USAGE and "--no-verify" in MAN_TEXT
