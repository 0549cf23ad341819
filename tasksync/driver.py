"""A git merge driver for a ``process/tasks.md`` kept in a working tree.

Git runs the driver for every path that ``.gitattributes`` marks ``merge=tasks``, during merges,
rebases and cherry-picks, with three temporary files: the common ancestor, our version (which
receives the result) and their version. :func:`merge_files` merges them with :func:`.merge3`,
whose conflicts are settled by fixed rules, so the merge is never blocked by tasks.md.

:func:`install` writes the two config keys git looks the driver up by and the attributes line
that selects it. Config goes through the ``git config`` command line, never a file edit.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import MergeDriverError, NotARepository
from .merge import IndexMerge, merge3

#: The name of the driver in ``merge.<name>.*`` and in ``merge=<name>``.
DRIVER = "tasks"
#: What git runs: %O ancestor, %A ours (receives the result), %B theirs, %P the path.
COMMAND = "git tasks merge-driver %O %A %B %P"
DESCRIPTION = "tasksync: task-aware merge of process/tasks.md"
#: The path the driver is installed for, as written in ``.gitattributes``.
TASKS_PATH = "process/tasks.md"
ATTRIBUTES_LINE = f"{TASKS_PATH} merge={DRIVER}"


@dataclass(frozen=True, slots=True)
class ConfigSetting:
    """One config key the install wrote, or found already set to the same value."""

    key: str
    value: str
    changed: bool


@dataclass(frozen=True, slots=True)
class Installation:
    """What :func:`install` did: config written at ``scope``, the attributes file checked."""

    scope: str  # "repository" or "global"
    settings: tuple[ConfigSetting, ...]
    attributes: Path
    attributes_changed: bool


# -- merging --------------------------------------------------------------------------------------


def merge_files(base: Path, ours: Path, theirs: Path, name: str | None = None) -> IndexMerge:
    """Merge ``theirs`` into ``ours`` with ``base`` as the ancestor; write the result to ``ours``.

    All three are read as strict UTF-8 before anything is written: when one cannot be read,
    :class:`MergeDriverError` is raised and ``ours`` is left as it was. ``name`` is the path
    being merged, for messages. The result replaces ``ours`` atomically.
    """
    shown = name or str(ours)
    texts = [
        _read(path, side, shown)
        for path, side in (
            (base, "common ancestor"),
            (ours, "our version"),
            (theirs, "their version"),
        )
    ]
    merged = merge3(*texts)
    if merged.text != texts[1]:
        try:
            _write_atomically(ours, merged.text.encode("utf-8"))
        except OSError as error:
            problem = f"cannot write the merged text to {ours}: {error.strerror or error}"
            raise MergeDriverError(shown, problem, _RESOLVE_BY_HAND.format(name=shown)) from None
    return merged


_RESOLVE_BY_HAND = "the file is left conflicted; resolve it by hand as UTF-8, then `git add {name}`"


def _read(path: Path, side: str, name: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        problem = f"cannot read {side} ({path}): {error.strerror or error}"
        raise MergeDriverError(name, problem, _RESOLVE_BY_HAND.format(name=name)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        problem = (
            f"{side} ({path}) is not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})"
        )
        raise MergeDriverError(name, problem, _RESOLVE_BY_HAND.format(name=name)) from None


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` (same mode), then move it over ``path``.

    Readers see the old content or the new, never a part; on failure ``path`` is unchanged.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).chmod(mode)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- installing -----------------------------------------------------------------------------------


def install(path: Path | str = ".", *, global_config: bool = False) -> Installation:
    """Configure the ``tasks`` merge driver for the repository containing ``path``.

    Sets ``merge.tasks.name`` and ``merge.tasks.driver`` in the repository's config (the
    user's global config with ``global_config``) and makes sure the working tree's root
    ``.gitattributes`` holds :data:`ATTRIBUTES_LINE`. Running it again changes nothing.
    Raises :class:`NotARepository` outside a repository and :class:`MergeDriverError` in a
    repository without a working tree.
    """
    where = Path(path).absolute()
    if not where.is_dir():
        raise NotARepository(str(where))
    inside = _git(where, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0:
        raise NotARepository(str(where))
    if inside.stdout.strip() != "true":
        raise MergeDriverError(
            str(where),
            "not in a working tree (a bare repository, or inside .git): there is no "
            ".gitattributes to select the merge driver",
            "run `git tasks merge-driver install` in a clone or worktree with checked-out files",
        )
    top = _git(where, "rev-parse", "--show-toplevel").stdout.rstrip("\n")
    scope = "global" if global_config else "repository"
    level = "--global" if global_config else "--local"
    settings = tuple(
        _set_config(where, level, f"merge.{DRIVER}.{key}", value)
        for key, value in (("name", DESCRIPTION), ("driver", COMMAND))
    )
    attributes = Path(top) / ".gitattributes"
    return Installation(scope, settings, attributes, _add_attributes_line(attributes))


def _set_config(cwd: Path, level: str, key: str, value: str) -> ConfigSetting:
    current = _git(cwd, "config", level, "--get-all", key)
    if current.returncode == 0 and current.stdout.splitlines() == [value]:
        return ConfigSetting(key, value, changed=False)
    done = _git(cwd, "config", level, "--replace-all", key, value)
    if done.returncode != 0:
        raise MergeDriverError(
            key,
            f"`git config {level}` failed: {done.stderr.strip() or f'exit {done.returncode}'}",
            f"fix that, or set it by hand: git config {level} {key} '{value}'",
        )
    return ConfigSetting(key, value, changed=True)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as error:
        raise MergeDriverError(
            "git", f"cannot run git: {error.strerror or error}", "install git and try again"
        ) from None


def _add_attributes_line(attributes: Path) -> bool:
    """Append :data:`ATTRIBUTES_LINE` to ``attributes`` unless a line already says it."""
    fix = f"add the line `{ATTRIBUTES_LINE}` to it by hand"
    try:
        data = attributes.read_bytes() if attributes.exists() else None
    except OSError as error:
        raise MergeDriverError(
            str(attributes), f"cannot read it: {error.strerror or error}", fix
        ) from None
    wanted = ATTRIBUTES_LINE.split()
    text = (data or b"").decode("utf-8", "replace")
    if any(line.split() == wanted for line in text.splitlines()):
        return False
    eol = b"\r\n" if data is not None and b"\r\n" in data else b"\n"
    new = data or b""
    if new and not new.endswith(b"\n"):
        new += eol
    new += ATTRIBUTES_LINE.encode("utf-8") + eol
    try:
        if data is None:
            with attributes.open("xb") as handle:
                handle.write(new)
        else:
            _write_atomically(attributes, new)
    except OSError as error:
        raise MergeDriverError(
            str(attributes), f"cannot write it: {error.strerror or error}", fix
        ) from None
    return True
