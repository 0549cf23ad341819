"""A copy of the task files in a directory, and its edits merged back.

``export`` writes ``process/tasks.md`` and the spec files of the ref's tip into a directory
(by default ``.tasks/`` at the top of the worktree, which it makes git ignore) with a record
of the commit they came from and a hash of every file written. Tools that only read files
read the copy. ``apply`` finds the files that differ from what was written, lands them as a
commit on that recorded commit and merges it into the tip (:meth:`TaskStore.merge_edits`),
so whatever other workspaces did meanwhile is kept; then the copy is brought up to the new
tip.

Crash safety and concurrency:

- Exports and applies of one copy take turns on a kernel lock beside it.
- Files are replaced by rename, so a reader never sees half a file. The record of an export in
  progress is written before any file and moved over the old one after the last; a file that
  matches any record counts as unedited, so an interrupted export never makes files look
  edited. A file whose text matches no record when its turn comes (someone saved it during the
  export) is never overwritten: the export stops there, as if interrupted.
- Before an apply merges, the record notes the commit holding the edits; if the apply dies
  after the merge landed, the next run finds that commit in the tip's history and takes the
  copy as applied, instead of applying the same edits twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import ExportError, NotInitialized
from .lock import KernelLock, LockTimeout
from .markdown import INDEX_PATH, SPEC_DIR

if TYPE_CHECKING:
    from .api import Merged, TaskStore
    from .store import Repo

DEFAULT_DIR = ".tasks"
RECORD = ".tasksync-export"
PENDING = ".tasksync-export.new"
LOCK = ".tasksync-export.lock"
_FORMAT = 1
_LOCK_WAIT = 10.0


class Exported(NamedTuple):
    """What :func:`export` did."""

    directory: Path
    commit: str  # the state of the ref the copy now holds
    written: tuple[str, ...]  # files (re)written because their text changed
    removed: tuple[str, ...]  # spec files removed because the ref no longer has them
    files: int  # files in the copy
    ignored: bool  # whether export made git ignore the directory just now


class Applied(NamedTuple):
    """What :func:`apply` did."""

    directory: Path
    edited: tuple[str, ...]  # files of the copy that differed from the export
    merged: Merged | None  # None: nothing to apply
    refreshed: Exported | None  # None: the copy changed during the apply and was left alone


class _Record(NamedTuple):
    ref: str
    commit: str
    hashes: dict[str, str]  # path → sha256 of the bytes written
    # Hashes an earlier interrupted export left in place, path → sha256s (pending records).
    also: dict[str, list[str]] = {}  # noqa: RUF012 - never mutated
    # An apply whose merge may have landed: the commit holding the edits, and the copy's
    # hashes as applied.
    applying: tuple[str, dict[str, str]] | None = None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _EditedMeanwhile(ExportError):
    """A file of the copy was saved while the copy was being written."""


class _Copy:
    """One copy directory and how commands name it in messages."""

    def __init__(self, directory: Path, explicit: bool) -> None:
        self.directory = directory
        self.explicit = explicit

    def command(self, verb: str, extra: str = "") -> str:
        """The exact command that acts on this copy."""
        where = ""
        if self.explicit:
            flag = "--from" if verb == "apply" else "--to"
            where = f" {flag} {self.directory}"
        return f"`git tasks {verb}{where}{extra}`"


def default_directory(local: Repo, option: str = "--to") -> Path:
    workdir = local.location.workdir
    if workdir is None:
        raise ExportError(
            "a bare repository has no worktree", f"give a directory with `{option} DIR`"
        )
    return workdir / DEFAULT_DIR


def _read_record(copy: _Copy, name: str) -> _Record | None:
    path = copy.directory / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        hashes = data["files"]
        if data.get("format") != _FORMAT or not isinstance(hashes, dict):
            raise ValueError("unknown format")
        also = data.get("also", {})
        applying = data.get("applying")
        return _Record(
            str(data["ref"]),
            str(data["commit"]),
            {str(k): str(v) for k, v in hashes.items()},
            {str(k): [str(h) for h in v] for k, v in also.items()},
            None
            if applying is None
            else (str(applying["commit"]), {str(k): str(v) for k, v in applying["files"].items()}),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ExportError(
            f"{path} cannot be read ({error})",
            f"export again with {copy.command('export', ' --force')} (edits in the copy are lost)",
        ) from None


def _write_record(directory: Path, name: str, record: _Record) -> None:
    data: dict[str, object] = {
        "format": _FORMAT,
        "ref": record.ref,
        "commit": record.commit,
        "files": record.hashes,
    }
    if record.also:
        data["also"] = record.also
    if record.applying is not None:
        data["applying"] = {"commit": record.applying[0], "files": record.applying[1]}
    text = json.dumps(data, indent=1, sort_keys=True)
    _replace(directory / name, (text + "\n").encode("utf-8"))


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` by rename from a temporary file beside it: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{time.monotonic_ns()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _task_files(directory: Path) -> Iterator[str]:
    """The paths (``process/...``) of the task files present in a copy: plain ``.md`` files,
    not symlinks, not editors' ``.#`` lock files."""
    index = directory / INDEX_PATH
    if index.is_file() and not index.is_symlink():
        yield INDEX_PATH
    specs = directory / SPEC_DIR
    if specs.is_dir() and not specs.is_symlink():
        for path in sorted(specs.rglob("*.md")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith(".#"):
                yield path.relative_to(directory).as_posix()


def _known(*records: _Record | None) -> dict[str, set[str]]:
    """Every hash a record allows per path: a file with one of them is not an edit."""
    known: dict[str, set[str]] = {}
    for record in records:
        if record is None:
            continue
        for path, digest in record.hashes.items():
            known.setdefault(path, set()).add(digest)
        for path, digests in record.also.items():
            known.setdefault(path, set()).update(digests)
    return known


def _edits(
    directory: Path, done: _Record | None, pending: _Record | None
) -> dict[str, bytes | None]:
    """Files of the copy that match no record: edited or new (bytes), or removed (None).

    ``done`` is the last completed export's record, ``pending`` an interrupted one's.
    """
    known = _known(done, pending)
    present = set(_task_files(directory))
    out: dict[str, bytes | None] = {}
    for path in sorted(present | set(known)):
        if path not in present:
            # Removed by hand only if a completed export wrote it and an interrupted one
            # (which may not have reached it yet, or was removing it) wanted it too.
            written = done is not None and path in done.hashes
            if written and (pending is None or path in pending.hashes):
                out[path] = None
            continue
        data = (directory / path).read_bytes()
        if _digest(data) not in known.get(path, set()):
            out[path] = data
    return out


def _records(store: TaskStore, copy: _Copy) -> tuple[_Record | None, _Record | None]:
    """The completed export's record and an interrupted export's. A completed record whose
    apply landed its merge is taken as applied: its base is the commit holding the edits."""
    done = _read_record(copy, RECORD)
    pending = _read_record(copy, PENDING)
    if done is not None and done.applying is not None:
        side, hashes = done.applying
        head = store.head()
        if head is not None and store.is_ancestor(side, head):
            done = _Record(done.ref, side, hashes)
        else:
            done = done._replace(applying=None)
    return done, pending


def _ensure_ignored(local: Repo, store: TaskStore, directory: Path) -> bool:
    """Make git ignore the default copy through ``info/exclude``; True if it was added."""
    if local.ignored(f"{DEFAULT_DIR}/"):
        return False
    exclude = store.common_dir / "info" / "exclude"
    try:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        before = exclude.read_bytes() if exclude.exists() else b""
        line = f"/{DEFAULT_DIR}/\n".encode()
        glue = b"" if not before or before.endswith(b"\n") else b"\n"
        _replace(exclude, before + glue + line)
    except OSError as error:
        raise ExportError(
            f"cannot make git ignore {directory} ({error})",
            f"add /{DEFAULT_DIR}/ to .gitignore, or export elsewhere with `--to DIR`",
        ) from None
    return True


class _Turn:
    """The kernel lock exports and applies of one copy take turns on."""

    def __init__(self, copy: _Copy) -> None:
        self._copy = copy
        self._lock: KernelLock | None = None

    def __enter__(self) -> _Turn:
        directory = self._copy.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock = KernelLock(directory / LOCK, time.monotonic() + _LOCK_WAIT)
            self._lock.__enter__()
        except LockTimeout:
            raise ExportError(
                f"another export or apply of {directory} held it for {_LOCK_WAIT:.0f} s",
                "wait for it to finish, then run the command again",
            ) from None
        except OSError as error:
            raise ExportError(
                f"cannot use {directory} ({error})",
                "check the directory's permissions, or give another with `--to DIR`",
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)


def export(
    store: TaskStore, local: Repo, to: Path | None = None, *, force: bool = False
) -> Exported:
    """Write the tip's task files into ``to`` (default ``.tasks/``) with a record of it."""
    copy = _Copy(to if to is not None else default_directory(local), to is not None)
    directory = copy.directory
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} is not a directory", "give another with `--to DIR`")
    with _Turn(copy):
        done, pending = _records(store, copy)
        record = done or pending
        if record is not None:
            if record.ref != store.ref and not force:
                raise ExportError(
                    f"{directory} holds a copy of {record.ref}, not {store.ref}",
                    "export elsewhere with `--to DIR`, or replace it with "
                    + copy.command("export", " --force"),
                )
            edits = _edits(directory, done, pending)
            if edits and not force:
                shown = ", ".join(sorted(edits)[:3]) + (" ..." if len(edits) > 3 else "")
                raise ExportError(
                    f"{directory} has edits not applied yet ({shown})",
                    f"land them with {copy.command('apply')}, or discard them with "
                    + copy.command("export", " --force"),
                )
        elif any(True for _ in _task_files(directory)) and not force:
            raise ExportError(
                f"{directory} holds task files tasksync did not write",
                "export elsewhere with `--to DIR`, or overwrite them with "
                + copy.command("export", " --force"),
            )
        commit = store.head()
        if commit is None:
            raise NotInitialized(store.ref)
        files = store.files(at=commit)
        ignored = to is None and _ensure_ignored(local, store, directory)
        known = None if force else _known(done, pending)
        return _write(store, copy, commit, files, known, ignored=ignored, pending=pending)


