"""Open a text in the user's editor, chosen and started the way git starts it.

The editor is what ``git var GIT_EDITOR`` names (``GIT_EDITOR``, ``core.editor``, ``VISUAL``,
``EDITOR``, then git's default), and, as git does, it is run by the shell with the file as its
argument, so editor settings such as ``code --wait`` keep working. The file lives in the common
git dir and is left there when anything fails, so an edit is never lost.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from .errors import EditorFailed


def editor_command(cwd: Path) -> str:
    """The user's editor command, as git would start it."""
    try:
        done = subprocess.run(
            ["git", "var", "GIT_EDITOR"], cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError as error:
        raise EditorFailed(None, f"git cannot be run ({error})") from None
    command = done.stdout.strip()
    if done.returncode != 0 or not command:
        raise EditorFailed(None, "no editor is configured; set one with `git config core.editor`")
    return command


def edit_file(path: Path, cwd: Path) -> str:
    """Run the editor on ``path`` and return what was saved; EditorFailed if it fails."""
    command = editor_command(cwd)
    if os.name == "posix":
        argv = ["sh", "-c", f'{command} "$@"', command, str(path)]
    else:  # pragma: no cover - exercised on Windows only
        argv = [*shlex.split(command, posix=False), str(path)]
    try:
        done = subprocess.run(argv, cwd=cwd, check=False)
    except OSError as error:
        raise EditorFailed(path, f"the editor {command!r} cannot be started ({error})") from None
    if done.returncode != 0:
        raise EditorFailed(path, f"the editor {command!r} exited with status {done.returncode}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EditorFailed(path, f"the edited file cannot be read ({error})") from None


def scratch_file(common_dir: Path, name: str, text: str) -> Path:
    """Write ``text`` to a file of this process's own in the common git dir."""
    folder = common_dir / "tasksync"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"edit-{os.getpid()}-{name}"
    path.write_text(text, encoding="utf-8")
    return path
