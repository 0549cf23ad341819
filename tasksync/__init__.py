"""tasksync: task markdown on a git ref, consistent across worktrees, clones and machines.

>>> from tasksync import TaskStore, Status
>>> store = TaskStore.open(".")                                  # doctest: +SKIP
>>> task = store.create("Enhance task sync", description="...")  # doctest: +SKIP
>>> store.set_status(task.id, Status.DONE)                       # doctest: +SKIP
"""

from __future__ import annotations

from .api import TaskStore
from .errors import (
    AmbiguousTaskId,
    ConfigError,
    ContentionTimeout,
    FormatError,
    InvalidDescription,
    InvalidStatus,
    InvalidTaskId,
    InvalidTitle,
    NotARepository,
    NotInitialized,
    PreconditionFailed,
    SpecNotFound,
    StoreError,
    TaskNotFound,
    TaskSyncError,
)
from .model import HistoryEntry, Status, Task, TaskId

__version__ = "0.1.0"

__all__ = [
    "AmbiguousTaskId",
    "ConfigError",
    "ContentionTimeout",
    "FormatError",
    "HistoryEntry",
    "InvalidDescription",
    "InvalidStatus",
    "InvalidTaskId",
    "InvalidTitle",
    "NotARepository",
    "NotInitialized",
    "PreconditionFailed",
    "SpecNotFound",
    "Status",
    "StoreError",
    "Task",
    "TaskId",
    "TaskNotFound",
    "TaskStore",
    "TaskSyncError",
    "__version__",
]
