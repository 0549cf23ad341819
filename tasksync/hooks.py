"""Push hooks: what a push of the tasks ref or of a branch must not do, and their installation.

:func:`pre_push` judges the updates git is about to push (the lines of git's ``pre-push``
protocol) and :func:`check_update` one ref update a server is about to accept (git's ``update``
hook); both return a :class:`Report` of errors and warnings, and never print or exit.
:func:`install` and :func:`uninstall` put the hook scripts in place, keeping and chaining a
hook that was there before. History questions go to the git CLI, objects and refs to
:class:`~tasksync.store.Repo`.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, HookError, StoreError
from .markdown import INDEX_PATH
from .store import Repo
from .sync import tracking_ref
from .verify import check_store_commit
from .workspace import DEFAULT_REF, NAMESPACE, check_ref, find_hub

#: The line that marks a hook script as tasksync's own (followed by the hook's name).
MARKER = "# tasksync-hook:"
#: The suffix of a hook that was there before tasksync's and is now called first.
CHAINED = ".tasksync-chained"
STALE_KEY = "tasks.prePush.staleTasks"
IN_TREE_KEY = "tasks.prePush.inTreeTasks"
MODES = ("warn", "refuse", "ignore")

_OID = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_SHOWN_COMMITS = 3


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """One line of git's pre-push protocol: what is pushed where, over what."""

    local_ref: str
    local_oid: str
    remote_ref: str
    remote_oid: str

    @property
    def is_deletion(self) -> bool:
        return self.local_ref == "(delete)" or is_null(self.local_oid)

    @property
    def is_new(self) -> bool:
        return is_null(self.remote_oid)


@dataclass(frozen=True, slots=True)
class Report:
    """What a hook found: errors refuse the push, warnings only inform."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Installed:
    """What :func:`install` or :func:`uninstall` did to one hook file."""

    hook: Path
    action: str  # installed, updated, unchanged, removed, absent, foreign
    chained: Path | None = None  # the earlier hook now called first (or restored)


def is_null(oid: str) -> bool:
    """Whether ``oid`` is git's all-zero id (of any hash length)."""
    return bool(oid) and set(oid) == {"0"}


def parse_push_lines(text: str) -> list[RefUpdate]:
    """The updates of git's pre-push stdin: ``<local ref> <local oid> <remote ref> <remote oid>``
    per line, ids of 40 or 64 hex digits; blank lines are skipped."""
    updates: list[RefUpdate] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=3)
        if len(parts) != 4 or not (_OID.fullmatch(parts[1]) and _OID.fullmatch(parts[3])):
            raise HookError(
                "pre-push",
                f"line {number} of the input is not `<local ref> <local oid> <remote ref> "
                f"<remote oid>`: {line!r}",
                "run it as git's pre-push hook (`git tasks hooks install`)",
            )
        updates.append(RefUpdate(parts[0], parts[1].lower(), parts[2], parts[3].lower()))
    return updates


def pre_commit_update(env: Mapping[str, str], path: Path | str = ".") -> RefUpdate | None:
    """The update the pre-commit framework describes in its environment, or None without one.

    The framework reads git's stdin itself and passes one pushed ref on:
    ``PRE_COMMIT_REMOTE_BRANCH`` (the remote ref), ``PRE_COMMIT_LOCAL_BRANCH``,
    ``PRE_COMMIT_TO_REF`` (the commit pushed) and ``PRE_COMMIT_FROM_REF`` (a commit the remote
    has, when it knows one; absent when the whole history is new).
    """
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH")
    if not remote_ref:
        return None
    local_ref = env.get("PRE_COMMIT_LOCAL_BRANCH") or remote_ref
    local_oid = env.get("PRE_COMMIT_TO_REF") or Repo.discover(path).resolve_commit(local_ref)
    remote_oid = env.get("PRE_COMMIT_FROM_REF") or "0" * len(local_oid)
    return RefUpdate(local_ref, local_oid.lower(), remote_ref, remote_oid.lower())


def tasks_ref(repo: Repo) -> str:
    """The tasks ref of ``repo`` (``tasks.ref``, else refs/tasks/main)."""
    return check_ref(repo.config("tasks.ref") or DEFAULT_REF)


# -- pre-push ---------------------------------------------------------------------------------


