"""Objects and refs: the only package that imports pygit2.

Reads turn commits into :class:`~tasksync.operations.Snapshot` objects (parsing tasks.md once
per blob id); writes turn a :class:`~tasksync.operations.Change` into blobs, trees and a commit,
and move a ref only by compare-and-swap (:meth:`Repo.set_if_equals`). Every failure of a write
reaches the caller as :class:`WriteFailed`, whose cause the caller decides by re-reading the ref,
never by an error's text. pygit2 objects never leave this package.
"""

from __future__ import annotations

from ._base import Commit, Location, TaskFiles, WriteFailed
from .merging import _Merging
from .worktree import _Worktree

__all__ = ["Commit", "Location", "Repo", "TaskFiles", "WriteFailed"]


class Repo(_Merging, _Worktree):
    """One open repository; callers never see the pygit2 object inside.

    Its parts live in this package's modules: opening, configuration and reads
    (``_base``), merging and history (``merging``), writes and compare-and-swap
    (``writing``), and the in-tree task files ``migrate`` reads (``worktree``).
    """
