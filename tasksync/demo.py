"""``git tasks demo``: a throwaway repository, a linked worktree and a session clone sharing
one task store.

Each step runs the real command line in a subprocess, in the worktree it names, so what the
demo shows is exactly what a user typing those commands gets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import TaskSyncError

_IDENTITY = {
    "GIT_AUTHOR_NAME": "tasksync demo",
    "GIT_AUTHOR_EMAIL": "demo@tasksync.invalid",
    "GIT_COMMITTER_NAME": "tasksync demo",
    "GIT_COMMITTER_EMAIL": "demo@tasksync.invalid",
}


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, **_IDENTITY}
    try:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    except FileNotFoundError:
        raise TaskSyncError("the demo needs `git` on PATH; install git and try again") from None
    except subprocess.CalledProcessError as error:
        detail = error.stderr.decode(errors="replace").strip()
        raise TaskSyncError(f"git {' '.join(args)} failed in the demo: {detail}") from None


def _tasks(cwd: Path, label: str, *args: str) -> Iterator[str]:
    yield f"[{label}]$ git tasks {' '.join(_quote(a) for a in args)}"
    env = {**os.environ, **_IDENTITY}
    done = subprocess.run(
        [sys.executable, "-m", "tasksync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in (done.stdout + done.stderr).splitlines():
        yield f"    {line}"
    if done.returncode != 0:
        raise TaskSyncError(
            f"the demo step `git tasks {' '.join(args)}` failed ({done.returncode})"
        )


def _quote(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or not arg) else arg


def run_demo(keep: bool = False) -> Iterator[str]:
    """Yield the demo's lines as it runs; the repository is removed unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix="tasksync-demo-"))
    main, session, clone = root / "main", root / "session", root / "clone"
    try:
        main.mkdir()
        _git(main, "init", "-q")
        _git(main, "commit", "-q", "--allow-empty", "-m", "demo: first commit")
        _git(main, "worktree", "add", "-q", str(session))
        _git(root, "clone", "-q", str(main), str(clone))
        yield f"A throwaway repository in {root}:"
        yield f"  {main.name}/     the main worktree"
        yield f"  {session.name}/  a linked worktree (git worktree add)"
        yield f"  {clone.name}/    a session clone (git clone main clone)"
        yield ""
        yield from _tasks(main, "main", "init")
        yield from _tasks(
            main, "main", "create", "Enhance task sync", "--description", "Make sessions agree"
        )
        yield from _tasks(main, "main", "create", "Write the docs")
        yield from _tasks(session, "session", "status", "set", "1", "IN-PROGRESS")
        yield "  (no commit, fetch or checkout in between)"
        yield from _tasks(main, "main", "list")
        yield from _tasks(main, "main", "status", "set", "2", "DONE")
        yield from _tasks(session, "session", "list", "--all")
        yield from _tasks(clone, "clone", "hub")
        yield from _tasks(clone, "clone", "create", "Review the sync")
        yield "  (the clone wrote to main's refs/tasks/main: no push, no fetch)"
        yield from _tasks(main, "main", "list")
        yield from _tasks(session, "session", "log")
        yield ""
        yield "The tasks live on refs/tasks/main; the file users know is one command away:"
        yield from _show(main)
    finally:
        if keep:
            yield f"Kept {root}"
        else:
            shutil.rmtree(root, ignore_errors=True)


def _show(main: Path) -> Iterator[str]:
    yield "[main]$ git show refs/tasks/main:process/tasks.md"
    done = subprocess.run(
        ["git", "show", "refs/tasks/main:process/tasks.md"],
        cwd=main,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        yield f"    {line}"