def _write(
    store: TaskStore,
    copy: _Copy,
    commit: str,
    files: Mapping[str, str],
    known: dict[str, set[str]] | None,
    *,
    ignored: bool = False,
    pending: _Record | None = None,
) -> Exported:
    """Write the copy of ``commit``; with ``known``, a file whose text matches no known hash
    (saved meanwhile) stops the export before it is overwritten or removed."""
    directory = copy.directory
    for path in files:
        _check_copy_path(directory, path)
    data = {path: text.encode("utf-8") for path, text in files.items()}
    also: dict[str, list[str]] = {}
    if pending is not None:  # an earlier interrupted export may have left any of its files
        for path, digests in _known(pending).items():
            also[path] = sorted(digests)
    record = _Record(store.ref, commit, {path: _digest(b) for path, b in data.items()}, also)
    try:
        # Checked before anything is written, and again just before each file is replaced.
        written = [
            path for path, blob in sorted(data.items()) if _current(directory / path) != blob
        ]
        removed = sorted(set(_task_files(directory)) - set(data))
        for path in (*written, *removed):
            _check_unedited(copy, path, _current(directory / path), known)
        _write_record(directory, PENDING, record)
        for path in written:
            _check_unedited(copy, path, _current(directory / path), known)
            _replace(directory / path, data[path])
        for path in removed:
            _check_unedited(copy, path, _current(directory / path), known)
            (directory / path).unlink()
        (directory / PENDING).replace(directory / RECORD)
    except OSError as error:
        raise ExportError(
            f"cannot write the copy in {directory} ({error})",
            "check the directory's permissions and free space, then export again",
        ) from None
    return Exported(directory, commit, tuple(written), tuple(removed), len(data), ignored)


