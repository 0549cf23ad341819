"""Which repository, ref and settings a path means, and how a workspace is named."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .errors import ConfigError
from .maintenance import DEFAULT_GC_AUTO
from .store import Location, Repo

DEFAULT_REF = "refs/tasks/main"
NAMESPACE = "refs/tasks/"
DEFAULT_RETRY_TIMEOUT = 10.0
DEFAULT_SYNC_TIMEOUT = 60.0
#: ``tasks.staleLockAfter`` by default: recovery comes within about this long after a kill.
DEFAULT_STALE_AFTER = 2.0
#: The largest file read from the tasks ref or written to it (``tasks.maxFileSize``): ten
#: times a 10,000-task tasks.md (about 1 MB), far above any spec written by hand.
DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024

_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*")


class Workspace(NamedTuple):
    """A workspace (worktree, clone or bare repository) and the settings it uses."""

    location: Location  # the workspace's own repository (names commits, finds the hub)
    ref: str
    name: str
    retry_timeout: float
    file_lock: bool
    sync_timeout: float = DEFAULT_SYNC_TIMEOUT
    #: Loose objects past which a write starts ``git gc --auto`` (0: never); see maintenance.
    pack_threshold: int = DEFAULT_GC_AUTO
    #: Age past which a ref lock file no live process holds is removed; see tasksync.stale.
    stale_lock_after: float = DEFAULT_STALE_AFTER
    #: Whether every object and ref a write makes reaches the disk before the write returns
    #: (``tasks.fsync``); see :meth:`tasksync.store.Repo.fsync_writes`.
    fsync: bool = False

    @classmethod
    def of(cls, repo: Repo, store: Repo | None = None) -> Workspace:
        """The workspace of ``repo``, whose tasks live in ``store`` (the hub; else ``repo``).

        The ref and its settings are the store's: every workspace sharing a hub uses one ref.
        """
        settings = store or repo
        ref = settings.config("tasks.ref") or DEFAULT_REF
        check_ref(ref)
        timeout = parse_duration("tasks.retryTimeout", settings.config("tasks.retryTimeout"))
        return cls(
            repo.location,
            ref,
            workspace_name(repo.location),
            timeout,
            settings.config_bool("tasks.fileLock", default=True),
            parse_duration(
                "tasks.syncTimeout", settings.config("tasks.syncTimeout"), DEFAULT_SYNC_TIMEOUT
            ),
            pack_threshold(settings),
            parse_duration(
                "tasks.staleLockAfter",
                settings.config("tasks.staleLockAfter"),
                DEFAULT_STALE_AFTER,
            ),
            fsync=settings.config_bool("tasks.fsync", default=False),
        )

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Trailers naming where a commit came from (a name, never an absolute path)."""
        out = [("Tasksync-Workspace", self.name)]
        if self.location.branch:
            out.append(("Tasksync-Branch", _one_line(self.location.branch)))
        return tuple(out)


def pack_threshold(repo: Repo) -> int:
    """``gc.auto`` (git's loose-object threshold), or 0 when ``tasks.autoPack`` is false."""
    if not repo.config_bool("tasks.autoPack", default=True):
        return 0
    text = repo.config("gc.auto")
    if text is None:
        return DEFAULT_GC_AUTO
    try:
        return max(0, int(text.strip()))
    except ValueError:
        raise ConfigError(
            "gc.auto", f"{text!r} is not a number", "set it with `git config gc.auto 6700`"
        ) from None


def max_file_size(config_int: Callable[[str], int | None]) -> int:
    """``tasks.maxFileSize``: the largest file, in bytes, that tasksync reads from the tasks ref
    or writes to it, read with ``config_int`` (a repository's reader of integer settings, with
    git's ``k``, ``m`` and ``g`` suffixes as ``git config --type=int`` takes them)."""
    fix = "set a size such as `git config tasks.maxFileSize 10m` (k, m and g suffixes)"
    value = config_int("tasks.maxFileSize")
    if value is None:
        return DEFAULT_MAX_FILE_SIZE
    if value <= 0:
        raise ConfigError("tasks.maxFileSize", f"{value} is not a positive size", fix)
    return value


