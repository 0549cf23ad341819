"""``git tasks doctor``: what is wrong with a task store, each finding with the command that
fixes it.

:func:`diagnose` looks, in this order, at:

- the writers' kernel lock: held by a live process (a write under way, or a hung one);
- lock files of the tasks ref: the ref's own (``refs/tasks/main.lock``, or
  ``reftable/tables.list.lock`` in a reftable repository) and its reflog's, judged by the rules
  of :mod:`tasksync.stale`; and ``packed-refs.lock`` when it is old, which is only reported;
- the ref: unreadable, absent, or pointing at a commit that is missing, corrupt or not a commit;
  every tree and file of the tip (each read in full, so a corrupt object shows); the commits of
  its first-parent chain, :data:`HISTORY_DEPTH` of them, with their root trees;
- a sound tip: everything the pre-push checks refuse (:mod:`tasksync.verify`: an unreadable
  ``tasks.md``, duplicate ids, missing specs, conflict markers, files outside ``process/``...);
- loose objects past git's packing threshold while writes do not start packing.

Repairs (``repair=True``) are limited to removing lock files proven stale, under the writers'
kernel lock and by the rules writers use. Everything else is reported with the command that
recovers, which the user runs: doctor never moves the ref, never writes a commit, never
rewrites history. Recovery never needs a rewrite either: a missing object comes back with a
fetch from a remote that has it, and damaged files are replaced by a new commit on top.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from . import maintenance, stale
from .errors import TaskSyncError, quoted
from .lock import KernelLock, LockTimeout
from .markdown import INDEX_PATH, Index
from .store import Repo
from .store.merging import Damage
from .workspace import Workspace

#: Commits of the tip's first-parent chain whose presence is checked.
HISTORY_DEPTH = 1000
#: Damaged objects listed one by one; more are summed up in one finding.
_SHOWN = 10
_SLUG = re.compile(r"[^a-z0-9]+")


class Severity(Enum):
    """A problem keeps ``git tasks doctor`` exiting 1 until it is repaired; a note does not."""

    PROBLEM = "problem"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing doctor found: one line saying what and the command that fixes it."""

    kind: str  # e.g. "stale-lock", "missing-object", "duplicate-task-id", "loose-objects"
    severity: Severity
    message: str  # one line, ending with what to run
    fix: str | None = None  # the command alone, when there is one
    path: str | None = None  # the file concerned, when there is one
    repaired: bool = False  # removed by ``repair``

    @property
    def unresolved(self) -> bool:
        """A problem that is still there."""
        return self.severity is Severity.PROBLEM and not self.repaired

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
            "path": self.path,
            "repaired": self.repaired,
        }


def diagnose(
    repo: Repo,
    workspace: Workspace,
    writer_lock: Path,
    *,
    repair: bool = False,
    depth: int = HISTORY_DEPTH,
) -> tuple[Finding, ...]:
    """Every finding about the tasks ref of ``repo`` (see the module docstring)."""
    found = _writer_lock(writer_lock)
    found += _locks(repo, workspace, writer_lock, repair)
    found += _ref(repo, workspace.ref, depth)
    found += _packing(repo, workspace)
    return tuple(found)


# -- locks ----------------------------------------------------------------------------------------


def _writer_lock(path: Path) -> list[Finding]:
    holders = stale.writer_lock_holders(path)
    if holders is None:
        return []
    who = ", ".join(f"process {pid} ({stale.command_of(pid)})" for pid in holders)
    fix = f"kill {holders[0]}" if len(holders) == 1 else None
    stop = f"stop it (`{fix}`)" if fix else "stop it"
    return [
        Finding(
            "writer-lock",
            Severity.NOTE,
            f"the writers' lock {quoted(path)} is held by {who or 'another process'}: a write "
            f"is under way; if it hangs, {stop} (the lock is freed when it exits)",
            fix,
            str(path),
        )
    ]


