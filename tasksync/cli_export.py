"""``git tasks export`` and ``git tasks apply``: a copy of the task files for tools that read
files, and its edits merged back.

Importing this module registers the commands on :data:`tasksync.cli.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli import _json, _store, cli

if TYPE_CHECKING:
    from .export import Exported


def _under_c(ctx: click.Context, path: Path | None) -> Path | None:
    """A relative DIR is taken from the -C directory, as git takes paths after `git -C`."""
    base = ctx.ensure_object(dict).get("path")
    if path is None or path.is_absolute() or base is None:
        return path
    return Path(base) / path


def _exported_json(done: Exported) -> dict[str, object]:
    return {
        "directory": str(done.directory),
        "commit": done.commit,
        "files": done.files,
        "written": list(done.written),
        "removed": list(done.removed),
        "ignored": done.ignored,
    }


@cli.command()
@click.option(
    "--to",
    "to",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the copy into DIR (default .tasks/ at the top of the worktree, git-ignored).",
)
@click.option("--force", is_flag=True, help="Overwrite edits not applied yet, or foreign files.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as a JSON object.")
@click.pass_context
def export(ctx: click.Context, to: Path | None, force: bool, as_json: bool) -> None:
    """Write process/tasks.md and the spec files into a directory, for tools that read files.

    The copy records the commit it came from; `git tasks apply` merges edits made to it back.
    Running export again brings the copy up to the tip, and refuses while it has edits not
    applied yet.
    """
    done = _store(ctx).export(_under_c(ctx, to), force=force)
    if as_json:
        _json(_exported_json(done))
        return
    changed = len(done.written) + len(done.removed)
    click.echo(
        f"Exported {done.files} files of {done.commit[:10]} to {done.directory} ({changed} changed)"
    )
    if done.ignored:
        click.echo(f"(git now ignores it: added to {_store(ctx).common_dir / 'info' / 'exclude'})")


@cli.command()
@click.option(
    "--from",
    "source",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The copy to apply (default .tasks/ at the top of the worktree).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as a JSON object.")
@click.pass_context
def apply(ctx: click.Context, source: Path | None, as_json: bool) -> None:
    """Merge the edits made to an exported copy into the tasks ref, then refresh the copy.

    The edits are merged three-way against the commit the copy was exported from, so changes
    other workspaces made meanwhile are kept; conflicts are settled and recorded as in
    `git tasks merge`.
    """
    from .cli_merge import conflict_line

    done = _store(ctx).apply(_under_c(ctx, source))
    merged = done.merged
    if as_json:
        _json(
            {
                "directory": str(done.directory),
                "edited": list(done.edited),
                "outcome": None if merged is None else merged.outcome,
                "commit": None if merged is None else merged.commit,
                "conflicts": [] if merged is None else [c.to_json() for c in merged.conflicts],
                "renumbered": [] if merged is None else [r.to_json() for r in merged.renumbered],
                "refreshed": None if done.refreshed is None else _exported_json(done.refreshed),
            }
        )
        return
    if merged is None:
        click.echo(f"Nothing to apply: {done.directory} has no edits")
        return
    how = "merged" if merged.outcome == "merged" else "applied"
    click.echo(f"Applied {len(done.edited)} edited files from {done.directory} ({how})")
    for conflict in merged.conflicts:
        click.echo(f"conflict: {conflict_line(conflict)}")
    for moved in merged.renumbered:
        click.echo(f"renumbered: {moved.old} -> {moved.new} ({moved.title!r})")
    if merged.conflicts:
        click.echo("(see `git tasks conflicts`; settle with `git tasks resolve ID`)")
    if done.refreshed is None:
        click.echo(
            f"{done.directory} changed meanwhile: left as is; apply again for the newer edits"
        )
    else:
        click.echo(f"{done.directory} now holds {done.refreshed.commit[:10]}")