def check_ref(ref: str) -> str:
    """Accept a ref name inside ``refs/tasks/`` that git can store and push."""
    fix = f"set a name such as {DEFAULT_REF} with `git config tasks.ref {DEFAULT_REF}`"
    if not ref.startswith(NAMESPACE) or len(ref) == len(NAMESPACE):
        raise ConfigError("tasks.ref", f"{ref!r} is not inside {NAMESPACE}", fix)
    parts = ref.split("/")
    for part in parts:
        if (
            not part
            or part.startswith(".")
            or part.endswith((".lock", "."))
            or ".." in part
            or "@{" in part
            or _BAD_REF_CHARS.search(part)
        ):
            raise ConfigError("tasks.ref", f"{ref!r} is not a valid ref name", fix)
    return ref


def parse_duration(key: str, text: str | None, default: float = DEFAULT_RETRY_TIMEOUT) -> float:
    """Seconds from ``10``, ``2.5s`` or ``500ms``; ``default`` when unset."""
    if text is None:
        return default
    match = _DURATION.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(
            key, f"{text!r} is not a positive duration", f"use seconds, e.g. `git config {key} 10`"
        )
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def workspace_name(location: Location) -> str:
    """The directory name of the worktree, or of the bare repository without ``.git``."""
    if location.workdir is not None:
        name = location.workdir.name
    else:
        name = location.git_dir.name
        if name == ".git":
            name = location.git_dir.parent.name
        elif name.endswith(".git"):
            name = name[: -len(".git")]
    return _one_line(name) or "repository"


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


# -- hubs -----------------------------------------------------------------------------------------

_SCP_LIKE = re.compile(r"^[^/\\]*:")  # user@host:path, host:path (git's ssh shorthand)
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_MAX_HOPS = 8


class Hub(NamedTuple):
    """The repository whose tasks ref a workspace reads and writes, when not its own."""

    path: Path
    source: str  # "tasks.hub" or the remote it comes from, e.g. "origin"
    repo: Repo | None  # None: the hub has gone missing


def find_hub(repo: Repo) -> Hub | None:
    """The hub of ``repo``: ``tasks.hub`` (a path, or ``none``), else ``origin`` when it is a
    repository on this machine (a session clone made with ``git clone PATH``). A hub's own hub
    is followed, so a clone of a clone still shares the first repository's ref."""
    hub: Hub | None = None
    chain = [repo.location.common_dir]
    current = repo
    for _ in range(_MAX_HOPS):
        found = _next_hub(current)
        if found is None:
            return hub
        if found.repo is None:
            # A hub on the way is missing: which ref it would lead to is unknown, so this
            # workspace works on its own ref, as when its first hub is missing.
            return found
        if _key(found.repo.location.common_dir) in map(_key, chain):
            names = " -> ".join(str(path) for path in (*chain, found.repo.location.common_dir))
            raise ConfigError(
                "tasks.hub",
                f"hubs form a cycle ({names})",
                "set `git config tasks.hub none` in the repository that holds the tasks",
            )
        chain.append(found.repo.location.common_dir)
        hub, current = found, found.repo
    return hub


def _next_hub(repo: Repo) -> Hub | None:
    setting = repo.config("tasks.hub")
    if setting is not None:
        if setting.strip().lower() in ("none", "off", "false", ""):
            return None
        path = _local_path(setting, repo)
        if path is None:
            raise ConfigError(
                "tasks.hub",
                f"{setting!r} is not a path on this machine",
                "set a repository path, or `git config tasks.hub none`",
            )
        return Hub(path, "tasks.hub", Repo.open_exact(path))
    url = repo.config("remote.origin.url")
    path = None if url is None else _local_path(url, repo)
    if path is None:
        return None
    return Hub(path, "origin", Repo.open_exact(path))


def _local_path(url: str, repo: Repo) -> Path | None:
    """The path a remote URL names on this machine, or None for a network URL."""
    text = url.strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text or (_SCP_LIKE.match(text) and not _DRIVE.match(text)):
        return None
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        top = repo.location.workdir or repo.location.git_dir
        path = top / path
    try:
        return path.resolve()
    except OSError:
        return path


def _key(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)
