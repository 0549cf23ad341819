"""``git tasks watch``: one line (or JSON object) per event as commits land on the tasks ref,
and optionally a command run per event. Importing this module registers it on
:data:`tasksync.cli.cli`; like the rest of the CLI it only parses arguments and formats output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli import _store, cli

if TYPE_CHECKING:
    from .events import Event


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per event and line.")
@click.option(
    "--since",
    metavar="REV",
    help="Start after commit REV of the tasks ref, replaying what came later (default: the tip).",
)
@click.option(
    "--exec",
    "command",
    metavar="CMD",
    help="Run CMD (no shell) for each event, with the event as JSON on its stdin.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    metavar="N",
    help="Exit after N events, at the end of the commit holding the Nth.",
)
@click.option("--poll", is_flag=True, help="Only poll the ref; do not use inotify.")
@click.pass_context
def watch(
    ctx: click.Context,
    *,
    as_json: bool,
    since: str | None,
    command: str | None,
    count: int | None,
    poll: bool,
) -> None:
    """Print the changes to tasks as they land, from any worktree or clone, until interrupted."""
    import json  # here, not at the top: every other command starts faster without them

    argv = _command(command) if command is not None else None
    store = _store(ctx)
    events = store.watch(since, poll=poll)
    if events.last is None:
        click.echo(f"no task store yet: waiting for `git tasks init` ({store.ref})", err=True)
    for seen, event in enumerate(events, start=1):
        line = json.dumps(event.to_json(), ensure_ascii=False)
        click.echo(line if as_json else event_line(event))
        if argv is not None:
            _run(argv, command or "", line, event)
        # Never in the middle of a commit: `--since` the last commit shown resumes exactly.
        if count is not None and seen >= count and events.last == event.commit:
            return


def _command(text: str) -> list[str]:
    """The user's own command line, split once as a shell would, never run through one."""
    import shlex
    import shutil

    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise click.UsageError(f"--exec {text!r} cannot be split into words: {error}") from None
    if not argv:
        raise click.UsageError("--exec needs a command")
    if shutil.which(argv[0]) is None:
        raise click.UsageError(f"--exec: command not found: {argv[0]}")
    return argv


def _run(argv: list[str], command: str, line: str, event: Event) -> None:
    """Run the command with the event on stdin; a failure is reported and watching goes on."""
    import subprocess

    what = f"the {event.kind} event of {event.commit[:10]}"
    try:
        done = subprocess.run(argv, input=(line + "\n").encode("utf-8"), check=False)
    except OSError as error:
        click.echo(f"warning: `{command}` could not run for {what}: {error}", err=True)
        return
    if done.returncode != 0:
        click.echo(
            f"warning: `{command}` exited with status {done.returncode} for {what}", err=True
        )


def event_line(event: Event) -> str:
    """One line for a person: commit, workspace, task and what changed."""
    where = f" [{_printable(event.workspace)}]" if event.workspace else ""
    return f"{event.commit[:10]}{where} {_printable(_change(event))}"


def _change(event: Event) -> str:
    task = str(event.task) if event.task is not None else ""
    before, after = event.before, event.after
    if event.kind == "spec" and (before is None or after is None):
        return f"{task} spec {'added' if before is None else 'removed'}"
    said = {
        "created": f"{task} created {_quote(after)} ({event.status})",
        "status": f"{task} status {before} \u2192 {after}",
        "title": f"{task} title {_quote(before)} \u2192 {_quote(after)}",
        "deleted": f"{task} deleted {_quote(before)}",
        "conflict": f"conflict: {after}",
    }
    return said.get(event.kind, f"{task} {event.kind} changed")


def _quote(text: str | None) -> str:
    return f"\u201c{text}\u201d"


def _printable(text: str) -> str:
    """Text without control characters: nothing from the ref may drive the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)
