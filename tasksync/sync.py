"""Syncing the tasks ref with remotes, through the user's own ``git``.

Every network step is a ``git fetch`` or ``git push`` subprocess, so ssh configuration and
credential helpers work as they do for the user's branches. A sync fetches the remote's tasks
ref into a tracking ref that ``git branch -r`` does not list (``refs/tasksync/remotes/R/NAME``),
merges it three-way into the local ref (compare-and-swap, like every write), and pushes with a
lease on the value fetched, so the remote only ever fast-forwards; when the remote moved in
between, the push is refused and the sync fetches, merges and pushes again, with backoff, under
a time cap. A session clone first hands the work it did while its hub was missing to the hub.

Nothing fetched is taken on trust: a remote state that is not sound (the checks of the push
hooks) is refused before it is merged, and a state the tracking ref held that the remote has
since dropped (a third party's force-push) is kept under ``refs/tasksync/dropped/`` and merged
back, so a rewrite of the remote never deletes a task this clone has seen.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import SyncError
from .lock import KernelLock, LockTimeout

if TYPE_CHECKING:
    from .api import Merged, TaskStore

TRACKING = "refs/tasksync/remotes"
INCOMING = "refs/tasksync/incoming"
DROPPED = "refs/tasksync/dropped"
DEFAULT_TIMEOUT = 60.0
_FIRST_PAUSE = 0.05
_LAST_PAUSE = 2.0


class SyncResult(NamedTuple):
    """What one sync did."""

    remote: str | None  # None: only the hub was brought up to date
    fetched: str | None  # the remote's tasks commit, None when it has no tasks ref
    merged: Merged | None  # the merge of the remote's commit into the local ref
    pushed: str | None  # the commit pushed, None when the remote needed nothing
    handed_to_hub: Merged | None  # the merge of work done while the hub was missing
    attempts: int
    #: States fetched earlier that the remote no longer contains (it was force-pushed), which
    #: this sync merged back so that no task seen there is lost.
    restored: tuple[str, ...] = ()
    #: The merges of those states, in order: what they renumbered and settled.
    merged_back: tuple[Merged, ...] = ()


class Plan(NamedTuple):
    """What a sync would do (``--dry-run``)."""

    remote: str
    local: str | None
    fetched: str | None
    action: str  # "nothing", "fast-forward", "push", "merge and push", "create on remote"


def tracking_ref(remote: str, ref: str) -> str:
    """Where a remote's tasks ref is fetched to: ``refs/tasksync/remotes/<remote>/<name>``."""
    return f"{TRACKING}/{remote}/{ref.removeprefix('refs/tasks/')}"


def dropped_ref(remote: str, commit: str) -> str:
    """Where a state the remote dropped is kept until merged: ``refs/tasksync/dropped/R/ID``."""
    return f"{DROPPED}/{remote}/{commit}"


