"""Refs: where the store reads them and moves them by compare-and-swap.

Two implementations of one small interface, :class:`Refs`:

- :class:`LibgitRefs`, through libgit2, for every repository libgit2 can open (microseconds a
  read, its own ref lock and reflog);
- :class:`GitRefs`, through the user's ``git`` (``for-each-ref``, ``update-ref --stdin``,
  ``rev-parse``, ``reflog``), for repositories whose refs are in **reftable**
  (``extensions.refStorage = reftable``, which git 2.45 and later can create). libgit2 1.9
  refuses to open those; :func:`open_reftable` opens one all the same with that extension
  allowed for the moment of the open and its ref database replaced by an empty one, so objects,
  configuration, index and ignore rules still go through libgit2 while any ref access libgit2
  would make fails loudly instead of reading or writing the wrong place. Each git call is one
  process of a few milliseconds.

Whichever moves a ref, a refused move is a :class:`WriteFailed` the write loop retries after
re-reading the ref: the comparison happens under the ref storage's own lock either way.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from ..errors import FormatError, ReftableUnsupported, StoreError, UnknownRevision

if TYPE_CHECKING:  # the git backend's module, imported when it runs
    import subprocess

#: Test seam: when True, every repository opened afterwards has its refs moved through git as
#: a reftable repository's are, and its libgit2 ref database removed (see :func:`ref_backend`).
FORCE_GIT_REFS = False

#: The oldest git that reads and writes reftable repositories.
REFTABLE_GIT = (2, 45)

# What decides which repository a git command works on, besides ``--git-dir``: dropped so a
# variable set by a hook or the user's shell never points the command elsewhere.
_LOCATING = ("GIT_DIR", "GIT_COMMON_DIR", "GIT_WORK_TREE", "GIT_NAMESPACE", "GIT_INDEX_FILE")
_VERSION = re.compile(r"(\d+)\.(\d+)")
_OPENING = threading.Lock()  # libgit2's list of extensions is one for the whole process
_FSYNC_SWITCH = threading.Lock()  # so is its fsync switch
# Seconds between tries of a swap while its ref's lock file exists (a test seam: _pause).
_LOCK_PAUSES = (0.001, 0.002, 0.004, 0.008)
_pause = time.sleep


class WriteFailed(Exception):
    """A write did not land: the ref moved, a lock was busy, or git failed to write.

    Internal to the write path: the transaction loop catches it and re-reads the ref.
    """


class Refs:
    """What the store does with refs: read, compare-and-swap, reflogs and revisions."""

    def read(self, ref: str) -> str | None:
        """The commit id ``ref`` points at, or None when it does not exist."""
        raise NotImplementedError

    def set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        """Move ``ref`` from ``expected`` (None: absent) to ``new``, or raise WriteFailed."""
        raise NotImplementedError

    def was_tip(self, ref: str, commit_id: str) -> bool:
        """Whether ``ref``'s reflog records it pointing at ``commit_id`` at some time."""
        raise NotImplementedError

    def has_reflog(self, ref: str) -> bool:
        raise NotImplementedError

    def ensure_reflog(self, ref: str) -> None:
        """Make every later update of ``ref`` logged, so ``@{n}`` names each state."""
        raise NotImplementedError

    def resolve(self, revision: str) -> str:
        """The commit a revision (a ref, ``ref@{n}``, a branch, an id) names, or
        UnknownRevision."""
        raise NotImplementedError

    def head_commit(self) -> str | None:
        """The commit HEAD is at; None before the first."""
        raise NotImplementedError

    def branch(self) -> str | None:
        """The checked-out branch's short name; None when detached, unborn or bare."""
        raise NotImplementedError

    def lock_path(self, ref: str) -> Path:
        """The lock file that, left behind by a killed process, blocks every move of ``ref``."""
        raise NotImplementedError

    def fsync_writes(self) -> None:
        """From now on, every ref move reaches the disk before it returns (``tasks.fsync``)."""
        raise NotImplementedError


# -- libgit2 --------------------------------------------------------------------------------------


