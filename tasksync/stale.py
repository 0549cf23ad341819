"""Stale ref locks: telling a dead writer's lock file from a live one, and removing it safely.

git and libgit2 move a ref by creating ``<ref>.lock`` (``O_CREAT|O_EXCL``), writing the new value
into it and renaming it over the ref. A process killed in between leaves the lock file behind;
neither git nor libgit2 ever removes one, so every later writer of that ref fails until it goes.
This module judges such a file and removes it; it knows the lock only as a path and what
``lstat`` says of it, not how the compare-and-swap behind it is done (in a reftable repository
the file is ``reftable/tables.list.lock``, which git takes and renames the same way).

When a lock file is stale
    A lock file is judged stale when all of these hold:

    1. the judge holds the writers' kernel lock (:mod:`tasksync.lock`): no tasksync writer on
       this machine is between taking the ref lock and releasing it. Callers make sure of this
       (the write loop judges only while it holds that lock, and never with
       ``tasks.fileLock false``; ``git tasks doctor --repair`` takes it first, and removes
       nothing where it cannot be taken);
    2. its last write (mtime) is at least ``tasks.staleLockAfter`` old (2 s by default). In
       their own code paths git and libgit2 hold a ref lock for the few system calls between
       creating the file and renaming it, milliseconds; the two ways a live process holds one
       longer are what the next rule looks for;
    3. no live process on this machine is seen holding it (Linux, through ``/proc``): none has
       the file open (libgit2 keeps its lock file open until it renames it; git keeps it open
       until it has written the value) and no ``git update-ref`` working in this repository
       started before the file was last written (``update-ref --stdin`` holds the locks of an
       open transaction after ``prepare`` until its caller says ``commit`` or ``abort``, for as
       long as the caller likes, with the file closed). A zombie holds nothing.

    Why that proves the holder dead: a live holder is a tasksync writer on this machine (rule
    1 rules it out), a process with the file open or an open ``update-ref`` transaction (rule 3
    rules them out), or some other git or libgit2 code path, which would have finished within
    milliseconds, not the threshold (rule 2). What this machine cannot see is outside the proof:
    processes of other users and of other machines on a network filesystem, for which rule 2 is
    the whole guard, and a ``reference-transaction`` hook slower than the threshold, or a reflog
    so long that ``git reflog expire`` rewrites it for longer (both run while git holds the ref
    lock); raise ``tasks.staleLockAfter`` where that can happen. Without ``/proc`` (macOS, BSD)
    rules 1 and 2 remain.

Removing exactly the file judged
    Between the look and the removal, the file at the path may have changed hands: its holder,
    alive after all, renamed it over the ref, and another writer created a new lock. So the
    removal (:func:`remove`) first renames the path to a unique quarantine name beside it (a
    ``.lock`` name, which git and libgit2 never read as a ref), then compares the renamed file
    with the judged one (device, inode, size, mtime: a rename keeps them all). The same file:
    it is deleted, and the ref is free. Another file: it is put back with ``link`` then
    ``unlink``, which never replaces an existing path (a rename would clobber a lock created in
    the meantime), and nothing is removed. If a third lock took the path in the microseconds of
    that swap, the quarantined file is left where it is and the log says so.

    Removing the lock of a dead holder loses nothing that was acknowledged: git and libgit2
    acknowledge an update only after the rename, so the ref still holds the value it had.

Every removal is a warning on the ``tasksync`` logger (the CLI prints it as one ``warning:``
line; the library itself never prints) and one line in ``<common-dir>/tasksync/recovery.log``.

``packed-refs.lock`` is never removed: ``git pack-refs``, ``git gc`` and ref deletions hold it
outside the writers' kernel lock for as long as rewriting ``packed-refs`` takes, which grows
with the repository's refs, so no fixed age proves it stale (and it blocks no task write:
moving a loose or packed ref does not take it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import WARNING_SINKS, quoted

#: The file, in ``<common-dir>/tasksync/``, that records every lock removed.
RECOVERY_LOG = "recovery.log"
LOGGER = "tasksync"

# A process start time read from /proc can be later than the true one by the granularity of
# the clock and of file times; a process that started this much after the lock's last write
# still counts as a possible holder.
_START_SLACK = 1.0
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class LockFile:
    """One look at a lock file: which file it was, its size, its last write and when seen."""

    path: Path
    device: int
    inode: int
    size: int
    mtime_ns: int
    seen: float  # time.time() at the look

    @property
    def age(self) -> float:
        """Seconds from the file's last write to the look (never negative)."""
        return max(0.0, self.seen - self.mtime_ns / 1e9)

    def same_file(self, other: LockFile) -> bool:
        """Whether ``other`` is a look at the very same file, unchanged."""
        return (self.device, self.inode, self.size, self.mtime_ns) == (
            other.device,
            other.inode,
            other.size,
            other.mtime_ns,
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """A live process that holds, or may hold, a lock file."""

    pid: int
    command: str  # its command line, on one line and shortened
    why: str  # "has it open" or "may hold it in an open git transaction"

    def __str__(self) -> str:
        return f"process {self.pid} ({self.command}) {self.why}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a lock file is stale, and when not, why it is kept."""

    lock: LockFile
    stale: bool
    reason: str  # empty when stale
    holders: tuple[Holder, ...] = ()


@dataclass(frozen=True, slots=True)
class Removal:
    """What :func:`remove` did: ``removed``, or ``note`` says why the file is still there."""

    removed: bool
    note: str


def look(path: Path) -> LockFile | None:
    """The lock file at ``path`` as it is now; None when there is none (or no plain file)."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return LockFile(path, found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, time.time())


def judge(lock: LockFile, threshold: float, roots: Sequence[Path]) -> Verdict:
    """Whether ``lock`` is stale by rules 2 and 3 of the module docstring (the caller answers
    for rule 1). ``roots`` are the repository's directories (see :func:`repository_roots`)."""
    if lock.age < threshold:
        return Verdict(lock, False, f"younger than tasks.staleLockAfter ({threshold:g} s)")
    holders = find_holders(lock, roots)
    if holders:
        return Verdict(lock, False, str(holders[0]), holders)
    return Verdict(lock, True, "")


def remove(
    lock: LockFile, log_dir: Path, *, between: Callable[[Path], None] | None = None
) -> Removal:
    """Remove the file ``lock`` was a look at, if it is still the one at its path.

    ``between`` is a test seam, called with the quarantine path after the rename.
    """
    path = lock.path
    now = look(path)
    if now is None:
        return Removal(False, "it was gone already")
    if not now.same_file(lock):
        return Removal(False, "it changed since it was judged")
    quarantine = path.with_name(f"{path.name[: -len('.lock')]}.stale-{_unique()}.lock")
    try:
        path.rename(quarantine)
    except FileNotFoundError:
        return Removal(False, "it was gone already")
    except OSError as error:
        return Removal(False, f"it cannot be moved aside ({error.strerror or error})")
    if between is not None:
        between(quarantine)
    moved = look(quarantine)
    if moved is None or not moved.same_file(lock):
        note = _put_back(quarantine, path, log_dir)
        return Removal(False, note)
    with contextlib.suppress(OSError):  # else left under a .lock name nothing reads
        quarantine.unlink()
    _record(
        log_dir,
        f"removed the stale lock file {quoted(path)} ({lock.age:.1f} s old, left by a process "
        "that died while updating the ref)",
        f"removed {quoted(path)} age={lock.age:.1f}s size={lock.size}",
    )
    return Removal(True, "")


def _put_back(quarantine: Path, path: Path, log_dir: Path) -> str:
    """Return a file moved aside by mistake to ``path``, never replacing one there now."""
    try:
        os.link(quarantine, path)
    except OSError as error:
        _record(
            log_dir,
            f"a lock file taken for stale was live; it could not be put back at "
            f"{quoted(path)} ({error.strerror or error}) and was left at {quoted(quarantine)}",
            f"left {quoted(quarantine)} (could not put it back at {quoted(path)})",
        )
        return f"it changed hands and could not be put back (left at {quoted(quarantine)})"
    with contextlib.suppress(OSError):  # else a second name, under a .lock name nothing reads
        quarantine.unlink()
    return "it changed hands since it was judged (put back)"


def _unique() -> str:
    return f"{os.getpid()}-{os.urandom(4).hex()}"


def _record(log_dir: Path, warning: str, line: str) -> None:
    """The warning on the ``tasksync`` logger, and one line in the recovery log."""
    import logging

    logger = logging.getLogger(LOGGER)
    if not logger.handlers:  # a library never prints: no handler means nobody asked to hear
        logger.addHandler(logging.NullHandler())
    logger.warning("%s", warning)
    for sink in WARNING_SINKS:
        sink(warning)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = f"{stamp} pid={os.getpid()} {line}\n".encode("utf-8", "backslashreplace")
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_dir / RECOVERY_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError:
        return  # the removal stands; the warning has said it
    try:
        os.write(fd, text)  # one write of one line: appends from several processes never mix
    except OSError:
        pass
    finally:
        os.close(fd)


# -- who holds a lock -----------------------------------------------------------------------------


def repository_roots(common_dir: Path) -> tuple[Path, ...]:
    """The directories a git process working on this repository runs in: its common git dir,
    the top of its main worktree and of every linked one (from ``worktrees/*/gitdir``)."""
    roots = [common_dir]
    if common_dir.name == ".git":
        roots.append(common_dir.parent)
    try:
        linked = list((common_dir / "worktrees").iterdir())
    except OSError:
        linked = []
    for entry in linked:
        try:
            gitdir = (entry / "gitdir").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError):
            continue
        roots.append(entry)
        if gitdir:
            roots.append(Path(gitdir).parent)
    return tuple(_real(path) for path in roots)