def pre_push(path: Path | str, remote: str, updates: Sequence[RefUpdate]) -> Report:
    """Judge the updates of one ``git push`` to ``remote`` (a name, or a URL pushed to).

    For each ``refs/tasks/*`` update: no deletion, a sound tree, a fast-forward of the
    remote's value. For branch updates: a warning (or refusal, by ``tasks.prePush.staleTasks``)
    when the local tasks ref is behind the last fetched remote one, and a refusal (or warning,
    by ``tasks.prePush.inTreeTasks``) when the pushed commits edit an in-tree tasks.md while
    the repository keeps its tasks on the ref.
    """
    repo = Repo.discover(path)
    errors: list[str] = []
    warnings: list[str] = []
    for update in updates:
        if update.remote_ref.startswith(NAMESPACE):
            errors += _tasks_update(repo, remote, update)
    branches = [u for u in updates if u.remote_ref.startswith("refs/heads/") and not u.is_deletion]
    if branches:
        # A session clone keeps its tasks in its hub: judge staleness there, and not at all
        # when the push goes to the hub itself (they share one ref).
        hub = find_hub(repo)
        store = hub.repo if hub is not None and hub.repo is not None else repo
        to_hub = hub is not None and _same_place(repo, remote, hub.path)
        local = tasks_ref(store)
        stale_mode = "ignore" if to_hub else _mode(repo, STALE_KEY, "warn")
        if stale_mode != "ignore":
            stale = _stale(store, remote, local)
            (errors if stale_mode == "refuse" else warnings).extend(
                f"{line}{_SETTING[stale_mode].format(key=STALE_KEY)}" for line in stale
            )
        tree_mode = _mode(repo, IN_TREE_KEY, "refuse")
        has_tasks = (
            store.tip(local) is not None or _tip(store, tracking_ref(remote, local)) is not None
        )
        if tree_mode != "ignore" and has_tasks:
            for update in branches:
                found = _in_tree_edits(repo, remote, update, local)
                (errors if tree_mode == "refuse" else warnings).extend(
                    f"{line}{_SETTING[tree_mode].format(key=IN_TREE_KEY)}" for line in found
                )
    return Report(tuple(errors), tuple(warnings))


_SETTING = {
    "refuse": " (or let it through: `git config {key} warn`)",
    "warn": "",
}


def _sync(remote: str) -> str:
    return f"`git tasks sync {remote}`"


def _tasks_update(repo: Repo, remote: str, update: RefUpdate) -> list[str]:
    ref = update.remote_ref
    if update.is_deletion:
        return [
            f"{ref}: refusing to delete the tasks ref on {remote}: every clone's tasks live "
            f"there; keep it, and bring yours up to date with {_sync(remote)}"
        ]
    if not repo.has_commit(update.local_oid):
        return [f"{ref}: {update.local_oid} is not a commit; push a commit of {tasks_ref(repo)}"]
    problems: list[str] = []
    since: str | None = None
    if not update.is_new:
        if not repo.has_commit(update.remote_oid):
            problems.append(
                f"{ref}: {remote} has {update.remote_oid[:12]}, which is not here, so this "
                f"push may drop tasks written there; run {_sync(remote)} to fetch and merge "
                "them, then push"
            )
        elif not repo.is_ancestor(update.remote_oid, update.local_oid):
            problems.append(
                f"{ref}: not a fast-forward of {remote}'s {update.remote_oid[:12]}: it would "
                f"drop tasks written there; run {_sync(remote)} to merge them, then push"
            )
        else:
            since = update.remote_oid
    problems += [
        f"{ref}: {problem}; fix it on the ref (`git tasks edit --raw`, "
        f"`git tasks edit ID --spec`), then push with {_sync(remote)}"
        for problem in check_store_commit(repo, update.local_oid, since=since)
    ]
    return problems


def _mode(repo: Repo, key: str, default: str) -> str:
    value = repo.config(key)
    if value is None:
        return default
    mode = value.strip().lower()
    if mode not in MODES:
        raise ConfigError(
            key,
            f"{value!r} is not one of {', '.join(MODES)}",
            f"set one, e.g. `git config {key} {default}`",
        )
    return mode


def _tip(repo: Repo, ref: str) -> str | None:
    """The tip of ``ref``; None when it is absent or not a valid name (a remote given as URL)."""
    try:
        return repo.tip(ref)
    except StoreError:
        return None