def _check_copy_path(directory: Path, path: str) -> None:
    """Refuse, before anything is written, a path from the ref that would not land as a plain
    file inside the copy: a ``..``, ``.`` or ``.git`` name (a tree on the ref can be made to
    hold them), a control character, a backslash, or a directory of the copy that is a
    symbolic link leading out of it."""
    parts = path.split("/")
    odd = parts[0] != INDEX_PATH.split("/", 1)[0] or any(
        part in ("", ".", "..")
        or part.casefold() == ".git"
        or "\\" in part
        or any(unicodedata.category(c) in ("Cc", "Cs") for c in part)
        for part in parts
    )
    if not odd:
        try:
            odd = directory.resolve() not in (directory / path).resolve().parents
        except (OSError, RuntimeError):  # a symbolic link loop: not a place to write either
            odd = True
    if odd:
        raise ExportError(
            f"the tasks ref holds a file at {path!r}, which would not land inside {directory} "
            "as a plain file; nothing was written",
            "rename or remove it on the ref with plain git (docs/format.md, 'Changing the "
            "files with plain git')",
        )


def _current(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _check_unedited(
    copy: _Copy, path: str, current: bytes | None, known: dict[str, set[str]] | None
) -> None:
    if known is None or current is None or _digest(current) in known.get(path, set()):
        return
    raise _EditedMeanwhile(
        f"{copy.directory / path} was edited while the copy was being written; it is kept",
        f"apply it with {copy.command('apply')}, or discard it with "
        + copy.command("export", " --force"),
    )


def apply(store: TaskStore, local: Repo, source: Path | None = None) -> Applied:
    """Merge the edits made to the copy in ``source`` (default ``.tasks/``) into the tip,
    then bring the copy up to the new tip when nobody edited it meanwhile."""
    copy = _Copy(
        source if source is not None else default_directory(local, "--from"), source is not None
    )
    directory = copy.directory
    if not directory.is_dir():
        raise ExportError(
            f"{directory} holds no export of the tasks ref",
            f"create one with {copy.command('export')}",
        )
    with _Turn(copy):
        done, pending = _records(store, copy)
        done = _applicable(store, copy, done, pending)
        raw = _edits(directory, done, pending)
        if not raw:
            return Applied(directory, (), None, None)
        edits = _decoded(copy, raw)
        base = _base(copy, done, pending, raw)
        hashes = dict(done.hashes)
        for path, data in raw.items():
            if data is None:
                hashes.pop(path, None)
            else:
                hashes[path] = _digest(data)

        def landing(side: str) -> None:
            # Noted before the merge: a crash after it landed must not apply the edits twice.
            try:
                _write_record(directory, RECORD, done._replace(applying=(side, hashes)))
            except OSError as error:
                raise ExportError(
                    f"cannot note the apply in {directory / RECORD} ({error})",
                    "check the directory's permissions, then apply again",
                ) from None

        label = _label(store, directory)
        merged = store.merge_edits(
            base, edits, summary=f"tasks: applied edits from {label}", landing=landing
        )
        edited = tuple(sorted(raw))
        commit = store.head()
        if merged.applied is None or commit is None:  # pragma: no cover - edits always land
            return Applied(directory, edited, merged, None)
        applied = _Record(done.ref, merged.applied, hashes)
        try:
            _write_record(directory, RECORD, applied)
            (directory / PENDING).unlink(missing_ok=True)
        except OSError as error:
            raise ExportError(
                f"the edits landed but the record in {directory} cannot be updated ({error})",
                f"run {copy.command('export', ' --force')} before editing the copy again",
            ) from None
        try:
            refreshed = _write(store, copy, commit, store.files(at=commit), _known(applied))
        except _EditedMeanwhile:
            # Edited again meanwhile: the files stay; the record names the commit holding
            # exactly what was applied, so the next apply takes only the newer edits.
            return Applied(directory, edited, merged, None)
        return Applied(directory, edited, merged, refreshed)


def _applicable(
    store: TaskStore, copy: _Copy, done: _Record | None, pending: _Record | None
) -> _Record:
    """The completed export's record, when the copy can be applied to this store."""
    directory = copy.directory
    if done is None:
        if pending is not None:
            raise ExportError(
                f"the export into {directory} was interrupted before it finished",
                f"run {copy.command('export')} again",
            )
        raise ExportError(
            f"{directory} holds no export of the tasks ref",
            f"create one with {copy.command('export')}",
        )
    if done.ref != store.ref:
        raise ExportError(
            f"{directory} holds a copy of {done.ref}, not {store.ref}",
            f"apply it where {done.ref} is the tasks ref (`git config tasks.ref`)",
        )
    head = store.head()
    if head is None or not store.is_ancestor(done.commit, head):
        raise ExportError(
            f"the copy in {directory} was exported from {done.commit[:10]}, which this "
            "repository's tasks ref does not have",
            "apply it in the repository it came from, or export again with "
            + copy.command("export", " --force"),
        )
    return done


def _decoded(copy: _Copy, raw: Mapping[str, bytes | None]) -> dict[str, str | None]:
    directory = copy.directory
    if INDEX_PATH in raw and raw[INDEX_PATH] is None:
        raise ExportError(
            f"{directory / INDEX_PATH} is missing from the copy",
            "restore it (the copy would delete every task), or export again with "
            + copy.command("export", " --force"),
        )
    edits: dict[str, str | None] = {}
    for path, data in raw.items():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise ExportError(
                f"{directory / path!r} has a name that is not valid UTF-8",
                "rename it, then apply again",
            ) from None
        try:
            edits[path] = None if data is None else data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ExportError(
                f"{directory / path} is not valid UTF-8 ({error.reason} at byte {error.start})",
                "save it as UTF-8 and apply again",
            ) from None
    return edits


def _base(
    copy: _Copy, done: _Record, pending: _Record | None, raw: Mapping[str, bytes | None]
) -> str:
    """The state the edits were made against. After an interrupted export, an edited file
    that export was rewriting could have been edited from either state: refuse it."""
    if pending is None:
        return done.commit
    unsure = [p for p in sorted(raw) if done.hashes.get(p) != pending.hashes.get(p)]
    if unsure:
        raise ExportError(
            f"{copy.directory / unsure[0]} was edited while an interrupted export rewrote it",
            "save your edit elsewhere, run "
            + copy.command("export", " --force")
            + ", then redo it",
        )
    return done.commit


def _label(store: TaskStore, directory: Path) -> str:
    try:
        return directory.resolve().relative_to(store.workdir.resolve()).as_posix()
    except ValueError:
        return directory.name