def find_holders(lock: LockFile, roots: Sequence[Path]) -> tuple[Holder, ...]:
    """Live processes on this machine that hold ``lock`` or may: those with the file open, and
    ``git update-ref`` processes working in the repository (``roots``) that started before the
    file was last written. Empty where ``/proc`` is not there; processes of other users are
    not seen (their descriptors and directories cannot be read)."""
    try:
        pids = [name for name in os.listdir(_PROC) if name.isdigit()]  # noqa: PTH208
    except OSError:
        return ()
    target = str(_real(lock.path))
    boot = _boot_time()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    written = lock.mtime_ns / 1e9
    found: list[Holder] = []
    for pid in pids:
        # Every process is looked at: its files go through os and str, as pathlib objects
        # cost more than the system calls (130 processes: 16 ms with them, a few without).
        state = _state(f"/proc/{pid}/stat")
        if state is None or state[0] in "ZX":
            continue
        if _has_open(f"/proc/{pid}/fd", target, lock):
            found.append(Holder(int(pid), _command(_PROC / pid), "has it open"))
            continue
        if boot is None or boot + state[1] / tick > written + _START_SLACK:
            continue
        if not _runs_git(f"/proc/{pid}/exe"):
            continue
        process = _PROC / pid
        args = _arguments(process)
        if _is_update_ref(args) and _works_in(process, args, roots):
            why = "may hold it in an open git transaction"
            found.append(Holder(int(pid), _command(process), why))
    return tuple(found)


