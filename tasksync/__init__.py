"""tasksync: task markdown on a git ref, consistent across worktrees, clones and machines.

>>> from tasksync import TaskStore, Status
>>> store = TaskStore.open(".")                                  # doctest: +SKIP
>>> task = store.create("Enhance task sync", description="...")  # doctest: +SKIP
>>> store.set_status(task.id, Status.DONE)                       # doctest: +SKIP
"""

from __future__ import annotations

from .api import Merged, TaskStore
from .errors import (
    AmbiguousTaskId,
    CannotResolve,
    ConfigError,
    ContentionTimeout,
    EditorFailed,
    FormatError,
    HookError,
    InvalidDescription,
    InvalidStatus,
    InvalidTaskId,
    InvalidTitle,
    MergeDriverError,
    NoConflict,
    NotARepository,
    NotInitialized,
    NotTasksHistory,
    PreconditionFailed,
    SpecNotFound,
    StoreError,
    SyncError,
    TaskNotFound,
    TaskSyncError,
    UnknownRevision,
)
from .model import Conflict, HistoryEntry, Renumbering, Status, Task, TaskId

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """The merge functions, imported on first use: most commands never merge."""
    if name in ("merge3", "IndexMerge"):
        from . import merge

        return getattr(merge, name)
    raise AttributeError(f"module 'tasksync' has no attribute {name!r}")


__all__ = [
    "AmbiguousTaskId",
    "CannotResolve",
    "ConfigError",
    "Conflict",
    "ContentionTimeout",
    "EditorFailed",
    "FormatError",
    "HistoryEntry",
    "HookError",
    "IndexMerge",
    "InvalidDescription",
    "InvalidStatus",
    "InvalidTaskId",
    "InvalidTitle",
    "MergeDriverError",
    "Merged",
    "NoConflict",
    "NotARepository",
    "NotInitialized",
    "NotTasksHistory",
    "PreconditionFailed",
    "Renumbering",
    "SpecNotFound",
    "Status",
    "StoreError",
    "SyncError",
    "Task",
    "TaskId",
    "TaskNotFound",
    "TaskStore",
    "TaskSyncError",
    "UnknownRevision",
    "__version__",
    "merge3",
]
