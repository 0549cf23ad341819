"""The merge commands of ``git tasks``: merge, conflicts, resolve, merge-driver, and the
hand edits of ``edit --raw`` and ``edit ID --spec``. Importing this module registers them on
:data:`tasksync.cli.cli`; like the rest of the CLI it only parses arguments and formats output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli import _json, _shown, _store, _task_line, cli

if TYPE_CHECKING:
    from .api import TaskStore
    from .records import Conflict, Renumbering


@contextmanager
def _keeping(path: Path) -> Iterator[None]:
    """Say where the edited text is when landing it fails: it must not be lost."""
    from .errors import EditorFailed, TaskSyncError

    try:
        yield
    except TaskSyncError as error:
        raise EditorFailed(path, str(error)) from error


def edit_raw(store: TaskStore) -> None:
    """`git tasks edit --raw`: tasks.md in the editor, merged onto the tip when saved."""
    from .editor import edit_file, scratch_file

    base = store.index_text()
    path = scratch_file(store.common_dir, "tasks.md", base)
    edited = edit_file(path, store.workdir)
    with _keeping(path):
        merged = store.edit_index(base, edited)
    path.unlink(missing_ok=True)
    if store.last_commit is None:
        click.echo("tasks.md unchanged")
        return
    click.echo(f"tasks.md saved ({store.last_commit[:12]})")
    if merged is not None:
        for moved in merged.renumbered:
            click.echo(f"{moved.old} was taken meanwhile: your task is {moved.new}")
        for conflict in merged.conflicts:
            click.echo(f"conflict: {conflict_line(conflict)}")


def edit_spec_text(store: TaskStore, task_id: str) -> None:
    """`git tasks edit ID --spec`: a spec in the editor, merged onto the tip when saved."""
    from .editor import edit_file, scratch_file
    from .errors import SpecNotFound

    task = store.get(task_id)
    if task.spec_path is None:
        raise SpecNotFound(str(task.id), None)
    try:
        base: str | None = store.spec(task_id)
    except SpecNotFound:
        base = None
    opened = base if base is not None else f"# Task {task.id}: {task.title}\n"
    path = scratch_file(store.common_dir, f"{task.id.digits}.md", opened)
    edited = edit_file(path, store.workdir)
    with _keeping(path):
        changed = store.edit_spec(task_id, base, edited) if edited != opened else False
    path.unlink(missing_ok=True)
    click.echo(f"{task.id} spec saved" if changed else f"{task.id} spec unchanged")
    for conflict in store.conflicts(task_id):
        if conflict.field == "spec":
            click.echo(f"conflict: {conflict_line(conflict)}")


def conflict_line(conflict: Conflict) -> str:
    """One line saying what a merge kept and what it set aside (values from the ref as a
    terminal shows them harmlessly)."""
    from .events import conflict_text

    if conflict.field == "spec":
        return conflict_text(conflict) + " (both versions: `git tasks conflicts --json`)"
    return _shown(conflict_text(conflict))


@cli.command()
@click.argument("task_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of conflict records.")
@click.pass_context
def conflicts(ctx: click.Context, task_id: str | None, as_json: bool) -> None:
    """List what merges settled by rule and kept for you to review (of one task, or all)."""
    found = _store(ctx).conflicts(task_id)
    if as_json:
        _json([conflict.to_json() for conflict in found])
        return
    if not found:
        click.echo("no conflicts")
    for conflict in found:
        click.echo(conflict_line(conflict))


@cli.command()
@click.argument("task_id", metavar="ID")
@click.option("--field", help="The field to settle when a task has several conflicts.")
@click.option(
    "--take",
    metavar="ours|theirs|VALUE",
    help="Write this value first (else the kept value stays).",
)
@click.pass_context
def resolve(ctx: click.Context, task_id: str, field: str | None, take: str | None) -> None:
    """Clear a task's conflict records; ID `tasks.md` means lines outside any task."""
    store = _store(ctx)
    cleared = store.resolve(None if task_id == "tasks.md" else task_id, field, take)
    fields = ", ".join(sorted({conflict.field for conflict in cleared}))
    how = "" if take is None else f" (took {take if take in ('ours', 'theirs') else 'your value'})"
    name = str(cleared[0].task) if cleared and cleared[0].task is not None else task_id
    click.echo(f"resolved {name} {fields}{how}")
    if take is not None and task_id != "tasks.md" and store.last_commit is not None:
        from .errors import TaskNotFound

        try:
            task = store.get(task_id)
        except TaskNotFound:
            click.echo(f"{name} deleted")
        else:
            click.echo(_task_line(task, len(str(task.id))))


