"""Which repository, ref and settings a path means, and how a workspace is named."""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import ConfigError
from .store import Location, Repo

DEFAULT_REF = "refs/tasks/main"
NAMESPACE = "refs/tasks/"
DEFAULT_RETRY_TIMEOUT = 10.0

_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*")


class Workspace(NamedTuple):
    """A workspace (worktree, clone or bare repository) and the settings it uses."""

    location: Location
    ref: str
    name: str
    retry_timeout: float
    file_lock: bool

    @classmethod
    def of(cls, repo: Repo) -> Workspace:
        ref = repo.config("tasks.ref") or DEFAULT_REF
        check_ref(ref)
        timeout = parse_duration("tasks.retryTimeout", repo.config("tasks.retryTimeout"))
        return cls(
            repo.location,
            ref,
            workspace_name(repo.location),
            timeout,
            repo.config_bool("tasks.fileLock", default=True),
        )

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Trailers naming where a commit came from (a name, never an absolute path)."""
        out = [("Tasksync-Workspace", self.name)]
        if self.location.branch:
            out.append(("Tasksync-Branch", _one_line(self.location.branch)))
        return tuple(out)


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


def parse_duration(key: str, text: str | None) -> float:
    """Seconds from ``10``, ``2.5s`` or ``500ms``; the default when unset."""
    if text is None:
        return DEFAULT_RETRY_TIMEOUT
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
