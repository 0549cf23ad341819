"""Following the tasks ref: the events of every commit that lands on it, as it lands.

A :class:`Watch` re-reads the ref (microseconds through libgit2) whenever it may have moved.
When it moved, the watch walks the first-parent chain from the new tip back to the last commit
it had seen and hands out :func:`~tasksync.events.diff` of each state against the one before,
oldest first, each event stamped with its commit: several commits landing between two looks
all yield their events, and none yields them twice. A watch takes no lock and never writes, so
it runs beside any number of writers, in any worktree or session clone (it follows the
repository holding the ref: a session clone's hub).

When to look: on Linux, inotify on the ref's directory and each directory above it up to the
git dir (where ``packed-refs`` lives) wakes the watch at once; a notification only ever means
"re-read the ref and compare", and watches are re-armed as directories come and go. Polling the
ref every ``interval`` runs always, as the fallback for filesystems that miss notifications
(network and some virtual machine shares) and where inotify is missing.

How the walk reads history:

- The last seen commit is on the new tip's first-parent chain (every write, every merge made
  here): each commit after it is one step; a merge commit's events are what it changed
  against its first parent.
- The last seen commit came in through a merge's second parent (a fast-forward to a history
  that had merged this one): the commits of the chain that do not contain it are folded into
  the step of the first one that does.
- The ref was rewritten (the last seen commit is not in the new tip's history, as after a
  force push): one step, from the last seen state straight to the new tip.
- The ref was deleted: nothing, until it exists again; then as above. The last seen commit is
  gone from the object store: the watch goes on from the new tip, with no events for the jump.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from itertools import takewhile
from pathlib import Path

from .errors import StoreError, TaskSyncError
from .events import Event, diff
from .history import history_entry
from .store import Commit, Repo

__all__ = ["INOTIFY_INTERVAL", "POLL_INTERVAL", "Watch"]

#: Seconds between looks at the ref when inotify also wakes the watch, and when nothing does.
INOTIFY_INTERVAL = 0.5
POLL_INTERVAL = 0.05
#: Seconds between looks at where a session clone's ref lives (its hub can come back).
RELOCATE_INTERVAL = 1.0


class Watch:
    """The events of the commits landing on ``ref`` in the repository at ``store_dir``.

    Iterate over it for events (the iteration waits for the next commit; it ends only when the
    watch is stopped), or hand :meth:`run` a callback. ``since`` is a revision to start after
    (default: the tip when the watch is made, so only later changes count); ``last`` is the
    last commit whose events were all handed out, a ``since`` to resume from.
    """

    def __init__(
        self,
        store_dir: Path,
        ref: str,
        since: str | None = None,
        *,
        poll: bool = False,
        interval: float | None = None,
        stop: threading.Event | None = None,
        locate: Callable[[], Path] | None = None,
    ) -> None:
        if interval is not None and interval <= 0:
            raise ValueError(f"interval is {interval!r}: give a positive number of seconds")
        self.store_dir = store_dir
        self.ref = ref
        self._repo = Repo.discover(store_dir)  # its own handle: the watch may run in a thread
        self.last: str | None = self._tip() if since is None else self._repo.resolve_commit(since)
        self._poll = poll
        self._interval = interval
        self._stop = stop if stop is not None else threading.Event()
        # stop() wakes a waiting watch through its pipe; an event set by the caller cannot,
        # so with one the watch waits in slices this long and looks at it between them.
        self._slice = None if stop is None else 0.05
        self._lock = threading.Lock()
        self._waker: _Waker | None = None
        # Where the ref lives, asked again now and then: a session clone's hub can come back
        # (or change) while the watch runs, and writers then use the hub's ref.
        self._locate = locate
        self._located = time.monotonic()

    def __iter__(self) -> Generator[Event, None, None]:
        return self._events()

    def run(self, callback: Callable[[Event], object]) -> None:
        """Call ``callback`` with each event until it returns False or the watch is stopped."""
        events = self._events()
        try:
            for event in events:
                if callback(event) is False:
                    return
        finally:
            events.close()

    def stop(self) -> None:
        """End the iteration (from any thread): it returns before handing out another event."""
        self._stop.set()
        with self._lock:
            if self._waker is not None:
                self._waker.wake()

    @property
    def notified(self) -> bool:
        """Whether inotify wakes this watch (else it polls only); known once it runs."""
        return self._waker is not None and self._waker.notified

    # -- the loop -------------------------------------------------------------------------------

    def _events(self) -> Generator[Event, None, None]:
        waker = _Waker(self._watched_dirs(), inotify=not self._poll)
        with self._lock:
            self._waker = waker
        default = INOTIFY_INTERVAL if waker.notified else POLL_INTERVAL
        interval = self._interval or default
        try:
            while not self._stop.is_set():
                if self._moved():
                    waker.close()
                    waker = _Waker(self._watched_dirs(), inotify=not self._poll)
                    with self._lock:
                        self._waker = waker
                tip = self._tip()
                if tip is None or tip == self.last:
                    waker.wait(min(interval, self._slice or interval))
                    continue
                for commit, events in self._steps(self.last, tip):
                    for n, event in enumerate(events, start=1):
                        if self._stop.is_set():
                            return
                        if n == len(events):  # handing out the commit's last event
                            self.last = commit
                        yield event
                    self.last = commit
        finally:
            with self._lock:
                self._waker = None
            waker.close()

    def _moved(self) -> bool:
        """Whether the ref now lives in another repository (at most one look a second); the
        watch then follows it from its tip there, or from the last commit seen if that
        history holds it."""
        if self._locate is None or time.monotonic() - self._located < RELOCATE_INTERVAL:
            return False
        self._located = time.monotonic()
        try:
            where = self._locate()
            if where == self.store_dir:
                return False
            repo = Repo.discover(where)
            tip = repo.tip(self.ref)
        except TaskSyncError:  # gone again meanwhile: keep following what we had
            return False
        self.store_dir, self._repo = where, repo
        last = self.last
        if last is None or tip is None or not repo.is_ancestor(last, tip):
            self.last = tip
        return True

    def _tip(self) -> str | None:
        try:
            tip = self._repo.tip(self.ref)
        except StoreError:
            if not self.store_dir.is_dir():
                raise self._gone() from None
            raise
        if tip is None and not self.store_dir.is_dir():
            raise self._gone()
        return tip

    def _gone(self) -> StoreError:
        return StoreError(
            f"watching {self.ref}",
            f"the repository {self.store_dir} is gone",
            "start the watch again in a repository that holds the tasks",
        )

    def _watched_dirs(self) -> list[Path]:
        """The git dir, each directory from ``refs`` down to the one holding the ref, and
        ``reftable/`` where refs are kept in reftable (every ref update rewrites its table list)."""
        dirs = [self.store_dir]
        parts = self.ref.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            dirs.append(self.store_dir.joinpath(*parts[:depth]))
        if (self.store_dir / "reftable").is_dir():
            dirs.append(self.store_dir / "reftable")
        return dirs

    # -- history --------------------------------------------------------------------------------

    def _steps(self, last: str | None, tip: str) -> Iterator[tuple[str, list[Event]]]:
        """Each state after ``last`` up to ``tip`` with the events that lead to it."""
        repo = self._repo
        if last is not None and not repo.has_commit(last):
            yield tip, []  # nothing left to compare with
            return
        previous = last
        for commit in self._chain(last, tip):
            found = diff(
                repo.reader(previous), repo.reader(commit.id), repo.changed(previous, commit.id)
            )
            yield commit.id, _stamped(found, commit)
            previous = commit.id

    def _chain(self, last: str | None, tip: str) -> list[Commit]:
        """The commits whose states follow ``last`` on the way to ``tip``, oldest first."""
        repo = self._repo
        if last is None:
            return list(repo.first_parents(tip))[::-1]
        if not repo.is_ancestor(last, tip):  # rewritten: one step to the new tip
            return [repo.commit_info(tip)]
        chain: list[Commit] = []
        for commit in repo.first_parents(tip):
            if commit.id == last:
                return chain[::-1]
            chain.append(commit)
        # `last` is not on the first-parent chain: a merge brought it in from the side.
        return list(takewhile(lambda c: repo.is_ancestor(last, c.id), chain))[::-1]


def _stamped(events: list[Event], commit: Commit) -> list[Event]:
    entry = history_entry(commit)
    return [
        replace(
            event,
            commit=commit.id,
            operation=entry.operation if entry.operation != "unknown" else "",
            workspace=entry.workspace,
            author=entry.author,
            time=entry.time,
            offset_minutes=entry.offset_minutes,
        )
        for event in events
    ]


# -- waking up ------------------------------------------------------------------------------------


class _Waker:
    """Sleeps until the ref may have moved: an inotify event, :meth:`wake`, or the timeout."""

    def __init__(self, dirs: list[Path], *, inotify: bool) -> None:
        self._dirs = dirs
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._inotify = _Inotify.open() if inotify else None
        self._rearm()

    @property
    def notified(self) -> bool:
        return self._inotify is not None

    def wait(self, timeout: float) -> None:
        fds = [self._read] if self._inotify is None else [self._read, self._inotify.fd]
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:  # drained before the ref is read again: no later event is lost
            _drain(fd)
        self._rearm()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # the pipe is full: a wake-up is pending anyway
            os.write(self._write, b"\0")

    def close(self) -> None:
        for fd in (self._read, self._write):
            os.close(fd)
        if self._inotify is not None:
            self._inotify.close()

    def _rearm(self) -> None:
        """Watch every directory that exists now (again: a removed one loses its watch)."""
        if self._inotify is not None:
            for path in self._dirs:
                self._inotify.add(path)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except (BlockingIOError, InterruptedError):
        pass


# inotify(7): what changes a directory's entries or a file in it.
_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_ONLYDIR = 0x01000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)


class _Inotify:
    """Linux inotify through ctypes: a descriptor that becomes readable when a watched
    directory changes. Only ever a hint; :meth:`open` gives None where it is missing."""

    def __init__(self, fd: int, add_watch: Callable[[int, bytes, int], int]) -> None:
        self.fd = fd
        self._add_watch = add_watch

    @classmethod
    def open(cls) -> _Inotify | None:
        if not sys.platform.startswith("linux"):
            return None
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError):
            return None
        init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add.restype = ctypes.c_int
        fd = int(init(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:  # out of instances (fs.inotify.max_user_instances): poll instead
            return None
        return cls(fd, add)

    def add(self, path: Path) -> None:
        # A directory that does not exist (yet) is skipped; the next wake-up tries again. The
        # same directory twice keeps its one watch.
        self._add_watch(self.fd, os.fsencode(path), _MASK)

    def close(self) -> None:
        os.close(self.fd)