@cli.command()
@click.argument("revision", metavar="REVISION")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as a JSON object.")
@click.pass_context
def merge(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Merge another history of the tasks ref (e.g. one fetched from a remote) into this one."""
    done = _store(ctx).merge(revision)
    if as_json:
        _json(
            {
                "outcome": done.outcome,
                "commit": done.commit,
                "conflicts": [c.to_json() for c in done.conflicts],
                "renumbered": [r.to_json() for r in done.renumbered],
            }
        )
        return
    click.echo(done.outcome if done.commit is None else f"{done.outcome} ({done.commit[:12]})")
    for moved in done.renumbered:
        copy = "the local copy" if moved.side == "ours" else "the merged-in copy"
        click.echo(f"renumbered {moved.old} \u2192 {moved.new} ({moved.title!r}, {copy})")
    for conflict in done.conflicts:
        click.echo(f"conflict: {conflict_line(conflict)}")


@cli.command("merge-driver")
@click.argument("files", metavar="install | BASE OURS THEIRS [PATH]", nargs=-1)
@click.option(
    "--global",
    "global_config",
    is_flag=True,
    help="With install: write the config to your global git config, not the repository's.",
)
@click.pass_context
def merge_driver(ctx: click.Context, files: tuple[str, ...], global_config: bool) -> None:
    """Merge process/tasks.md for git, or install that merge driver.

    \b
    git tasks merge-driver install [--global]
    git tasks merge-driver BASE OURS THEIRS [PATH]

    install sets merge.tasks.name and merge.tasks.driver in the repository's git config and
    adds `process/tasks.md merge=tasks` to the working tree's .gitattributes. Git then runs
    the second form during merges and rebases: it merges the three versions task by task,
    writes the result into OURS, reports each conflict it settled on stderr, and exits 0.
    """
    from . import driver

    where = Path(ctx.ensure_object(dict).get("path") or ".")
    if files == ("install",):
        done = driver.install(where, global_config=global_config)
        for setting in done.settings:
            state = "Set" if setting.changed else "Already set:"
            click.echo(f"{state} {setting.key} = {setting.value} ({done.scope} config)")
        if done.attributes_changed:
            click.echo(f"Added `{driver.ATTRIBUTES_LINE}` to {done.attributes}")
        else:
            click.echo(f"{done.attributes} already has `{driver.ATTRIBUTES_LINE}`")
        return
    if global_config:
        raise click.UsageError("--global only goes with `merge-driver install`")
    if not 3 <= len(files) <= 4:
        raise click.UsageError(
            "give `install`, or the files BASE OURS THEIRS and optionally the PATH they merge"
        )
    base, ours, theirs = (where / name for name in files[:3])
    name = files[3] if len(files) == 4 else str(ours)
    merged = driver.merge_files(base, ours, theirs, name)
    for conflict in merged.conflicts:
        click.echo(f"{name}: {conflict_line(conflict)}", err=True)
    for moved in merged.renumbered:
        click.echo(f"{name}: {_renumbered_text(moved)}", err=True)


def _renumbered_text(moved: Renumbering) -> str:
    text = f"{moved.old} created on both sides: {moved.title!r} renumbered to {moved.new}"
    if moved.old_path and moved.new_path and moved.old_path != moved.new_path:
        text += f"; move its spec {moved.old_path} to {moved.new_path}"
    return text