def _locks(repo: Repo, workspace: Workspace, writer_lock: Path, repair: bool) -> list[Finding]:
    common = repo.location.common_dir
    ref = workspace.ref
    threshold = workspace.stale_lock_after
    roots = stale.repository_roots(common)
    blocks = {
        "ref-lock": f"blocks every write to {ref}",
        "reflog-lock": f"blocks `git reflog expire` and `git gc` on {ref}",
    }
    paths = {"ref-lock": repo.ref_lock_path(ref), "reflog-lock": common / "logs" / (ref + ".lock")}
    found: list[Finding] = []
    stale_ones: list[tuple[str, stale.Verdict]] = []
    for kind, path in paths.items():
        lock = stale.look(path)
        if lock is None:
            continue
        verdict = stale.judge(lock, threshold, roots)
        if verdict.stale:
            stale_ones.append((kind, verdict))
        else:
            found.append(_kept(kind, verdict, blocks[kind], threshold))
    if stale_ones and repair:
        found += _remove(stale_ones, blocks, writer_lock, workspace, roots)
    else:
        found += [
            _stale(
                kind,
                f"stale lock file {_judged(verdict.lock)} {blocks[kind]}; remove it with "
                "`git tasks doctor --repair`",
                verdict.lock,
            )
            for kind, verdict in stale_ones
        ]
    packed = stale.look(common / "packed-refs.lock")
    if packed is not None and packed.age >= threshold:
        found.append(
            Finding(
                "packed-refs-lock",
                Severity.NOTE,
                f"{quoted(packed.path)} is {packed.age:.0f} s old: `git pack-refs`, `git gc` and "
                "ref deletions fail while it is there (task writes do not); tasksync never "
                "removes it, as git holds it as long as rewriting packed-refs takes; if no git "
                f"process is running, remove it: `rm {shlex.quote(str(packed.path))}`",
                f"rm {shlex.quote(str(packed.path))}",
                str(packed.path),
            )
        )
    return found


def _stale(kind: str, message: str, lock: stale.LockFile, repaired: bool = False) -> Finding:
    return Finding(
        f"stale-{kind}",
        Severity.PROBLEM,
        message,
        None if repaired else "git tasks doctor --repair",
        str(lock.path),
        repaired,
    )


def _judged(lock: stale.LockFile) -> str:
    return f"{quoted(lock.path)} ({lock.age:.0f} s old, no live process holds it)"


def _kept(kind: str, verdict: stale.Verdict, blocks: str, threshold: float) -> Finding:
    lock = verdict.lock
    if not verdict.holders:
        return Finding(
            kind,
            Severity.NOTE,
            f"lock file {quoted(lock.path)} is {lock.age:.1f} s old: an update is under way "
            f"(one no live process holds is stale after tasks.staleLockAfter, {threshold:g} s)",
            None,
            str(lock.path),
        )
    holder = verdict.holders[0]
    return Finding(
        f"held-{kind}",
        Severity.PROBLEM,
        f"lock file {quoted(lock.path)} is {lock.age:.0f} s old and {holder}; it {blocks} "
        f"until that process finishes; if it hangs, stop it: `kill {holder.pid}`",
        f"kill {holder.pid}",
        str(lock.path),
    )


def _remove(
    stale_ones: list[tuple[str, stale.Verdict]],
    blocks: dict[str, str],
    writer_lock: Path,
    workspace: Workspace,
    roots: tuple[Path, ...],
) -> list[Finding]:
    """Remove the stale lock files while holding the writers' lock, judging each again."""
    found: list[Finding] = []
    deadline = time.monotonic() + workspace.retry_timeout
    try:
        with KernelLock(writer_lock, deadline) as taken:
            if workspace.file_lock and not taken.held:
                # Writers that can take it may be inside their swap: never judged here, as
                # writers never judge without it.
                return [
                    _unlocked(kind, verdict, blocks[kind], writer_lock)
                    for kind, verdict in stale_ones
                ]
            for kind, verdict in stale_ones:
                lock = stale.look(verdict.lock.path)
                if lock is None:  # a writer removed it meanwhile
                    gone = (
                        f"stale lock file {quoted(verdict.lock.path)} is gone (removed meanwhile)"
                    )
                    found.append(_stale(kind, gone, verdict.lock, repaired=True))
                    continue
                again = stale.judge(lock, workspace.stale_lock_after, roots)
                if not again.stale:
                    found.append(_kept(kind, again, blocks[kind], workspace.stale_lock_after))
                    continue
                removal = stale.remove(lock, writer_lock.parent)
                if removal.removed:
                    done = f"removed the stale lock file {_judged(lock)}"
                    found.append(_stale(kind, done, lock, repaired=True))
                else:
                    kept = (
                        f"stale lock file {_judged(lock)} {blocks[kind]}; not removed "
                        f"({removal.note}): run `git tasks doctor --repair` again"
                    )
                    found.append(_stale(kind, kept, lock))
    except LockTimeout:
        found += [
            _stale(
                kind,
                f"stale lock file {_judged(verdict.lock)} {blocks[kind]}; not removed: the "
                f"writers' lock stayed busy for {workspace.retry_timeout:g} s; run "
                "`git tasks doctor --repair` again",
                verdict.lock,
            )
            for kind, verdict in stale_ones
        ]
    return found


