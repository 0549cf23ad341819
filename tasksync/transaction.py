"""The write loop: read the tip, apply, write, compare-and-swap, retry.

An operation is a pure function from a snapshot of the tip to a change. The loop applies it to
the tip it read, writes the objects and moves the ref with a compare-and-swap against that tip.
When the swap or a write fails, the ref decides what happened: if it points at the commit just
written, the operation landed; otherwise the operation is applied again to the new tip after a
jittered exponential backoff, until the time cap. Same-machine writers take turns on a kernel
file lock in the common git dir, so they rarely retry at all; correctness rests on the swap
alone, so a lock that cannot be had (a read-only or network filesystem) only costs speed.
A writer holding that lock that finds the ref's own lock file left by a dead process removes
it and goes on (:mod:`tasksync.stale` says when a lock file is stale, and why removing it then
is safe).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from . import maintenance
from .errors import ContentionTimeout, NotInitialized, StoreError, TaskSyncError
from .identity import ENV_KEYS, Signatures, resolve
from .lock import KernelLock, LockTimeout
from .markdown import INDEX_PATH
from .operations import Change, Snapshot
from .store import Repo, WriteFailed

if TYPE_CHECKING:
    from .stale import LockFile

T = TypeVar("T")

# Backoff: after attempt n the ceiling is 2 ms * 2**n (4 ms, 8 ms, ...) up to 250 ms; each pause
# is uniform below it.
_FIRST_CEILING = 0.002
_LAST_CEILING = 0.25
# A ref lock file older than this (or than the whole wait) at a timeout is named as the cause.
_STALE_AFTER = 1.0
# Seconds a lock a live process holds is left before it is looked at again: looking for
# holders reads every process's descriptors.
_HOLDERS_AGAIN = 0.5


def _identity_environment() -> tuple[object, ...]:
    """The current values of the identity variables (``ENV_KEYS``), as a cache key.

    Read from the mapping behind ``os.environ`` where there is one: ``os.environ.get`` of an
    absent variable raises and catches a KeyError inside, and six of those cost more than the
    rest of an operation's bookkeeping. ``os.environ`` writes through to that mapping, so the
    key changes whenever a variable does.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    if isinstance(data, dict):
        keys = _encoded_keys(getattr(environ, "encodekey", None))
        if keys is not None:
            return tuple(map(data.get, keys))
    return tuple(map(environ.get, ENV_KEYS))


@lru_cache(maxsize=4)
def _encoded_keys(encode: Callable[[str], object] | None) -> tuple[object, ...] | None:
    """``ENV_KEYS`` as the mapping behind ``os.environ`` stores them, if it says how."""
    return None if encode is None else tuple(map(encode, ENV_KEYS))


