"""Is a commit a sound state of a tasks ref? The checks the push hooks run before it leaves.

:func:`check_store_commit` reads a commit through :class:`~tasksync.store.Repo` and returns one
line per problem (an empty list when there is none). It never raises for what it finds in the
commit: a damaged tree is a list of problems, not an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .errors import TaskSyncError
from .markdown import INDEX_PATH, RECORDS_PATH, Index
from .store import Repo

__all__ = ["check_store_commit", "conflict_markers"]

#: The top-level directory every task file lives in.
PROCESS = INDEX_PATH.split("/", 1)[0]
_RECORDS_DIR = RECORDS_PATH.split("/", 1)[0]
# Lines git writes around a conflicted hunk: ours, the diff3 base, the separator, theirs.
_OPENING = re.compile(r"(<{7}|\|{7}|>{7})(?: .*)?")
_SEPARATOR = re.compile(r"={7}")


def conflict_markers(text: str) -> list[tuple[int, str]]:
    """The conflict-marker lines of ``text``: (line number, line).

    ``<<<<<<<``, ``|||||||`` and ``>>>>>>>`` lines (alone or followed by a space and a label)
    always count. A line of exactly seven ``=`` also underlines a markdown heading, so it
    counts only in a text that has one of the other markers too.
    """
    found: list[tuple[int, str]] = []
    separators: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.rstrip()
        if _OPENING.fullmatch(content):
            found.append((number, content))
        elif _SEPARATOR.fullmatch(content):
            separators.append((number, content))
    return sorted(found + separators) if found else []


def check_store_commit(repo: Repo, commit: str, *, since: str | None = None) -> list[str]:
    """The problems of ``commit`` as a state of a tasks ref; empty when it is sound.

    The rules: ``process/tasks.md`` is present, UTF-8, and has no two tasks with one id
    number; no file has conflict markers; every task whose link names a path under
    ``process/`` has that file; nothing lives outside ``process/`` except
    ``.tasksync/records.json``, which must parse; no symlinks, submodules or executable files.
    With ``since`` (an earlier state the commit descends from), spec files are read for
    conflict markers only where they changed since then; everything else is always checked.
    """
    try:
        entries = list(repo.tree_entries(commit))
    except TaskSyncError as error:
        return [f"unreadable: {commit} cannot be read as a commit with a tree ({error})"]
    problems = _shape(entries)
    files = {path for path, kind in entries if kind in ("blob", "executable")}
    read = repo.reader(commit)
    problems += _index(read, files)
    if RECORDS_PATH in files:
        problems += _records(read)
    changed = _changed(repo, since, commit)
    specs = sorted(
        path
        for path in files
        if path.startswith(PROCESS + "/")
        and path != INDEX_PATH
        and path.endswith(".md")
        and (changed is None or path in changed)
    )
    for path in specs:
        problems += _markers(read, path)
    return problems


def _shape(entries: Iterable[tuple[str, str]]) -> list[str]:
    """Problems of the tree's shape: paths outside process/, links, submodules, modes."""
    problems: list[str] = []
    foreign: list[str] = []
    for path, kind in entries:
        if kind == "link":
            problems.append(f"symlink: {path} is a symbolic link; store plain files only")
        elif kind == "commit":
            problems.append(f"submodule: {path} is a submodule; store plain files only")
        elif kind == "executable":
            problems.append(
                f"executable: {path} has the executable bit; store it as a plain file (mode 644)"
            )
        elif kind not in ("blob", "tree"):
            problems.append(f"odd entry: {path} has an unknown file mode")
        if path in (PROCESS, _RECORDS_DIR, RECORDS_PATH) or path.startswith(PROCESS + "/"):
            if path in (PROCESS, _RECORDS_DIR) and kind != "tree":
                foreign.append(path)
            continue
        if any(path.startswith(seen + "/") for seen in foreign):
            continue  # inside a directory already reported
        foreign.append(path)
    problems += [
        f"outside process/: {path} is not a task file; only process/ and "
        f"{RECORDS_PATH} belong on the tasks ref"
        for path in foreign
    ]
    return problems


def _index(read: Callable[[str], str | None], files: set[str]) -> list[str]:
    """Problems of tasks.md: missing, not UTF-8, duplicate ids, markers, missing specs."""
    if INDEX_PATH not in files:
        return [f"missing index: {INDEX_PATH} is not in the tree"]
    try:
        text = read(INDEX_PATH)
        tasks = Index.parse(text or "").tasks
    except TaskSyncError as error:
        return [f"unreadable index: {error}"]
    problems = _marker_problem(INDEX_PATH, text or "")
    lines: dict[int, list[int]] = {}
    for task in tasks:
        lines.setdefault(task.id.number, []).append(task.line + 1)
    for task in tasks:
        where = lines[task.id.number]
        if where[0] == task.line + 1 and len(where) > 1:
            listed = ", ".join(str(n) for n in where)
            problems.append(
                f"duplicate task id: {task.id} is on lines {listed} of {INDEX_PATH}; "
                "renumber all but one"
            )
        spec = task.spec_path
        if spec is not None and spec not in files:
            problems.append(
                f"missing spec: {task.id} links {task.link!r}, but {spec} is not in the tree"
            )
    return problems


def _records(read: Callable[[str], str | None]) -> list[str]:
    from .records import parse

    try:
        parse(read(RECORDS_PATH))
    except TaskSyncError as error:
        return [f"unreadable records: {error}"]
    return []


def _markers(read: Callable[[str], str | None], path: str) -> list[str]:
    try:
        text = read(path) or ""
    except TaskSyncError as error:
        return [f"unreadable spec: {error}"]
    return _marker_problem(path, text)


def _marker_problem(path: str, text: str) -> list[str]:
    """One line for a file with conflict markers: where they are and the first of them."""
    found = conflict_markers(text)
    if not found:
        return []
    numbers = ", ".join(str(number) for number, _ in found)
    return [
        f"conflict marker: {path} has unresolved conflict markers on line"
        f"{'s' if len(found) > 1 else ''} {numbers} ({found[0][1]!r} first)"
    ]


def _changed(repo: Repo, since: str | None, commit: str) -> frozenset[str] | None:
    """The paths changed since ``since``; None (read everything) when it cannot be told."""
    if since is None or not repo.has_commit(since):
        return None
    try:
        return repo.changed(since, commit)
    except TaskSyncError:
        return None
