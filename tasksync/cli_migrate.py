"""``git tasks migrate``: import the in-tree task files into the tasks ref.

Importing this module registers the command on :data:`tasksync.cli.cli`; like the rest of the
CLI it only parses arguments and formats output (the import lives in :mod:`tasksync.migrate`).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from .cli import _json, _store, cli
from .errors import quoted

if TYPE_CHECKING:
    from .migrate import ImportStep, Migration

#: A progress bar is shown when an import reads at least this many commits (on a terminal only).
PROGRESS_FROM = 50


class _Bar:
    """A progress bar on stderr, started on the first report of a long enough import."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if total < PROGRESS_FROM or not sys.stderr.isatty():
                return
            self._bar = click.progressbar(
                length=total, label="Importing", file=sys.stderr, show_pos=True
            )
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@cli.command()
@click.option(
    "--history",
    is_flag=True,
    help="Replay the files' git history: one commit per change, authors, committers and "
    "dates kept.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be imported; write nothing.")
@click.option(
    "--skip-non-utf8",
    is_flag=True,
    help="Leave out past states with a file that is not UTF-8 (with a warning) instead of "
    "stopping.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as a JSON object.")
@click.pass_context
def migrate(
    ctx: click.Context, history: bool, dry_run: bool, skip_non_utf8: bool, as_json: bool
) -> None:
    """Import the in-tree process/tasks.md and its specs into the tasks ref.

    Never removes the in-tree files: it prints the commands that do, and those that turn on
    the pre-push guard against in-tree edits and share the ref. Running it again imports
    only what changed in the tree since, and nothing when nothing did.
    """
    store = _store(ctx)
    bar = _Bar()
    try:
        done = store.migrate(
            history=history, dry_run=dry_run, skip_non_utf8=skip_non_utf8, progress=bar
        )
    finally:
        bar.close()
    if as_json:
        _json(done.to_json())
        return
    _report(done, str(store.workdir))


def _report(done: Migration, workdir: str) -> None:
    for skipped in done.skipped:
        click.echo(
            f"warning: left out {_source(skipped.source)}: {quoted(skipped.path)} is not valid "
            f"UTF-8 ({skipped.problem})",
            err=True,
        )
    steps = done.steps
    if steps:
        verb = "Would import" if done.dry_run else "Imported"
        count = f"{len(steps)} state{'s' if len(steps) > 1 else ''}"
        click.echo(f"{verb} {count} of process/tasks.md and its specs: {_span(steps)}")
    click.echo(f"{done.ref}: {_outcome(done)}; {done.tasks} tasks in the in-tree file")
    for moved in done.renumbered:
        click.echo(f"renumbered {moved.old} \u2192 {moved.new} ({moved.title!r}, from the ref)")
    from .cli_merge import conflict_line

    for conflict in done.conflicts:
        click.echo(f"conflict: {conflict_line(conflict)}")
    if done.left_out:
        names = [quoted(path) for path in done.left_out[:5]]
        shown = ", ".join(names) + (", \u2026" if len(done.left_out) > 5 else "")
        click.echo(f"not imported (not spec files): {shown}")
    for problem in done.problems:
        click.echo(
            f"warning: {problem} (`git tasks sync` refuses to push this until it is fixed, "
            "e.g. with `git tasks edit --raw`)",
            err=True,
        )
    if done.dry_run:
        click.echo("Dry run: nothing was written.")
        return
    click.echo("")
    click.echo(f"The in-tree files are still there. To finish, in {workdir}:")
    notes = {
        "git tasks hooks install": "refuse branch pushes that edit process/tasks.md again",
        "git tasks sync": "share the tasks ref with origin (or name a remote)",
    }
    width = max((len(command) for command in done.commands if command in notes), default=0)
    for command in done.commands:
        note = notes.get(command)
        click.echo(f"  {command.ljust(width)}  # {note}" if note else f"  {command}")


def _outcome(done: Migration) -> str:
    tip = "" if done.commit is None else f" ({done.commit[:12]})"
    if done.outcome == "up-to-date":
        return "up to date with the in-tree files, nothing to import"
    if done.dry_run:
        return {
            "created": "would be created with the imported history",
            "fast-forward": "would fast-forward to the imported states",
            "merged": "would merge the imported states",
        }.get(done.outcome, done.outcome)
    return {
        "created": f"created with the imported history{tip}",
        "fast-forward": f"fast-forwarded to the imported states{tip}",
        "merged": f"merged the imported states{tip}",
    }.get(done.outcome, done.outcome)


def _span(steps: tuple[ImportStep, ...]) -> str:
    first, last = steps[0], steps[-1]
    if len(steps) == 1:
        return _source(first.source, first.time)
    return f"{_source(first.source, first.time)} \u2026 {_source(last.source, last.time)}"


def _source(source: str, when: int | None = None) -> str:
    if source == "worktree":
        return "the working tree"
    date = "" if when is None else " " + time.strftime("%Y-%m-%d", time.gmtime(when))
    return f"{source[:12]}{date}"