class LibgitRefs(Refs):
    """Refs through libgit2, for the repositories it opens."""

    def __init__(self, repo: pygit2.Repository, common_dir: Path) -> None:
        self._repo = repo
        self._common = common_dir
        self._read_refs: dict[str, pygit2.Reference] = {}

    def read(self, ref: str) -> str | None:
        try:
            reference = self._repo.lookup_reference(ref)
        except KeyError:
            return None
        except (pygit2.GitError, ValueError) as error:
            raise StoreError(f"reading {ref}", str(error), "check `git show-ref`") from error
        target = reference.target
        if not isinstance(target, pygit2.Oid):
            raise FormatError(ref, "is a symbolic ref; tasks refs point at commits")
        # Kept for the compare-and-swap that usually follows: libgit2 compares against the
        # value a Reference was looked up with, which is exactly the tip just read.
        self._read_refs[ref] = reference
        return str(target)

    def set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        """The comparison happens under git's ref lock: for an existing ref libgit2 compares
        against the value the Reference was looked up with; an absent ref is created inside a
        ref transaction, because ``references.create`` checks existence before locking.

        A ref lock held for a moment (``git pack-refs``, and the gc that runs it, take it to
        delete the loose file) is waited for here, up to 15 ms, as git waits for one
        (``core.filesRefLockTimeout``), instead of failing the attempt, which the write loop
        would redo after a longer pause.
        """
        for pause in (*_LOCK_PAUSES, None):
            try:
                self._set_if_equals(ref, expected, new, message)
                return
            except (pygit2.GitError, OSError, KeyError, ValueError) as error:
                if pause is None or not self.lock_path(ref).exists():
                    raise WriteFailed(str(error)) from error
            _pause(pause)

    def _set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        repo = self._repo
        if expected is None:
            with repo.transaction() as txn:
                txn.lock_ref(ref)
                if repo.references.get(ref) is not None:
                    raise WriteFailed
                txn.set_target(ref, new, message=message)
            return
        # The Reference read with the tip, if it holds the expected value; pop() hands it to
        # one caller only, so no two threads ever share a pygit2 object.
        reference = self._read_refs.pop(ref, None)
        if reference is None or str(reference.target) != expected:
            reference = repo.references.get(ref)
        if reference is None or str(reference.target) != expected:
            raise WriteFailed
        reference.set_target(new, message)

    def was_tip(self, ref: str, commit_id: str) -> bool:
        try:
            reference = self._repo.references.get(ref)
            if reference is None:
                return False
            return any(str(entry.oid_new) == commit_id for entry in reference.log())
        except (pygit2.GitError, KeyError, ValueError):
            return False

    def has_reflog(self, ref: str) -> bool:
        return (self._common / "logs" / ref).is_file()

    def ensure_reflog(self, ref: str) -> None:
        """Create an empty reflog for ``ref`` so git and libgit2 log every later update."""
        _touch_reflog(self._common, ref)

    def resolve(self, revision: str) -> str:
        try:
            found = self._repo.revparse_single(revision)
            commit = found.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as error:
            raise UnknownRevision(revision, str(error)) from None
        return str(commit.id)

    def head_commit(self) -> str | None:
        try:
            if self._repo.head_is_unborn:
                return None
            return str(self._repo.head.peel(pygit2.Commit).id)
        except (pygit2.GitError, KeyError, ValueError) as error:
            raise StoreError("reading HEAD", str(error), "check `git status`") from None

    def branch(self) -> str | None:
        repo = self._repo
        if not repo.is_bare and not repo.head_is_detached and not repo.head_is_unborn:
            return repo.head.shorthand
        return None

    def lock_path(self, ref: str) -> Path:
        return self._common / (ref + ".lock")

    def fsync_writes(self) -> None:
        """A new ref database for this repository, made while libgit2's process-wide fsync
        switch is on: libgit2 reads the switch once, when a ref database is made, so this one
        fsyncs each ref's lock file and its reflog, and their directories, before the rename;
        the switch is off again at once for every other repository of the process. (Set
        around each write instead, it would reach only objects: the database was made
        before.)"""
        with _FSYNC_SWITCH:
            pygit2.settings.enable_fsync_gitdir(True)
            try:
                self._repo.set_refdb(pygit2.Refdb.open(self._repo))
            finally:
                pygit2.settings.enable_fsync_gitdir(False)
        self._read_refs.clear()  # References of the old database would write through it


def _touch_reflog(common_dir: Path, ref: str) -> None:
    log = common_dir / "logs" / ref
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch(exist_ok=True)
    except OSError:
        pass  # the reflog is a convenience; the ref works without it


