"""tasksync: task markdown on a git ref, consistent across worktrees, clones and machines.

>>> from tasksync import TaskStore, Status
>>> store = TaskStore.open(".")                                  # doctest: +SKIP
>>> task = store.create("Enhance task sync", description="...")  # doctest: +SKIP
>>> store.set_status(task.id, Status.DONE)                       # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api import Merged, TaskStore
from .errors import (
    AmbiguousTaskId,
    CannotResolve,
    ConfigError,
    ContentionTimeout,
    EditorFailed,
    ExportError,
    FileTooLarge,
    FormatError,
    HookError,
    InvalidDescription,
    InvalidStatus,
    InvalidTaskId,
    InvalidTitle,
    MergeDriverError,
    MigrationError,
    NoConflict,
    NotARepository,
    NotInHistory,
    NotInitialized,
    NotTasksHistory,
    PreconditionFailed,
    ReftableUnsupported,
    SpecNotFound,
    StoreError,
    SyncError,
    TaskExists,
    TaskNotFound,
    TaskSyncError,
    UndoRefused,
    UnknownRevision,
)
from .model import Status, Task, TaskId

if TYPE_CHECKING:
    from .events import Event
    from .history import HistoryEntry
    from .merge import IndexMerge, merge3
    from .records import Conflict, Renumbering
    from .service import SpecContent, TaskService

__version__ = "0.1.0"


# Imported on first use: a one-shot command needs none of them.
_LAZY = {
    "merge3": "merge",
    "IndexMerge": "merge",
    "Event": "events",
    "TaskService": "service",
    "SpecContent": "service",
    "HistoryEntry": "history",
    "Conflict": "records",
    "Renumbering": "records",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tasksync' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


__all__ = [
    "AmbiguousTaskId",
    "CannotResolve",
    "ConfigError",
    "Conflict",
    "ContentionTimeout",
    "EditorFailed",
    "Event",
    "ExportError",
    "FileTooLarge",
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
    "MigrationError",
    "NoConflict",
    "NotARepository",
    "NotInHistory",
    "NotInitialized",
    "NotTasksHistory",
    "PreconditionFailed",
    "ReftableUnsupported",
    "Renumbering",
    "SpecContent",
    "SpecNotFound",
    "Status",
    "StoreError",
    "SyncError",
    "Task",
    "TaskExists",
    "TaskId",
    "TaskNotFound",
    "TaskService",
    "TaskStore",
    "TaskSyncError",
    "UndoRefused",
    "UnknownRevision",
    "__version__",
    "merge3",
]
