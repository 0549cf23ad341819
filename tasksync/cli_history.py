"""``git tasks undo``: take back one operation with a new commit.

Importing this module registers the command on :data:`tasksync.cli.cli`.
"""

from __future__ import annotations

import click

from .cli import _json, _shown, _store, cli


@cli.command()
@click.argument("commit", metavar="COMMIT")
@click.option("--json", "as_json", is_flag=True, help="Print the new commit as a JSON object.")
@click.pass_context
def undo(ctx: click.Context, commit: str, as_json: bool) -> None:
    """Take back what COMMIT did (an id from `git tasks log`, or @{1}) with a new commit.

    History is never rewritten. The undo is refused, naming them, when later operations
    changed the same task fields (status, title, description, spec; any change of a task
    whose create or delete is undone): undo those first, newest first.
    """
    entry = _store(ctx).undo(commit)
    if as_json:
        undone = entry.trailer("Tasksync-Undone")
        _json({"commit": entry.commit, "undone": undone, "summary": entry.summary})
        return
    click.echo(f"{entry.commit[:10]} {_shown(entry.summary)}")