def _same_place(repo: Repo, remote: str, hub: Path) -> bool:
    """Whether ``remote`` (a name or a URL) is the hub's repository."""
    url = repo.config(f"remote.{remote}.url") or remote
    try:
        target = Path(url.removeprefix("file://")).expanduser()
        if not target.is_absolute():
            target = (repo.location.workdir or repo.location.git_dir) / target
        return target.resolve() == hub.resolve()
    except (OSError, ValueError):
        return False


def _stale(repo: Repo, remote: str, local: str) -> list[str]:
    fetched = tracking_ref(remote, local)
    theirs = _tip(repo, fetched)
    if theirs is None:
        return []
    ours = repo.tip(local)
    if ours is not None and repo.is_ancestor(theirs, ours):
        return []
    if ours is None:
        state = f"{local} does not exist here, but {remote} has tasks"
    elif repo.is_ancestor(ours, theirs):
        state = f"{local} is behind {remote}'s tasks"
    else:
        state = f"{local} has diverged from {remote}'s tasks"
    return [
        f"{state} (as last fetched, {fetched} {theirs[:12]}); run {_sync(remote)} to bring them in"
    ]


def _in_tree_edits(repo: Repo, remote: str, update: RefUpdate, local: str) -> list[str]:
    """Commits of the push that add or change a tasks.md in the working tree."""
    # Commits already published on any remote are history, not edits this push makes.
    exclude = ["--remotes"]
    if not update.is_new and repo.has_commit(update.remote_oid):
        exclude.append(update.remote_oid)
    found = _git(
        repo,
        "log",
        "--format=%h",
        "--no-renames",
        "--diff-filter=AMT",
        update.local_oid,
        "--not",
        *exclude,
        "--",
        INDEX_PATH,
    ).split()
    if not found:
        return []
    shown = ", ".join(found[:_SHOWN_COMMITS]) + (", …" if len(found) > _SHOWN_COMMITS else "")
    return [
        f"{update.remote_ref}: {len(found)} pushed commit{'s' if len(found) > 1 else ''} "
        f"({shown}) change the in-tree {INDEX_PATH}, but this repository keeps its tasks on "
        f"{local} now; make the change there (`git tasks edit --raw`) and drop it from the "
        "branch"
    ]


def _is_remote(repo: Repo, remote: str) -> bool:
    return repo.config(f"remote.{remote}.url") is not None


def _git(repo: Repo, *args: str) -> str:
    where = repo.location.workdir or repo.location.git_dir
    try:
        done = subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, check=False
        )
    except OSError as error:
        problem = f"cannot run git: {error.strerror or error}"
        raise HookError("git", problem, "install git") from None
    if done.returncode != 0:
        raise HookError(
            "git",
            f"`git {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}",
            "push again with `git push --no-verify` if the repository is sound",
        )
    return done.stdout


# -- update (server side) ----------------------------------------------------------------------


def check_update(path: Path | str, ref: str, old: str, new: str) -> Report:
    """Judge one ref update a server is about to accept (git's ``update`` hook arguments).

    Only ``refs/tasks/*`` is checked: no deletion, a fast-forward, a sound tree. git runs the
    hook after moving the pushed objects into the repository, so they are read from there.
    """
    if not ref.startswith(NAMESPACE):
        return Report()
    if is_null(new):
        return Report((f"{ref}: deleting the tasks ref is refused on this server",))
    repo = Repo.discover(path)
    if not is_null(old) and not repo.is_ancestor(old, new):
        return Report(
            (
                f"{ref}: not a fast-forward of {old[:12]}: it would drop tasks other clones "
                "pushed; run `git tasks sync` to fetch and merge them, then push again",
            )
        )
    since = None if is_null(old) else old
    return Report(
        tuple(
            f"{ref}: {problem}; fix it, then push with `git tasks sync`"
            for problem in check_store_commit(repo, new, since=since)
        )
    )


# -- scripts and installation -----------------------------------------------------------------

PRE_PUSH_SCRIPT = f"""#!/bin/sh
{MARKER} pre-push
# Installed by `git tasks hooks install`; `git tasks hooks uninstall` removes it.
# Checks pushes of the tasks ref and of branches; `git push --no-verify` skips it.
input=$(cat)
lines() {{
    if [ -n "$input" ]; then printf '%s\\n' "$input"; fi
}}
chained="$(dirname "$0")/pre-push{CHAINED}"
if [ -x "$chained" ]; then
    lines | "$chained" "$@" || exit $?
fi
lines | git tasks hooks pre-push "$@"
"""

