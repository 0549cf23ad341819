"""The task service of the markdown backend, on the tasks ref: :class:`TaskService`.

An existing task command written against the markdown backend's ``TaskService`` switches its
storage by changing one import: the methods here have the old names (in snake_case) and the
old semantics (``None`` or ``False`` for an unknown id, finished tasks hidden from listings,
status names in and out), and each one is one call of :class:`~tasksync.api.TaskStore`, so
reads see the tip of ``refs/tasks/main`` and every write is a compare-and-swap commit on it.
docs/integration.md shows the switch and the method table.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from .api import TaskRef, TaskStore
from .errors import (
    AmbiguousTaskId,
    InvalidTaskId,
    InvalidTitle,
    SpecNotFound,
    TaskExists,
    TaskNotFound,
    TaskSyncError,
)
from .markdown import split_lines
from .model import Task, TaskId
from .spec import spec_title

# The id a spec's first heading names (`# Task #157: Title`, `# Task md#157: Title`).
_NAMED_ID = re.compile(r"# Task ((?:md#|#)?[0-9]+): ")
# A placeholder id in the heading handed to TaskStore.create, which rewrites an id heading to
# carry the id it allocates inside its compare-and-swap loop.
_PLACEHOLDER = TaskId(0)


class SpecContent(NamedTuple):
    """A task's spec as :meth:`TaskService.get_task_spec_content` returns it (the old
    ``{content, specPath, task}``), all three read from one state of the ref."""

    content: str
    spec_path: str
    task: Task


class TaskService:
    """The markdown backend's task service, reading and writing the tasks ref.

    ``TaskService(workspace_path=".")`` opens the store of the repository containing the path
    (a worktree, a subdirectory, a session clone, a bare repository), as
    :meth:`TaskStore.open` does; :meth:`from_store` wraps a store already open.
    """

    def __init__(
        self, workspace_path: str | os.PathLike[str] = ".", *, store: TaskStore | None = None
    ) -> None:
        self._store = store if store is not None else TaskStore.open(workspace_path)

    @classmethod
    def from_store(cls, store: TaskStore) -> TaskService:
        """A service over ``store`` (its configuration and handle are shared)."""
        return cls(store=store)

    @property
    def store(self) -> TaskStore:
        """The :class:`TaskStore` underneath, for what the old service did not have."""
        return self._store

    def get_workspace_path(self) -> str:
        """The top directory of the worktree the service was opened in (the git dir of a bare
        repository). Spec paths are relative to it; relative ``create_task`` paths too."""
        return str(self._store.workdir)

    # -- reads ----------------------------------------------------------------------------------

    def list_tasks(self, status: str | None = None, all: bool = False) -> list[Task]:
        """Tasks in file order. DONE and CLOSED are left out unless ``all`` is true or
        ``status`` names them; ``status`` keeps only the tasks with that status."""
        return self._store.list(status=status, include_done=all)

    def get_task(self, task_id: TaskRef) -> Task | None:
        """The task, or None when no task has that id (or the text is no id at all). Where
        several lines carry the id (files from older tools can), the first, as the old
        service found it; writes to such an id raise AmbiguousTaskId."""
        try:
            return self._store.get(task_id)
        except (TaskNotFound, InvalidTaskId):
            return None
        except AmbiguousTaskId as error:
            wanted = error.task_id
            return next(t for t in self._store.list(include_done=True) if str(t.id) == str(wanted))

    def get_task_status(self, task_id: TaskRef) -> str | None:
        """The task's status name (``IN-PROGRESS``...), or None when there is no such task."""
        task = self.get_task(task_id)
        return None if task is None else task.status.value

    def get_task_spec_path(self, task_id: TaskRef) -> str:
        """The task's spec path on the ref, e.g. ``process/tasks/157-slug.md``.

        The file lives on the ref, not in the working tree: read it with
        :meth:`get_task_spec_content`. Raises TaskNotFound for an unknown id and SpecNotFound
        when the task's link is not a spec path under ``process/``.
        """
        task = self._store.get(task_id)
        return _spec_path(task)

    def get_task_spec_content(self, task_id: TaskRef) -> SpecContent:
        """The spec's text, its path and the task, read from one state of the ref.

        Raises TaskNotFound for an unknown id, SpecNotFound when the spec file is missing.
        """
        tip = self._store.head()
        task = self._store.get(task_id, at=tip)
        content = self._store.spec(task.id, at=tip)
        return SpecContent(content, _spec_path(task), task)

    # -- writes ---------------------------------------------------------------------------------

    def set_task_status(self, task_id: TaskRef, status: str) -> None:
        """Set the task's status. An invalid status name (InvalidStatus, listing the valid
        ones) or an unknown id (TaskNotFound) raises and writes nothing."""
        self._store.set_status(task_id, status)

    def create_task_from_title_and_description(self, title: str, description: str) -> Task:
        """Create a task with the next free id; its spec is ``# Task #NNN: Title`` with the
        description as its ``## Context``."""
        return self._store.create(title, description=description)

    def create_task(self, spec_path: str | os.PathLike[str], force: bool = False) -> Task:
        """Create a task from the spec file at ``spec_path`` (relative to the workspace path).

        The title is the file's first heading (``# Task #157: Title``, ``# Task: Title`` or
        ``# Title``) and the description its ``## Context``. The text is stored as the task's
        spec with that heading rewritten as ``# Task #NNN: Title`` for the id the task gets.

        The id is always the next free one, allocated when the commit lands, so a spec never
        overwrites a task. A heading naming an id that a task already has raises TaskExists
        (the spec was most likely created before); ``force=True`` creates it anyway, as a new
        task with the next free id.
        """
        path = Path(self.get_workspace_path(), spec_path)
        try:
            text = path.read_bytes().decode("utf-8")  # line endings as written
        except (OSError, UnicodeDecodeError) as error:
            raise TaskSyncError(
                f"cannot read the spec file {path}: {error}; pass a readable UTF-8 file"
            ) from None
        heading = _first_heading(text)
        title = spec_title(text)
        if heading is None or not title:
            raise InvalidTitle(
                "",
                f"the spec file {path} has no title heading; start it with `# Task: Title` "
                "(or `# Title`)",
            )
        named = _NAMED_ID.match(split_lines(text)[heading])
        if named is not None and not force:
            existing = self.get_task(named.group(1))
            if existing is not None:
                raise TaskExists(str(existing.id), existing.title, str(path))
        return self._store.create(title, spec=_with_id_heading(text, heading, title))

    def delete_task(self, task_id: TaskRef, force: bool = False) -> bool:
        """Delete the task: its line, its description bullets and its spec file. False (and
        nothing written) when there is no such task. ``force`` is accepted for the old
        signature; the library never asks for confirmation."""
        del force
        try:
            self._store.delete(task_id)
        except (TaskNotFound, InvalidTaskId):
            return False
        return True


def _spec_path(task: Task) -> str:
    if task.spec_path is None:
        raise SpecNotFound(str(task.id), None)
    return task.spec_path


def _first_heading(text: str) -> int | None:
    """The line number of the first ``# `` heading (the one that names the title)."""
    return next((i for i, line in enumerate(split_lines(text)) if line.startswith("# ")), None)


def _with_id_heading(text: str, heading: int, title: str) -> str:
    """``text`` with line ``heading`` as ``# Task #000: Title``: an id heading, which
    :meth:`TaskStore.create` rewrites to the id it allocates."""
    lines = list(split_lines(text))
    line = lines[heading]
    ending = line[len(line.rstrip("\r\n")) :]
    lines[heading] = f"# Task {_PLACEHOLDER}: {title}{ending}"
    return "".join(lines)


__all__ = ["SpecContent", "TaskService"]