def sync(
    store: TaskStore,
    remote: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> SyncResult:
    """Bring the store and ``remote`` (default: ``origin`` of the store's repository, when it
    has one) to one merged state; see the module docstring."""
    missing = store.hub is not None and store.hub.repo is None
    # While the hub is missing, a named remote can still be synced with this clone's own ref.
    handed = hand_to_hub(store) if store.hub is not None and not (missing and remote) else None
    git = Git(store.store_dir)
    name = remote or "origin"
    if remote is None and not git.has_remote(name):
        if store.hub is None:
            raise SyncError(name, "is not a remote of this repository", "add one or name one")
        return SyncResult(None, None, None, None, handed, 0)
    if not git.has_remote(name):
        raise SyncError(name, f"is not a remote of {store.store_dir}", "`git remote -v` lists them")
    deadline = time.monotonic() + timeout
    # Same-machine syncs of one store take turns: they share its tracking refs.
    lock = KernelLock(store.store_dir / "tasksync" / "sync.lock", deadline)
    try:
        with lock:
            return _sync_with(store, git, name, deadline, handed)
    except LockTimeout:
        raise SyncError(
            name,
            f"was not synced: another sync of {store.store_dir} held its lock for {timeout:g} s",
            "try again when it is done",
        ) from None


def _sync_with(
    store: TaskStore, git: Git, name: str, deadline: float, handed: Merged | None
) -> SyncResult:
    tracking = tracking_ref(name, store.ref)
    attempts = 0
    merged: Merged | None = None
    restored: list[str] = []
    merged_back: list[Merged] = []
    refused: tuple[str | None, str] | None = None  # the remote's value at the last refusal
    while True:
        attempts += 1
        fetched, dropped = _fetch(store, git, name)
        if refused is not None and refused[0] == fetched:
            # Refused although the remote did not move: not a race but a rule of the remote.
            raise SyncError(
                name,
                f"refused the push of {store.ref} ({refused[1]})",
                "the local tasks ref keeps the merge; ask the remote's owner to accept "
                f"{store.ref}, or sync through another remote",
            )
        for commit, back in _restore(store, git, name, dropped):
            restored.append(commit)
            merged_back.append(back)
        back_in = (tuple(restored), tuple(merged_back))
        if fetched is not None and fetched != store.head():
            _check_incoming(store, name, fetched, tracking)
            # The remote's ids are the ones others already see: a task created here under an
            # id the remote has taken gets the next free one.
            merged = store.merge(tracking, keep_ids="theirs")
        local = store.head()
        if local is None or local == fetched:
            return SyncResult(name, fetched, merged, None, handed, attempts, *back_in)
        # The push skips pre-push hooks (it sends only this ref), so their check runs here:
        # never spread a state that a hand edit through plain git has broken.
        problems = store.check(local, since=fetched)
        if problems:
            raise SyncError(
                name,
                f"was not pushed to: {store.ref} at {local[:12]} is not sound ({problems[0]})",
                "fix it (`git tasks edit --raw`), then sync again",
            )
        landed, reason = git.push(name, store.ref, local, fetched)
        if landed:
            git.update_ref(tracking, local, fetched)
            return SyncResult(name, fetched, merged, local, handed, attempts, *back_in)
        refused = (fetched, reason)
        if time.monotonic() >= deadline:
            raise SyncError(
                name,
                f"kept moving: {attempts} pushes of {store.ref} were refused before the time cap",
                "try again, or raise `git config tasks.syncTimeout`",
            )
        pause = random.uniform(0, min(_LAST_PAUSE, _FIRST_PAUSE * 2**attempts))  # noqa: S311
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))


class Fetched(NamedTuple):
    """What :func:`_fetch` found."""

    commit: str | None  # the remote's tasks commit, None when it has no tasks ref
    dropped: tuple[str, ...]  # states the remote dropped that the local ref lacked


def _fetch(store: TaskStore, git: Git, name: str) -> Fetched:
    """Fetch ``name``'s tasks ref into its tracking ref. When the remote no longer contains
    what the tracking ref held (someone force-pushed it) and the local ref lacks that state
    too, it is kept under ``refs/tasksync/dropped/NAME/`` until :func:`_restore` merges it:
    kept from before the fetch, and judged after it with every state kept earlier."""
    tracking = tracking_ref(name, store.ref)
    kept = f"{DROPPED}/{name}/"
    held = git.refs(tracking, kept)  # one git process for both, as for the fetched value
    before, held_kind = held.pop(tracking, (None, ""))
    pinned = [commit for commit, _ in held.values()]
    local = store.head()
    if (
        before is not None
        and held_kind == "commit"
        and before not in pinned
        and (local is None or not store.is_ancestor(before, local))
    ):
        # Kept before the fetch can move the tracking ref off it, so that a sync killed right
        # after the fetch, a fetch that fails after pruning, or the gc a fetch may start never
        # loses it; forgotten below unless the remote dropped it.
        git.update_ref(dropped_ref(name, before), before, None)
        pinned.append(before)
    git.fetch(name)
    fetched, kind = git.refs(tracking).get(tracking, (None, ""))
    if fetched is not None and kind != "commit":
        raise SyncError(
            name,
            f"has {store.ref} at {fetched[:12]}, a {kind or 'missing object'}, not a commit",
            f"local tasks are unchanged; whoever looks after {name} must point it back at "
            "a commit of the tasks history (`git tasks log` in a clone lists them)",
        )
    dropped = []
    for commit in pinned:
        if _dropped(store, commit, fetched):
            dropped.append(commit)
        else:  # the remote or the local ref has it after all, or it was never sound
            git.run("update-ref", "-d", dropped_ref(name, commit), commit, check=False)
    return Fetched(fetched, tuple(dropped))


def _dropped(store: TaskStore, before: str, fetched: str | None) -> bool:
    """Whether ``before``, what the tracking ref held, is a state to keep: the remote's new
    value ``fetched`` does not contain it, nor does the local ref, and it is sound (a state
    that is not was never merged, and never will be)."""
    local = store.head()  # first: the usual answer, and a short walk from a near commit
    if local is not None and store.is_ancestor(before, local):
        return False  # the local ref has it: a merge keeps what it held
    if fetched is not None and store.is_ancestor(before, fetched):
        return False  # the remote moved forward: nothing was dropped
    return not store.check(before, since=local)