UPDATE_SCRIPT = f"""#!/bin/sh
{MARKER} update
# Installed by `git tasks hooks server --install`; `git tasks hooks uninstall --server`
# removes it. Refuses deletions, non-fast-forward updates and unsound trees of refs/tasks/*.
chained="$(dirname "$0")/update{CHAINED}"
if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
case "$1" in
refs/tasks/*) exec git tasks hooks update "$@" ;;
esac
exit 0
"""

SCRIPTS = {"pre-push": PRE_PUSH_SCRIPT, "update": UPDATE_SCRIPT}


def hooks_dir(repo: Repo) -> Path:
    """Where git looks for this repository's hooks: ``core.hooksPath`` (relative to the top of
    the worktree, or to the git dir of a bare repository), else ``hooks/`` in the common git
    dir, which linked worktrees share."""
    configured = repo.config("core.hooksPath")
    if configured:
        where = Path(configured).expanduser()
        if not where.is_absolute():
            where = (repo.location.workdir or repo.location.git_dir) / where
        return where
    return repo.location.common_dir / "hooks"


def is_ours(hook: Path, name: str) -> bool:
    """Whether ``hook`` is a script tasksync wrote for the hook ``name``."""
    try:
        text = hook.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return f"{MARKER} {name}" in (line.strip() for line in text.splitlines())


def install(path: Path | str = ".", name: str = "pre-push") -> Installed:
    """Write tasksync's ``name`` hook (pre-push or update) where git runs hooks for ``path``.

    A hook tasksync wrote is rewritten only when it differs. Another hook already there is
    moved aside to ``<name>.tasksync-chained`` and called first, with the same arguments and
    input; its refusal still stops the push.
    """
    script = SCRIPTS[name]
    directory = hooks_dir(Repo.discover(path))
    hook = directory / name
    chained = directory / f"{name}{CHAINED}"
    kept = chained if chained.exists() or chained.is_symlink() else None
    if is_ours(hook, name):
        try:
            same = hook.read_text(encoding="utf-8") == script and os.access(hook, os.X_OK)
        except (OSError, UnicodeDecodeError):
            same = False
        if same:
            return Installed(hook, "unchanged", kept)
        _write_script(hook, script)
        return Installed(hook, "updated", kept)
    if hook.exists() or hook.is_symlink():
        if kept is not None:
            raise HookError(
                str(hook),
                f"another {name} hook is there and {chained.name} is taken already",
                f"merge the two by hand, or remove {chained}, then install again",
            )
        _move(hook, chained)
        kept = chained
    _write_script(hook, script)
    return Installed(hook, "installed", kept)


def uninstall(path: Path | str = ".", name: str = "pre-push") -> Installed:
    """Remove tasksync's ``name`` hook and put back the hook it chained, if any.

    A hook that is not tasksync's is left alone (``foreign``); no hook at all is ``absent``.
    """
    directory = hooks_dir(Repo.discover(path))
    hook = directory / name
    chained = directory / f"{name}{CHAINED}"
    if (hook.exists() or hook.is_symlink()) and not is_ours(hook, name):
        return Installed(hook, "foreign")
    present = hook.exists()
    if present:
        try:
            hook.unlink()
        except OSError as error:
            raise HookError(
                str(hook), f"cannot remove it: {error.strerror or error}", "remove it by hand"
            ) from None
    restored = None
    if chained.exists() or chained.is_symlink():
        _move(chained, hook)
        restored = hook
    return Installed(hook, "removed" if present else "absent", restored)


def _move(source: Path, target: Path) -> None:
    try:
        source.rename(target)
    except OSError as error:
        raise HookError(
            str(source),
            f"cannot move it to {target}: {error.strerror or error}",
            "move it by hand, then try again",
        ) from None


def _write_script(hook: Path, script: str) -> None:
    """Write an executable script atomically: readers see the old one or the new one."""
    try:
        hook.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=hook.parent, prefix=f".{hook.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(script)
            Path(temp).chmod(
                stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
            )
            Path(temp).replace(hook)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise HookError(
            str(hook),
            f"cannot write it: {error.strerror or error}",
            "check the hooks directory is writable",
        ) from None