class Transactor:
    """Runs operations against one ref with compare-and-swap, backoff and a time cap."""

    def __init__(
        self,
        repo: Repo,
        ref: str,
        *,
        timeout: float,
        file_lock: bool,
        trailers: tuple[tuple[str, str], ...] = (),
        workdir: Path | None = None,
        pack_threshold: int = 0,
        stale_after: float,
    ) -> None:
        self.repo = repo
        # A ref lock file no live process holds is removed once this old (tasks.staleLockAfter)
        # by a writer holding the kernel lock: see tasksync.stale for why that is safe.
        self.stale_after = stale_after
        # The lock file that, left by a killed process, blocks every move of the ref.
        self.ref_lock = repo.ref_lock_path(ref)
        self._roots: tuple[Path, ...] | None = None
        # Why the ref lock was last left in place, and when it was judged so.
        self._kept: tuple[LockFile, str, float] | None = None
        # Loose objects past which a write starts git's packing (0: never), and the chance
        # a write looks (a test seam: a function saying whether this write looks).
        self.pack_threshold = pack_threshold
        self.pack_sample: Callable[[], bool] = maintenance.sampled
        # The worktree whose in-tree process/tasks.md, when there is one, an absent ref names.
        self.workdir = workdir
        self.ref = ref
        self.timeout = timeout
        self.file_lock = file_lock
        self.trailers = trailers
        # Test seam: called after the objects are written and before the compare-and-swap.
        self.before_swap: Callable[[], None] | None = None
        name = ref.replace("/", "%") + ".lock"
        self.lock_path = repo.location.common_dir / "tasksync" / name
        # The identities of the last environment seen (its GIT_AUTHOR_*/GIT_COMMITTER_* values).
        self._identities: dict[tuple[object, ...], Signatures] = {}

    def snapshot(self) -> Snapshot:
        """The tip as it is now; raises NotInitialized before ``init``."""
        tip = self.repo.tip(self.ref)
        if tip is None:
            raise self.not_initialized()
        return self.repo.snapshot(tip)

    def not_initialized(self) -> NotInitialized:
        """The error for an absent ref: it points to ``git tasks migrate`` when the worktree
        still holds an in-tree process/tasks.md (the old layout), else to ``init``."""
        found = self.workdir is not None and (self.workdir / INDEX_PATH).is_file()
        return NotInitialized(self.ref, in_tree=found)

    def run(
        self, operation: Callable[[Snapshot], Change | T], *, create: bool = False
    ) -> tuple[Change | T, str | None]:
        """Apply ``operation`` to the tip until a compare-and-swap lands it.

        Returns the operation's result and the commit that landed, or None as the commit when
        the operation returned something other than a :class:`Change` (nothing to write).
        With ``create`` the ref may be absent, and only then is it created.
        """
        started = time.monotonic()
        deadline = started + self.timeout
        signatures = self._signatures()
        # A unique id per operation makes its commit unique: two writers making the same change
        # from the same tip in the same second would otherwise write the same commit, and the
        # loser, seeing the ref at "its" commit, would wrongly believe it had landed.
        trailers = (*self.trailers, ("Tasksync-Op-Id", os.urandom(8).hex()))
        attempts = 0
        lock = KernelLock(self.lock_path, deadline) if self.file_lock else nullcontext()
        self._kept = None
        try:
            with lock:
                # Only a writer holding the kernel lock may judge the ref lock: then no
                # tasksync writer on this machine is between taking it and releasing it.
                held = isinstance(lock, KernelLock) and lock.held
                while True:
                    attempts += 1
                    tip = self.repo.tip(self.ref)
                    if tip is None and not create:
                        raise self.not_initialized()
                    snap = self.repo.snapshot(tip)
                    result = operation(snap)
                    if not isinstance(result, Change):
                        return result, None
                    landed = self._attempt(tip, result, signatures, trailers, snap.tree)
                    if landed is not None:
                        self._maintain()
                        return result, landed
                    if held and self._remove_stale_lock():
                        continue  # the ref is free again: at once
                    if time.monotonic() >= deadline:
                        raise self._timeout(started, attempts, held)
                    import random

                    ceiling = min(_LAST_CEILING, _FIRST_CEILING * 2 ** min(attempts, 8))
                    pause = random.uniform(0, ceiling)  # noqa: S311 - jitter, not secrecy
                    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        except LockTimeout:
            seconds = time.monotonic() - started
            raise ContentionTimeout(
                self.ref, seconds, attempts, writer_lock=str(self.lock_path)
            ) from None

    def _maintain(self) -> None:
        """Now and then, start git's packing of the loose objects writes leave behind."""
        if self.pack_threshold > 0:
            common = self.repo.location.common_dir
            maintenance.after_write(common, self.pack_threshold, self.pack_sample)

    def _signatures(self) -> Signatures:
        key = _identity_environment()
        signatures = self._identities.get(key)
        if signatures is None:
            signatures = resolve(self.repo.config, os.environ)
            self.repo.check_signatures(signatures)
            self._identities = {key: signatures}
        return signatures

    def write_side(self, parent: str | None, change: Change) -> str:
        """Write ``change`` as a commit on ``parent`` that no ref points at: one side of a
        merge the loop lands next. Unreachable until then, like any attempt's objects."""
        trailers = (*self.trailers, ("Tasksync-Op-Id", os.urandom(8).hex()))
        try:
            return self.repo.write_commit(
                parent, change, change.message_with(trailers), self._signatures()
            )
        except WriteFailed as error:
            raise StoreError("writing a commit", str(error), "check `git fsck`") from None

    def _attempt(
        self,
        tip: str | None,
        change: Change,
        signatures: Signatures,
        trailers: tuple[tuple[str, str], ...],
        base: object = None,
    ) -> str | None:
        """One write and compare-and-swap; the new commit id when it landed, else None.
        ``base`` is the tip's tree as the snapshot read it (see :meth:`Repo.write_commit`)."""
        message = change.message_with(trailers)
        new: str | None = None
        try:
            if change.target is not None:  # a fast-forward: the commit exists already
                new = change.target
            else:
                new = self.repo.write_commit(tip, change, message, signatures, base)
            if self.before_swap is not None:
                self.before_swap()
            if tip is None:
                self.repo.ensure_reflog(self.ref)  # so @{n} names every later state
                self.repo.add_if_new(self.ref, new, change.summary)
            else:
                self.repo.set_if_equals(self.ref, tip, new, change.summary)
        except WriteFailed:
            pass
        else:
            return new
        # Whatever the error said, the ref decides: did this commit land after all (perhaps
        # with other writers' commits already on top)? The operation id makes it ours alone.
        if new is None:
            return None
        try:
            now = self.repo.tip(self.ref)
            landed = now is not None and self.repo.reaches(now, new, stop=tip)
        except TaskSyncError:
            return None
        return new if landed else None

    def _remove_stale_lock(self) -> bool:
        """Remove the ref's lock file if it is stale (see :mod:`tasksync.stale`); True when it
        was. Called only while this writer holds the kernel lock."""
        from . import stale  # only when a write failed: kept out of every command's start-up

        found = stale.look(self.ref_lock)
        if found is None:
            return False
        kept = self._kept
        if (
            kept is not None
            and kept[2] > 0
            and kept[0].same_file(found)
            and time.monotonic() - kept[2] < _HOLDERS_AGAIN
        ):
            return False  # a live holder was seen a moment ago
        if self._roots is None:
            self._roots = stale.repository_roots(self.repo.location.common_dir)
        verdict = stale.judge(found, self.stale_after, self._roots)
        if not verdict.stale:
            self._kept = (found, verdict.reason, time.monotonic() if verdict.holders else 0.0)
            return False
        removal = stale.remove(found, self.repo.location.common_dir / "tasksync")
        if not removal.removed:
            self._kept = (found, removal.note, 0.0)
        return removal.removed

    def _timeout(self, started: float, attempts: int, held: bool) -> ContentionTimeout:
        seconds = time.monotonic() - started
        from . import stale

        found = stale.look(self.ref_lock)
        if found is None or found.age < min(_STALE_AFTER, 0.9 * seconds):
            # Younger than the wait: a live writer's lock (git holds one for milliseconds).
            return ContentionTimeout(self.ref, seconds, attempts)
        if not self.file_lock:
            note: str | None = "tasks.fileLock is false, so writers never remove it themselves"
        elif not held:
            note = "the writers' kernel lock could not be taken here, so it was left alone"
        elif self._kept is not None and self._kept[0].same_file(found):
            note = self._kept[1]
        else:
            note = None
        return ContentionTimeout(
            self.ref, seconds, attempts, str(self.ref_lock), found.age, lock_note=note
        )