def _unlocked(kind: str, verdict: stale.Verdict, blocks: str, writer_lock: Path) -> Finding:
    """A stale lock file left in place because the writers' lock cannot be taken here."""
    lock = verdict.lock
    rm = f"rm {shlex.quote(str(lock.path))}"
    return Finding(
        f"stale-{kind}",
        Severity.PROBLEM,
        f"stale lock file {_judged(lock)} {blocks}; not removed: the writers' lock "
        f"{quoted(writer_lock)} cannot be taken here (another user's file, or no locks on "
        f"this filesystem); if no git or tasksync process is running, remove it: `{rm}`",
        rm,
        str(lock.path),
    )


# -- the ref and its objects ----------------------------------------------------------------------


def _ref(repo: Repo, ref: str, depth: int) -> list[Finding]:
    try:
        tip = repo.tip(ref)
    except TaskSyncError as error:
        good = _intact_reflog_state(repo, ref, None)
        fix = f"git update-ref {shlex.quote(ref)} {good}" if good else "git tasks sync"
        return [
            Finding(
                "unreadable-ref",
                Severity.PROBLEM,
                f"{ref} cannot be read ({error}); set it to its newest intact state from the "
                f"reflog, or get it from a remote: `{fix}`",
                fix,
            )
        ]
    if tip is None:
        return [
            Finding(
                "no-store",
                Severity.NOTE,
                f"no task store: {ref} does not exist; create it with `git tasks init`",
                "git tasks init",
            )
        ]
    damage = repo.damage(tip, depth)
    found = _damaged(repo, ref, tip, damage) if damage else []
    if not any(item.commit == tip for item in damage):  # the tip reads: check its files
        found += _checks(repo, ref, tip, depth)
    return found


def _damaged(repo: Repo, ref: str, tip: str, items: list[Damage]) -> list[Finding]:
    found: list[Finding] = []
    first = items[0]
    if first.commit == tip and first.kind == "commit":
        what = {
            "missing": "missing from the object store (pruned while a write landed?)",
            "unreadable": "corrupt",
        }.get(first.problem, first.problem)
        good = _intact_reflog_state(repo, ref, tip)
        back = (
            f"; or set the ref back to its newest intact state from the reflog "
            f"(later work is lost): `git update-ref {shlex.quote(ref)} {good} {tip}`"
            if good
            else f"; its reflog has no intact state (`git reflog show {ref}`)"
        )
        kind = "missing-object" if first.problem == "missing" else "damaged-object"
        if first.problem.startswith("not a"):
            kind = "not-a-commit"
        found.append(
            Finding(
                kind,
                Severity.PROBLEM,
                f"{ref} points at {tip}, which is {what}; a fetch from a remote that has it "
                f"brings it back: `git tasks sync`{back}",
                "git tasks sync",
            )
        )
        return found
    tip_damage = [d for d in items if d.commit == tip]
    history = [d for d in items if d.commit != tip]
    if tip_damage:
        good = _intact_ancestor(repo, tip, lambda commit: not repo.damage(commit, 0))
        restore = None if good is None else _restore_command(ref, tip, good)
        then = (
            ""
            if good is None
            else f"; or replace its files with those of {good[:12]}, the newest intact state, "
            f"by a new commit: `{restore}`"
        )
        for item in tip_damage[:_SHOWN]:
            where = item.path or "the root tree"
            found.append(
                Finding(
                    "damaged-object",
                    Severity.PROBLEM,
                    f"{where} ({item.kind} {item.oid}) at the tip of {ref} is {item.problem}; a "
                    f"fetch from a remote that has it brings it back: `git tasks sync`{then}",
                    restore or "git tasks sync",
                    item.path or None,
                )
            )
        if len(tip_damage) > _SHOWN:
            found.append(
                Finding(
                    "damaged-object",
                    Severity.PROBLEM,
                    f"and {len(tip_damage) - _SHOWN} more objects at the tip of {ref} are "
                    "missing or unreadable; `git fsck` lists them all",
                    "git fsck",
                )
            )
    for item in history:
        found.append(
            Finding(
                "broken-history",
                Severity.PROBLEM,
                f"the history of {ref} is broken at {item.commit} (its {item.kind} "
                f"{item.oid} is {item.problem}): the tip reads, but `git tasks log` and undo "
                "stop there; a fetch from a remote that has it brings it back: "
                "`git tasks sync`",
                "git tasks sync",
            )
        )
    return found