# -- git ------------------------------------------------------------------------------------------


class GitRefs(Refs):
    """Refs through the user's ``git``: one process per call, arguments never through a shell.

    A read is ``git for-each-ref``; a move is ``git update-ref --stdin -z`` with ``update REF
    NEW OLD`` (or ``create REF NEW`` for an absent ref), which git compares under its own lock
    (the ref's ``.lock`` file, or ``reftable/tables.list.lock``) and refuses with a non-zero
    exit when the ref moved: a WriteFailed, as a refused libgit2 swap is. Every move passes
    ``--create-reflog``, so reflogs start with the ref. Hooks are off for these commands
    (``core.hooksPath`` is the null device): no ``reference-transaction`` hook runs, as none
    runs when libgit2 moves a ref, and each retry stays one quick process.
    """

    def __init__(self, git_dir: Path, common_dir: Path, *, reftable: bool, bare: bool) -> None:
        self.git_dir = git_dir
        self._common = common_dir
        self.reftable = reftable
        self._bare = bare
        self._fsync = False  # tasks.fsync: git's ``core.fsync=reference`` for every move

    def _git(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        env = {key: value for key, value in os.environ.items() if key not in _LOCATING}
        command = ["git", "--git-dir", str(self.git_dir), "-c", f"core.hooksPath={os.devnull}"]
        if self._fsync:
            command += ["-c", "core.fsync=reference"]
        import subprocess  # not at import: most repositories never need it

        try:
            return subprocess.run(
                [*command, *args],
                input=stdin,
                capture_output=True,
                check=False,
                env=env,
                cwd=self.git_dir,
            )
        except OSError as error:
            raise StoreError(
                f"running `git {args[0]}`",
                str(error),
                "install git (2.45 or newer for a reftable repository)",
            ) from None

    def read(self, ref: str) -> str | None:
        done = self._git("for-each-ref", "--format=%(refname)%00%(objectname)%00%(symref)", ref)
        if done.returncode != 0:
            raise StoreError(f"reading {ref}", _said(done), "check `git show-ref`")
        for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
            name, _, rest = line.partition("\0")
            if name == ref:
                target, _, symref = rest.partition("\0")
                if symref:
                    raise FormatError(ref, "is a symbolic ref; tasks refs point at commits")
                return target
        if done.stderr.strip():  # e.g. "ignoring broken ref": there, but unreadable
            raise StoreError(f"reading {ref}", _said(done), "check `git show-ref`")
        return None

    def set_if_equals(self, ref: str, expected: str | None, new: str, message: str) -> None:
        if expected is None:
            command = f"create {ref}\0{new}\0"
        else:
            command = f"update {ref}\0{new}\0{expected}\0"
        done = self._git(
            "update-ref",
            "--stdin",
            "-z",
            "--create-reflog",
            "-m",
            message,
            stdin=command.encode("utf-8"),
        )
        if done.returncode != 0:
            raise WriteFailed(_said(done))

    def was_tip(self, ref: str, commit_id: str) -> bool:
        done = self._git("reflog", "show", "--format=%H", ref, "--")
        return done.returncode == 0 and commit_id in done.stdout.decode("ascii", "replace").split()

    def has_reflog(self, ref: str) -> bool:
        return self._git("reflog", "exists", ref).returncode == 0

    def ensure_reflog(self, ref: str) -> None:
        # reftable keeps no empty reflog: its first entry comes with the first --create-reflog
        # move. A files repository gets the empty log file libgit2 would make.
        if not self.reftable:
            _touch_reflog(self._common, ref)

    def resolve(self, revision: str) -> str:
        if not revision.strip():
            raise UnknownRevision(revision, "an empty revision")
        peeled = f"{revision}^{{commit}}"
        done = self._git("rev-parse", "--verify", "-q", "--end-of-options", peeled)
        if done.returncode != 0:  # 1, or 128 for a reflog entry past the end: no commit
            raise UnknownRevision(revision, _said(done) if done.stderr.strip() else revision)
        return done.stdout.decode("ascii").strip()

    def head_commit(self) -> str | None:
        done = self._git("rev-parse", "--verify", "-q", "HEAD^{commit}")
        if done.returncode == 1:
            return None
        if done.returncode != 0:
            raise StoreError("reading HEAD", _said(done), "check `git status`")
        return done.stdout.decode("ascii").strip()

    def branch(self) -> str | None:
        """The branch, from the one git call every open makes: it is also the proof that this
        git can read the repository (ReftableUnsupported when it cannot)."""
        done = self._git("rev-parse", "--verify", "-q", "--symbolic-full-name", "HEAD")
        if done.returncode not in (0, 1):
            if self.reftable:
                _check_git_version(self.git_dir, done)
            raise StoreError(f"opening {self.git_dir}", _said(done), "check `git status`")
        name = done.stdout.decode("utf-8", "surrogateescape").strip()
        if self._bare or done.returncode != 0 or not name.startswith("refs/heads/"):
            return None
        return name.removeprefix("refs/heads/")

    def lock_path(self, ref: str) -> Path:
        if self.reftable:
            return self._common / "reftable" / "tables.list.lock"
        return self._common / (ref + ".lock")

    def fsync_writes(self) -> None:
        self._fsync = True


def _said(done: subprocess.CompletedProcess[bytes]) -> str:
    """git's own reason, on one line."""
    lines = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines()]
    said = " ".join(line for line in lines if line)
    return said or f"git exited with status {done.returncode}"


