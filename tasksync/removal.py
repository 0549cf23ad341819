"""The command that removes the in-tree task files once ``git tasks migrate`` imported them.

Pure: the caller says which paths were imported and which of them git tracks. The command
names the worktree with ``git -C``, so it works pasted in any directory; it removes exactly the
imported paths, each shell-quoted (tracked ones with ``git rm``, untracked ones with ``git
clean`` of those very paths, literal pathspecs when a name holds a glob character), so files
that were not imported (symlinks, pictures, ignored drafts) stay; and it commits only those
paths, whatever else is staged. It is printed for the user, never run.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from .markdown import INDEX_PATH, SPEC_DIR

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

#: The message of the commit that removes the files.
MESSAGE = "Move the tasks to the tasks ref (git tasks migrate)"
_GLOB = frozenset("*?[\\")


def removal_command(
    top: Path,
    imported: Sequence[str],
    *,
    tracked: frozenset[str],
    committed: frozenset[str],
    whole: bool,
    force: bool,
    sparse: bool,
) -> str:
    """The shell command removing ``imported`` (paths from the top of the worktree ``top``).

    ``tracked``: those the index holds; ``committed``: those HEAD holds (only they can be
    committed as removed); ``whole``: every file git tracks under process/tasks/ was imported,
    so the directory may be named instead of each file; ``force``: the working tree differs
    from HEAD (its edits are on the ref now); ``sparse``: a tracked one lies outside the sparse
    checkout.
    """
    in_index = [path for path in imported if path in tracked]
    untracked = [path for path in imported if path not in tracked]
    in_head = [path for path in imported if path in committed]
    if whole:
        in_index, in_head = _directory(in_index), _directory(in_head)
    literal = " --literal-pathspecs" if any(_GLOB & set(path) for path in imported) else ""
    git = f"git -C {shlex.quote(str(top))}{literal}"
    steps: list[str] = []
    if untracked:  # first: then `git rm` leaves no directory emptied behind
        steps.append(f"{git} clean -q -f -x -- {_quoted(untracked)}")
    if in_index:
        flags = "-r " if SPEC_DIR in in_index else ""
        flags += "-q" + (" -f" if force else "") + (" --sparse" if sparse else "")
        steps.append(f"{git} rm {flags} --ignore-unmatch -- {_quoted(in_index)}")
    if in_head:
        steps.append(f'{git} commit -q -m "{MESSAGE}" -- {_quoted(in_head)}')
    return " && ".join(steps)


def _directory(paths: Sequence[str]) -> list[str]:
    """The index file, then the spec directory in place of the spec files in it."""
    out = [path for path in paths if not path.startswith(SPEC_DIR + "/")]
    if len(out) < len(paths):
        out.append(SPEC_DIR)
    return sorted(out, key=lambda path: path != INDEX_PATH)


def _quoted(paths: Iterable[str]) -> str:
    return " ".join(shlex.quote(path) for path in paths)