def _checks(repo: Repo, ref: str, tip: str, depth: int) -> list[Finding]:
    """The pre-push checks of a tip whose objects are all there."""
    from .verify import check_store_commit

    found: list[Finding] = []
    for line in check_store_commit(repo, tip):
        label = line.split(": ", 1)[0]
        kind = _SLUG.sub("-", label.lower()).strip("-") or "check"
        if label in ("unreadable index", "missing index"):
            good = _intact_ancestor(repo, tip, lambda commit: _index_reads(repo, commit), depth)
            if good is None:
                fix = "git tasks edit --raw"
                how = f"no earlier state has a readable {INDEX_PATH}; write one"
            else:
                fix = _restore_command(ref, tip, good)
                how = (
                    f"the newest readable one is at {good[:12]}; restore its files by a new commit"
                )
        elif line.startswith("missing spec") or label == "duplicate task id":
            fix, how = "git tasks edit --raw", "edit the task lines"
        elif label == "conflict marker" and INDEX_PATH in line:
            fix, how = "git tasks edit --raw", "resolve them"
        elif label in ("conflict marker", "unreadable spec"):
            fix, how = "git tasks edit ID --spec", "resolve them in the task's spec"
        else:
            fix = None
            how = "change the files with plain git (docs/format.md, 'Changing the files with "
            how += "plain git')"
        shown = f"{how}: `{fix}`" if fix else how
        found.append(Finding(kind, Severity.PROBLEM, f"{line}; {shown}", fix))
    return found


def _index_reads(repo: Repo, commit: str) -> bool:
    try:
        text = repo.reader(commit)(INDEX_PATH)
        Index.parse(text or "")
    except TaskSyncError:
        return False
    return text is not None


def _intact_ancestor(
    repo: Repo, tip: str, intact: Callable[[str], bool], depth: int = HISTORY_DEPTH
) -> str | None:
    """The newest commit below ``tip`` on its first-parent chain for which ``intact`` holds."""
    try:
        for number, commit in enumerate(repo.first_parents(tip)):
            if number > depth:
                return None
            if commit.id != tip and intact(commit.id):
                return commit.id
    except TaskSyncError:
        return None
    return None


def _intact_reflog_state(repo: Repo, ref: str, bad: str | None) -> str | None:
    """The newest state of ``ref``'s reflog other than ``bad`` whose objects are all there."""
    log = repo.location.common_dir / "logs" / ref
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    seen: set[str] = set()
    for line in reversed(lines[-200:]):
        fields = line.split(" ", 2)
        if len(fields) < 2:
            continue
        state = fields[1]
        if state in seen or state == bad or not state.strip("0"):
            continue
        seen.add(state)
        try:
            if not repo.damage(state, 0):
                return state
        except TaskSyncError:
            continue
    return None


def _restore_command(ref: str, tip: str, good: str) -> str:
    """One shell line: a new commit on ``tip`` whose files are those of ``good``, landed with
    a compare-and-swap against ``tip`` (history is kept; nothing is rewritten)."""
    message = f"tasks: restored the files of {good[:12]}"
    return (
        f"git update-ref {shlex.quote(ref)} "
        f"\"$(git commit-tree {good}^{{tree}} -p {tip} -m '{message}')\" {tip}"
    )


# -- packing --------------------------------------------------------------------------------------


def _packing(repo: Repo, workspace: Workspace) -> list[Finding]:
    if workspace.pack_threshold > 0:
        return []
    text = repo.config("gc.auto")
    try:
        limit = int(text) if text is not None else 0
    except ValueError:
        limit = 0
    limit = limit if limit > 0 else maintenance.DEFAULT_GC_AUTO
    loose = maintenance.loose_estimate(repo.location.common_dir)
    if loose <= limit:
        return []
    packing = repo.config_bool("tasks.autoPack", default=True)
    why = "gc.auto is 0" if packing else "tasks.autoPack is false"
    return [
        Finding(
            "loose-objects",
            Severity.NOTE,
            f"about {loose} loose objects, past git's packing threshold ({limit}), and writes "
            f"do not start packing ({why}); pack them with `git gc`",
            "git gc",
        )
    ]