def _check_git_version(git_dir: Path, failed: subprocess.CompletedProcess[bytes]) -> None:
    """Raise ReftableUnsupported when the installed git is older than reftable needs."""
    import subprocess

    try:
        said = subprocess.run(
            ["git", "version"], capture_output=True, check=False, text=True
        ).stdout.strip()
    except OSError:
        said = ""
    match = _VERSION.search(said)
    if match is None or (int(match.group(1)), int(match.group(2))) < REFTABLE_GIT:
        version = said.removeprefix("git version ") or "unknown"
        raise ReftableUnsupported(str(git_dir), version, _said(failed))


# -- opening --------------------------------------------------------------------------------------


def is_reftable(git_dir: Path) -> bool:
    """Whether the repository of ``git_dir`` keeps its refs in reftable: format version 1 and
    ``extensions.refStorage = reftable`` in its (common) config file, as git reads them."""
    common = git_dir
    try:
        pointer = git_dir / "commondir"
        if pointer.is_file():
            common = git_dir / pointer.read_text(encoding="utf-8").strip()
        config = pygit2.Config(str(common / "config"))
        version = _value(config, "core.repositoryformatversion")
        storage = _value(config, "extensions.refStorage")
    except (OSError, UnicodeError, pygit2.GitError, ValueError):
        return False
    return version is not None and version.strip() == "1" and storage == "reftable"


def _value(config: pygit2.Config, key: str) -> str | None:
    return str(config[key]) if key in config else None


def open_reftable(git_dir: str) -> pygit2.Repository | None:
    """The repository at ``git_dir`` opened for its objects, config and working tree when its
    refs are in reftable; None when they are not (libgit2 refused it for another reason).

    libgit2 is told, only for this open, that the ``refstorage`` extension is fine; its files
    ref database is then swapped for an empty one, so a ref read libgit2 would make (it would
    find only git's compatibility stubs) fails instead. Ref work goes through :class:`GitRefs`.
    """
    if not is_reftable(Path(git_dir)):
        return None
    with _OPENING:
        known = "refstorage" in pygit2.settings.extensions
        try:
            if not known:
                pygit2.settings.set_extensions(["refstorage"])
            repo = pygit2.Repository(git_dir)
        except pygit2.GitError:
            return None
        finally:
            if not known:
                pygit2.settings.set_extensions(["!refstorage"])
    _without_refdb(repo)
    return repo


def _without_refdb(repo: pygit2.Repository) -> None:
    repo.set_refdb(pygit2.Refdb.new(repo))


def ref_backend(repo: pygit2.Repository, common_dir: Path, *, reftable: bool) -> Refs:
    """The refs of an opened repository: through git for reftable (or when the test seam
    forces it), after removing libgit2's ref database, else through libgit2."""
    if not reftable and not FORCE_GIT_REFS:
        return LibgitRefs(repo, common_dir)
    _without_refdb(repo)  # open_reftable did it already; once more costs nothing
    return GitRefs(Path(repo.path), common_dir, reftable=reftable, bare=repo.is_bare)