def _restore(
    store: TaskStore, git: Git, name: str, dropped: tuple[str, ...]
) -> list[tuple[str, Merged]]:
    """Merge back the states the remote dropped (see :func:`_fetch`) and forget them; each
    commit that was merged, with its merge (those the local ref had meanwhile are only
    forgotten)."""
    restored: list[tuple[str, Merged]] = []
    for commit in dropped:
        ref = dropped_ref(name, commit)
        local = store.head()
        if local is None or not store.is_ancestor(commit, local):
            # The ids of a state others fetched are the ones they know, as for the remote's.
            restored.append((commit, store.merge(ref, keep_ids="theirs")))
        git.run("update-ref", "-d", ref, commit, check=False)
    return restored


def _check_incoming(store: TaskStore, name: str, fetched: str, tracking: str) -> None:
    """Refuse to merge a remote state the push hooks would refuse to send (no tasks.md, not
    UTF-8, duplicate ids, a file over the size limit...): local tasks stay as they are."""
    local = store.head()
    if local is not None and store.is_ancestor(fetched, local):
        return  # nothing new: the local ref has it already
    problems = store.check(fetched, since=local)
    if problems:
        raise SyncError(
            name,
            f"has {store.ref} at {fetched[:12]} in a state tasksync will not merge ({problems[0]})",
            f"local tasks are unchanged; whoever looks after {name} must repair it, or take "
            f"it here to repair with `git tasks merge {tracking}` and `git tasks edit --raw`",
        )


def plan(store: TaskStore, remote: str | None = None) -> Plan:
    """Fetch and say what a sync would do, changing nothing but the tracking refs."""
    git = Git(store.store_dir)
    name = remote or "origin"
    if not git.has_remote(name):
        raise SyncError(name, f"is not a remote of {store.store_dir}", "`git remote -v` lists them")
    fetched, dropped = _fetch(store, git, name)
    local = store.head()
    if any(local is None or not store.is_ancestor(commit, local) for commit in dropped):
        action = "merge and push"  # a force-push dropped states a sync merges back
    elif local == fetched or (local is None and fetched is None):
        action = "nothing"
    elif local is None:
        action = "fast-forward"
    elif fetched is None:
        action = "create on remote"
    elif store.is_ancestor(local, fetched):
        action = "fast-forward"
    elif store.is_ancestor(fetched, local):
        action = "push"
    else:
        action = "merge and push"
    return Plan(name, local, fetched, action)


def setup_remote(store: TaskStore, remote: str) -> bool:
    """Make a plain ``git fetch REMOTE`` bring tasks too (into the tracking namespace).

    Adds one ``remote.REMOTE.fetch`` refspec; never sets ``remote.REMOTE.push``, which would
    change what a plain ``git push`` sends. False when it was there already.
    """
    git = Git(store.store_dir)
    if not git.has_remote(remote):
        raise SyncError(
            remote, f"is not a remote of {store.store_dir}", "`git remote -v` lists them"
        )
    spec = f"+refs/tasks/*:{tracking_ref(remote, 'refs/tasks/').rstrip('/')}/*"
    have = git.run("config", "--get-all", f"remote.{remote}.fetch", check=False).stdout.split()
    if spec in have:
        return False
    git.run("config", "--add", f"remote.{remote}.fetch", spec)
    return True


def hand_to_hub(store: TaskStore) -> Merged | None:
    """Merge into the hub what this session clone wrote on its own ref while the hub was
    missing. Raises SyncError while the hub is still missing."""
    hub = store.hub
    if hub is None:
        return None
    if hub.repo is None:
        raise SyncError(
            str(hub.path),
            "the hub is missing, so nothing can be synced through it",
            f"restore it, or point `git config tasks.hub` at its new place (from {hub.source})",
        )
    if not store.unsynced():
        return None
    local = Git(store.common_dir)
    mine = local.run("rev-parse", "--verify", store.ref).stdout.strip()
    incoming = f"{INCOMING}/{os.getpid()}-{os.urandom(4).hex()}"  # this hand-over's own
    local.run("push", "--quiet", "--no-verify", str(hub.path), f"+{mine}:{incoming}")
    try:
        # The hub's ids are the ones every other session knows: a task this clone created
        # under a taken id gets the next free one, never the other way round.
        return store.merge(mine, keep_ids="ours")
    finally:
        Git(store.store_dir).run("update-ref", "-d", incoming, check=False)


