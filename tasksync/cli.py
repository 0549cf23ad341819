"""``git tasks``: parses arguments, calls the library, formats output.

Exit codes are decided in :func:`main` only: 0 success, 1 a tasksync error (one line on
stderr), 2 a usage error, 130 interrupted, 3 an unexpected error (with versions to report).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .errors import WARNING_SINKS
from .model import Status

if TYPE_CHECKING:
    from .api import TaskStore
    from .history import HistoryEntry
    from .model import Task

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
STATUS_NAMES = ", ".join(status.value for status in Status)


def _store(ctx: click.Context) -> TaskStore:
    from .api import TaskStore

    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "store" not in obj:
        opened = obj["store"] = TaskStore.open(obj.get("path") or ".")
        if opened.hub is not None and opened.hub.repo is None:
            click.echo(
                f"warning: the hub {opened.hub.path} (from {opened.hub.source}) is missing; "
                "working on this clone's own tasks ref (`git tasks sync` merges it later)",
                err=True,
            )
        elif opened.hub is not None and opened.unsynced():
            click.echo(
                "warning: this clone's own tasks ref has work its hub lacks; run `git tasks sync`",
                err=True,
            )
    store: TaskStore = obj["store"]
    return store


def _json(value: object) -> None:
    import json

    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _task_line(task: Task, width: int) -> str:
    status = f"[{task.status.checkbox}] {task.status.value:<11}"
    return f"{str(task.id).ljust(width)}  {status}  {_shown(task.title)}"


def _shown(text: str, keep: str = "") -> str:
    """Text from the ref as a terminal shows it: control characters (escape sequences a
    hand-edited or hostile ref could carry) become ``?``; those in ``keep`` stay."""
    if text.isprintable():  # nearly always: one pass in C
        return text
    return "".join(c if c.isprintable() or c in keep else "?" for c in text)


#: Commands defined in other modules, by name: a module is imported when one of its commands
#: runs or is listed, so `git tasks status set` starts without the rest.
LAZY_COMMANDS = {
    "apply": "cli_export",
    "conflicts": "cli_merge",
    "doctor": "cli_doctor",
    "export": "cli_export",
    "hooks": "cli_hooks",
    "hub": "cli_sync",
    "merge": "cli_merge",
    "merge-driver": "cli_merge",
    "migrate": "cli_migrate",
    "remote": "cli_sync",
    "resolve": "cli_merge",
    "sync": "cli_sync",
    "undo": "cli_history",
    "watch": "cli_watch",
}


class _Commands(click.Group):
    """The command group, loading the modules of :data:`LAZY_COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = LAZY_COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            from importlib import import_module

            import_module(f".{module}", __package__)  # its decorators register the command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings=CONTEXT)
@click.option(
    "-C",
    "path",
    metavar="PATH",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in PATH.",
)
@click.version_option(version=__version__, message="git tasks (tasksync) %(version)s")
@click.pass_context
def cli(ctx: click.Context, path: Path | None) -> None:
    """Tasks in process/tasks.md, stored on the ref refs/tasks/main.

    Every worktree of a repository reads and writes the same ref directly: a change made in
    one is visible in every other on the next command, with no fetch, commit or checkout.
    """
    ctx.ensure_object(dict)["path"] = path
    _show_warnings()


def _show_warnings() -> None:
    """Show the library's warnings (a stale lock file it removed) as one ``warning:`` line
    each on stderr."""
    if _warn not in WARNING_SINKS:
        WARNING_SINKS.append(_warn)


def _warn(text: str) -> None:
    click.echo(f"warning: {_shown(text)}", err=True)


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the task store (the ref refs/tasks/main, or tasks.ref) in this repository."""
    store = _store(ctx)
    if store.init():
        click.echo(f"Initialized the task store on {store.ref}")
    else:
        click.echo(f"The task store on {store.ref} already exists")


@cli.command("list")
@click.option(
    "--status", "status", metavar="STATUS", help=f"Only tasks with STATUS ({STATUS_NAMES})."
)
@click.option("--all", "include_done", is_flag=True, help="Include DONE and CLOSED tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of task objects.")
@click.option(
    "--at",
    metavar="REV",
    help="As at REV: a commit of the tasks ref's history (see log) or a reflog entry such as @{1}.",
)
@click.pass_context
def list_(
    ctx: click.Context, status: str | None, include_done: bool, as_json: bool, at: str | None
) -> None:
    """List tasks (DONE and CLOSED are hidden unless --all or --status asks for them)."""
    tasks = _store(ctx).list(status=status, include_done=include_done, at=at, descriptions=as_json)
    if as_json:
        _json([t.to_json() for t in tasks])
        return
    width = max((len(str(t.id)) for t in tasks), default=4)
    if tasks:  # one write: 10,000 lines one by one cost more than reading them
        click.echo("\n".join(_task_line(task, width) for task in tasks))


@cli.command()
@click.argument("task_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the task as a JSON object.")
@click.option(
    "--at",
    metavar="REV",
    help="As at REV: a commit of the tasks ref's history (see log) or a reflog entry such as @{1}.",
)
@click.pass_context
def get(ctx: click.Context, task_id: str, as_json: bool, at: str | None) -> None:
    """Show one task: title, status, spec path, description and any merge conflicts."""
    task = _store(ctx).get(task_id, at=at)
    if as_json:
        _json(task.to_json())
        return
    click.echo(f"{task.id}  {_shown(task.title)}")
    click.echo(f"status: {task.status.value}")
    click.echo(f"spec:   {_shown(task.spec_path or '-')}")
    if task.description:
        click.echo("")
        click.echo(_shown(task.description, keep="\n\t"))
    if at is not None:  # conflict and renumbering notes describe the present
        return
    from .cli_merge import conflict_line

    store = _store(ctx)
    conflicts = store.conflicts(task.id)
    if conflicts:
        click.echo("")
        for conflict in conflicts:
            click.echo(f"conflict: {conflict_line(conflict)}")
        click.echo(f"(settle with `git tasks resolve {task.id}`)")
    for moved in store.renumbered(task.id):
        click.echo("")
        if moved.new.number == task.id.number:
            click.echo(
                f"note: created as {moved.old}, renumbered to {moved.new} by a merge "
                "(another task had that id)"
            )
        else:
            click.echo(
                f"note: another task created as {moved.old} ({moved.title!r}) "
                f"was renumbered to {moved.new} by a merge"
            )


@cli.group(context_settings=CONTEXT)
def status() -> None:
    """Read or set a task's status."""


@status.command("get")
@click.argument("task_id", metavar="ID")
@click.pass_context
def status_get(ctx: click.Context, task_id: str) -> None:
    """Print a task's status."""
    click.echo(_store(ctx).get(task_id).status.value)


@status.command("set", help=f"Set a task's status to STATUS ({STATUS_NAMES}).")
@click.argument("task_id", metavar="ID")
@click.argument("new_status", metavar="STATUS")
@click.option("--expect", metavar="OLD", help="Only if the status is still OLD (else exit 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as a JSON object.")
@click.pass_context
def status_set(
    ctx: click.Context, task_id: str, new_status: str, expect: str | None, as_json: bool
) -> None:
    task = _store(ctx).set_status(task_id, new_status, expect=expect)
    if as_json:
        _json(task.to_json())
        return
    click.echo(f"{task.id} {task.status.value}")


def _read_file(path: Path | None) -> str | None:
    if path is None:
        return None
    from .errors import TaskSyncError

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TaskSyncError(f"cannot read {path}: {error}; pass a readable UTF-8 file") from None


@cli.command()
@click.argument("title", required=False)
@click.option(
    "--description", "-d", default="", help="The task's description (its spec's Context)."
)
@click.option(
    "--spec-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this file as the task's spec (its heading gives the title when TITLE is omitted).",
)
@click.option(
    "--status",
    "status_name",
    default="TODO",
    metavar="STATUS",
    help=f"Initial status ({STATUS_NAMES}); default TODO.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new task as a JSON object.")
@click.pass_context
def create(
    ctx: click.Context,
    title: str | None,
    description: str,
    spec_file: Path | None,
    status_name: str,
    as_json: bool,
) -> None:
    """Create a task with the next free id and print the id."""
    spec = _read_file(spec_file)
    if title is None:
        from .spec import spec_title

        title = spec_title(spec) if spec is not None else None
        if not title:
            raise click.UsageError("give a TITLE, or a --spec-file whose first heading names one")
    task = _store(ctx).create(title, description=description, spec=spec, status=status_name)
    if as_json:
        _json(task.to_json())
    else:
        click.echo(str(task.id))


@cli.command()
@click.argument("task_id", metavar="ID", required=False)
@click.option("--title", help="New title.")
@click.option("--description", "-d", help="New description (the spec's Context section).")
@click.option(
    "--spec-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Replace the task's spec with this file.",
)
@click.option("--raw", is_flag=True, help="Edit the whole tasks.md in your editor (no ID).")
@click.option("--spec", "edit_spec", is_flag=True, help="Edit the task's spec in your editor.")
@click.pass_context
def edit(
    ctx: click.Context,
    task_id: str | None,
    title: str | None,
    description: str | None,
    spec_file: Path | None,
    raw: bool,
    edit_spec: bool,
) -> None:
    """Change a task's title, description or spec; or edit tasks.md or a spec in your editor.

    \b
    git tasks edit ID --title T | --description D | --spec-file F
    git tasks edit --raw          open tasks.md in $EDITOR
    git tasks edit ID --spec      open the task's spec in $EDITOR

    What you save is merged three-way onto the ref as it is by then, so changes other
    workspaces made while the editor was open are kept.
    """
    fields = title is not None or description is not None or spec_file is not None
    if raw and (task_id is not None or fields or edit_spec):
        raise click.UsageError("--raw edits the whole tasks.md: give no ID and no other option")
    if edit_spec and (task_id is None or fields):
        raise click.UsageError("--spec needs an ID and no other option")
    if not raw and task_id is None:
        raise click.UsageError("give an ID (or --raw to edit the whole tasks.md)")
    store = _store(ctx)
    if raw:
        from .cli_merge import edit_raw

        edit_raw(store)
        return
    assert task_id is not None  # noqa: S101 - checked above
    if edit_spec:
        from .cli_merge import edit_spec_text

        edit_spec_text(store, task_id)
        return
    if not fields:
        raise click.UsageError(
            "nothing to change: give --title, --description, --spec-file or --spec"
        )
    task = store.update(task_id, title=title, description=description, spec=_read_file(spec_file))
    click.echo(f"{task.id} {_shown(task.title)}" if store.last_commit else f"{task.id} unchanged")


@cli.command()
@click.argument("task_id", metavar="ID")
@click.option("--force", "-f", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the deleted task as a JSON object.")
@click.pass_context
def delete(ctx: click.Context, task_id: str, force: bool, as_json: bool) -> None:
    """Delete a task: its line, its description and its spec file."""
    store = _store(ctx)
    if not force:
        task = store.get(task_id)
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"refusing to delete {task.id} without --force (no terminal to ask)"
            )
        if not click.confirm(f"Delete {task.id} {task.title!r}?"):
            click.echo(f"Kept {task.id}.")
            ctx.exit(1)
    task = store.delete(task_id)
    if as_json:
        _json(task.to_json())
        return
    click.echo(f"Deleted {task.id} {_shown(task.title)}")


@cli.command()
@click.argument("task_id", metavar="ID")
@click.option(
    "--at",
    metavar="REV",
    help="As at REV: a commit of the tasks ref's history (see log) or a reflog entry such as @{1}.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print an object with content, spec_path and task."
)
@click.pass_context
def spec(ctx: click.Context, task_id: str, at: str | None, as_json: bool) -> None:
    """Print a task's spec file."""
    store = _store(ctx)
    if as_json:
        state = store.state(at) if at is not None else store.head()  # one state for both
        task = store.get(task_id, at=state)
        text = store.spec(task.id, at=state)
        _json({"content": text, "spec_path": task.spec_path, "task": task.to_json()})
        return
    click.echo(store.spec(task_id, at=at), nl=False)


def _log_line(entry: HistoryEntry) -> str:
    import time as _time

    when = _time.strftime("%Y-%m-%d %H:%M", _time.gmtime(entry.time + entry.offset_minutes * 60))
    where = f" [{entry.workspace}]" if entry.workspace else ""
    name = entry.author.rsplit(" <", 1)[0]
    return _shown(f"{entry.commit[:10]} {when} {name}{where}  {entry.summary}")


@cli.command()
@click.argument("task_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of operations.")
@click.option(
    "-n", "--max-count", type=click.IntRange(min=1), metavar="N", help="Show at most N operations."
)
@click.pass_context
def log(ctx: click.Context, task_id: str | None, as_json: bool, max_count: int | None) -> None:
    """Show the operations on the tasks ref, newest first (only those of ID when given).

    Each line: commit, time, author, [workspace] and what changed. Operations that merges
    brought in (from remotes, a migrated history, an applied export) are listed too.
    """
    entries = _store(ctx).history(task_id, limit=max_count)
    if as_json:
        _json([e.to_json() for e in entries])
        return
    for entry in entries:
        click.echo(_log_line(entry))


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the throwaway repository instead of deleting it.")
def demo(keep: bool) -> None:
    """Show tasks shared between two worktrees of a throwaway repository."""
    from .demo import run_demo

    for step in run_demo(keep=keep):
        click.echo(step)


def _versions() -> str:
    import platform

    parts = [f"python {platform.python_version()}"]
    try:
        from importlib.metadata import version

        parts.insert(0, f"tasksync {version('tasksync')}")
    except Exception:
        parts.insert(0, "tasksync (unknown version)")
    try:
        import pygit2

        parts.append(f"pygit2 {pygit2.__version__} (libgit2 {pygit2.LIBGIT2_VERSION})")  # type: ignore[attr-defined]
    except Exception:
        parts.append("pygit2 not importable")
    return ", ".join(parts)


def _fail(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def run() -> NoReturn:
    """The process entry point of ``git-tasks`` and ``python -m tasksync``: :func:`main`, then
    the end of the process as Python ends it (other threads joined, exit handlers run, output
    flushed) without finalizing every imported module one by one. That finalization takes
    13-16 ms after pygit2 and click are imported, more than a status change takes, and a
    command that has returned has nothing left in them to save: its writes are on disk.
    """
    code: object = 0
    try:
        main()
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        click.echo(code, err=True)
        code = 1
    import atexit
    import threading

    # What the interpreter does first at exit: its thread-exit hooks (which tell idle
    # concurrent.futures workers to stop), then a join of every non-daemon thread.
    shutdown = getattr(threading, "_shutdown", None)
    if callable(shutdown):
        shutdown()
    else:  # pragma: no cover - every CPython has it; joined by hand elsewhere
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):  # click flushes every line it writes already
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: Iterable[str] | None = None) -> NoReturn:
    """Run ``git tasks`` with ``argv`` (default: the command line), then exit through
    SystemExit with the command's exit code."""
    from .errors import TaskSyncError

    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        try:
            code = cli.main(args=args, prog_name="git tasks", standalone_mode=False)
        finally:  # a program that runs commands in process prints no warnings of later calls
            if _warn in WARNING_SINKS:
                WARNING_SINKS.remove(_warn)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _fail(130, "interrupted")
    except click.UsageError as error:
        error.show()
        sys.exit(2)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except TaskSyncError as error:
        _fail(1, f"error: {_shown(str(error))}")
    except BrokenPipeError:
        # The reader went away (git tasks list | head): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:  # the one place unexpected errors are reported
        import traceback

        traceback.print_exc()
        _fail(
            3,
            f"unexpected error: {type(error).__name__}: {error}\n"
            f"please report it with this output; versions: {_versions()}",
        )
    sys.exit(code if isinstance(code, int) else 0)