def _state(path: str) -> tuple[str, int] | None:
    """A process's state letter and start time (clock ticks after boot) from its ``stat``
    file, or None."""
    try:
        with open(path, "rb") as file:  # noqa: PTH123 - see find_holders
            text = file.read()
        fields = text.rsplit(b")", 1)[1].split()
        return fields[0].decode("ascii", "replace"), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_time() -> float | None:
    try:
        for line in (_PROC / "stat").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _has_open(directory: str, target: str, lock: LockFile) -> bool:
    """Whether a descriptor in ``directory`` (a process's ``fd``) is the lock file."""
    try:
        descriptors = os.listdir(directory)  # noqa: PTH208 - see find_holders
    except OSError:
        return False
    for fd in descriptors:
        link = f"{directory}/{fd}"
        try:
            if os.readlink(link) != target:  # noqa: PTH115 - see find_holders
                continue
            opened = os.stat(link)  # noqa: PTH116 - see find_holders
        except OSError:
            continue
        if (opened.st_dev, opened.st_ino) == (lock.device, lock.inode):
            return True
    return False


def _arguments(process: Path) -> list[str]:
    try:
        raw = (process / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _command(process: Path) -> str:
    shown = " ".join(_arguments(process)) or "?"
    shown = "".join(c if c.isprintable() else "?" for c in shown)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _runs_git(exe: str) -> bool:
    """Whether the program a process runs is git (``git``, or one of its ``git-*``)."""
    try:
        program = os.path.basename(os.readlink(exe))  # noqa: PTH115, PTH119 - see find_holders
    except OSError:
        return False
    return program == "git" or program.startswith("git-")


def _is_update_ref(args: list[str]) -> bool:
    """Whether git's arguments run ``update-ref``."""
    if not args:
        return False
    if Path(args[0]).name == "git-update-ref":
        return True
    return "update-ref" in args[1:]


def _works_in(process: Path, args: list[str], roots: Sequence[Path]) -> bool:
    """Whether the process's directory, its GIT_DIR-like variables or a path among its
    arguments lie in one of ``roots``, or git finds from one a git dir that does."""
    try:
        cwd = (process / "cwd").readlink()
    except OSError:
        return False
    # A relative GIT_DIR is relative to the process's directory, as its arguments are.
    places = [cwd, *(cwd / path for path in _environment_paths(process))]
    for arg in args[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        if "/" in value or value in (".", ".."):
            places.append(cwd / value)  # an absolute value stays itself
    for place in places:
        real = _real(Path(place))
        if _inside(real, roots):
            return True
        found = _discovered(real)
        if found is not None and _inside(found, roots):
            return True
    return False


def _discovered(place: Path) -> Path | None:
    """The git dir git finds from ``place``: at the first ``.git`` upwards, a directory, or a
    file ``gitdir: PATH`` (a linked worktree, a submodule, a ``--separate-git-dir`` one, whose
    top the repository's own directories do not name)."""
    for directory in (place, *place.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return dot_git
        try:
            text = dot_git.read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            continue
        if not text.startswith("gitdir: "):
            return None
        return _real(directory / text.removeprefix("gitdir: ").strip())
    return None


def _environment_paths(process: Path) -> Iterable[Path]:
    try:
        raw = (process / "environ").read_bytes()
    except OSError:
        return ()
    found = []
    for entry in raw.split(b"\0"):
        key, _, value = entry.partition(b"=")
        if key in (b"GIT_DIR", b"GIT_COMMON_DIR", b"GIT_WORK_TREE") and value:
            found.append(Path(os.fsdecode(value)))
    return found


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _real(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return path


# -- the writers' kernel lock ---------------------------------------------------------------------


def writer_lock_holders(path: Path) -> tuple[int, ...] | None:
    """Who holds the writers' kernel lock at ``path``: None when nobody does (or locks do not
    work here), else the holders' process ids as ``/proc/locks`` shows them (maybe none)."""
    if os.name != "posix":  # pragma: no cover - POSIX only
        return None
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held = os.fstat(fd)
    except OSError:
        return None
    else:
        return None  # it was free (closing the descriptor below frees it again)
    finally:
        os.close(fd)
    return tuple(_flock_holders(held.st_dev, held.st_ino))


def _flock_holders(device: int, inode: int) -> Iterable[int]:
    """Process ids holding (not waiting for) a lock on the file, from ``/proc/locks``."""
    try:
        lines = (_PROC / "locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return ()
    wanted = (os.major(device), os.minor(device), inode)
    found: list[int] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":
            continue
        try:
            major, minor, number = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(number)) == wanted:
                found.append(int(fields[4]))
        except ValueError:
            continue
    return found


def command_of(pid: int) -> str:
    """The command line of a process, on one line and shortened ("?" when it cannot be read)."""
    return _command(_PROC / str(pid))