class Git:
    """The user's ``git``, run on one repository (argument lists, never a shell)."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        # Run where git itself would: relative remote URLs are resolved from there.
        self.cwd = git_dir.parent if git_dir.name == ".git" else git_dir

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, GIT_TERMINAL_PROMPT=os.environ.get("GIT_TERMINAL_PROMPT", "0"))
        try:
            done = subprocess.run(
                ["git", "--git-dir", str(self.git_dir), *args],
                capture_output=True,
                text=True,
                check=False,
                env=env,
                cwd=self.cwd,
            )
        except OSError as error:
            raise SyncError("git", f"cannot be run ({error})", "install git") from None
        if check and done.returncode != 0:
            raise SyncError(
                f"git {args[0]}", _last_line(done.stderr), "check the remote and try again"
            )
        return done

    def has_remote(self, name: str) -> bool:
        return self.run("config", "--get", f"remote.{name}.url", check=False).returncode == 0

    def fetch(self, remote: str) -> None:
        """Fetch ``remote``'s tasks refs to the tracking namespace."""
        space = tracking_ref(remote, "refs/tasks/").rstrip("/")
        done = self.run(
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            "--no-write-fetch-head",
            remote,
            f"+refs/tasks/*:{space}/*",
            check=False,
        )
        if done.returncode != 0:
            raise SyncError(
                remote,
                f"cannot be fetched from ({_last_line(done.stderr)})",
                "local tasks are unchanged; check the remote and run `git tasks sync` again",
            )

    def refs(self, *patterns: str) -> dict[str, tuple[str, str]]:
        """The refs ``git for-each-ref`` lists for ``patterns`` (a full name, or a prefix
        ending in ``/``): name -> (object id, object type; empty when it cannot be told)."""
        found = {}
        done = self.run(
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
            *patterns,
            check=False,
        )
        if done.returncode != 0:  # one of them names a missing object: no types then
            done = self.run("for-each-ref", "--format=%(objectname) - %(refname)", *patterns)
        for line in done.stdout.splitlines():
            oid, kind, name = line.split(" ", 2)
            found[name] = (oid, "" if kind == "-" else kind)
        return found

    def push(self, remote: str, ref: str, commit: str, expected: str | None) -> tuple[bool, str]:
        """Push ``commit`` to ``ref`` only if the remote still has ``expected`` there.

        (True, "") when it landed; (False, git's reason) when the remote refused it: because
        it moved (fetch, merge and try again) or by a rule of its own.
        """
        lease = f"--force-with-lease={ref}:{expected or ''}"
        done = self.run(
            "push", "--porcelain", "--no-verify", lease, remote, f"{commit}:{ref}", check=False
        )
        status = _porcelain_status(done.stdout, ref)
        if status is None:  # no verdict on our ref: the push never got that far
            raise SyncError(
                remote,
                f"cannot be pushed to ({_last_line(done.stderr)})",
                "the local tasks ref keeps the merge; run `git tasks sync` again later",
            )
        reason = _reason(done.stdout, ref) or _last_line(done.stderr)
        said = _remote_lines(done.stderr)  # what the remote's hooks said, for the user
        return status != "!", f"{reason}: {said}" if said else reason

    def update_ref(self, ref: str, new: str, old: str | None) -> None:
        self.run("update-ref", ref, new, old or "", check=False)


def _porcelain_status(output: str, ref: str) -> str | None:
    """The flag git's ``push --porcelain`` gives the update of ``ref`` (``!`` refused)."""
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].endswith(f":{ref}"):
            return parts[0]
    return None


def _reason(output: str, ref: str) -> str:
    """The summary git's ``push --porcelain`` gives a refused update of ``ref``."""
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].endswith(f":{ref}"):
            return parts[2].strip()
    return ""


# What git adds to every failure to reach a repository, whatever the cause.
_BOILERPLATE = ("Please make sure you have the correct access rights", "and the repository exists.")


def _last_line(text: str, keep: int = 4) -> str:
    """git's own reason on one line: its last few lines that say something (the line before
    a ``fatal:`` often says why: ``Permission denied (publickey).``, ``errno=Connection
    refused``)."""
    lines = [_printable(line) for line in text.splitlines() if line.strip()]
    said = [line for line in lines if line not in _BOILERPLATE and not line.startswith("hint:")]
    return "; ".join(said[-keep:]) if said else "git gave no reason"


def _remote_lines(text: str, limit: int = 400) -> str:
    """The ``remote:`` lines of git's output (a server hook's message) as one line."""
    said = [
        _printable(line.removeprefix("remote:"))
        for line in text.splitlines()
        if line.startswith("remote:") and line.removeprefix("remote:").strip()
    ]
    joined = "; ".join(said)
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def _printable(line: str) -> str:
    """One line a terminal shows harmlessly: a server's control characters are left out."""
    return "".join(c for c in line if c.isprintable()).strip()
