"""``git tasks doctor``: finds what is wrong with the task store and says how to fix it.

Importing this module registers the command on :data:`tasksync.cli.cli`; like the rest of the
CLI it only parses arguments and formats output (the checks are :mod:`tasksync.doctor`).
"""

from __future__ import annotations

import click

from .cli import _json, _shown, _store, cli


@cli.command()
@click.option(
    "--repair", is_flag=True, help="Remove lock files proven stale; nothing else is changed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON array.")
@click.pass_context
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check the task store: stale locks, missing or damaged objects, unreadable files.

    Each finding is one line with the command that fixes it. Exits 1 while a problem
    remains; --repair only ever removes lock files no live process holds, and never rewrites
    the history of the ref.
    """
    store = _store(ctx)
    findings = store.doctor(repair=repair)
    if as_json:
        _json([finding.to_json() for finding in findings])
    else:
        for finding in findings:
            label = "repaired" if finding.repaired else finding.severity.value
            click.echo(f"{label}: {_shown(finding.message)}")
        if not any(finding.unresolved for finding in findings):
            click.echo(f"no problems in {store.ref}")
    if any(finding.unresolved for finding in findings):
        ctx.exit(1)
