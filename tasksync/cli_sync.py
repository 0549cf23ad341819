"""The commands of ``git tasks`` that reach past this repository: hub, sync, remote setup.

Importing this module registers them on :data:`tasksync.cli.cli`; like the rest of the CLI it
only parses arguments and formats output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli import CONTEXT, _json, _store, cli

if TYPE_CHECKING:
    from .sync import SyncResult


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the answer as a JSON object.")
@click.pass_context
def hub(ctx: click.Context, as_json: bool) -> None:
    """Show which repository's tasks ref this workspace reads and writes."""
    store = _store(ctx)
    found = store.hub
    state = "own" if found is None else ("missing" if found.repo is None else "hub")
    if as_json:
        _json(
            {
                "state": state,
                "path": str(found.path) if found is not None else str(store.store_dir),
                "source": found.source if found is not None else None,
                "ref": store.ref,
                "unsynced": store.unsynced() if found is not None else False,
            }
        )
        return
    if found is None:
        click.echo(f"this repository ({store.store_dir}): {store.ref}")
    elif found.repo is None:
        click.echo(f"missing: {found.path} (from {found.source}); using this clone's own ref")
    else:
        click.echo(f"{found.path} (from {found.source}): {store.ref}")
        if store.unsynced():
            click.echo("this clone's own ref has work the hub lacks: run `git tasks sync`")


@cli.command()
@click.argument("remote", required=False)
@click.option("--dry-run", is_flag=True, help="Fetch and show what would move; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as a JSON object.")
@click.pass_context
def sync(ctx: click.Context, remote: str | None, dry_run: bool, as_json: bool) -> None:
    """Merge with REMOTE's tasks ref (default origin) and push so it only fast-forwards."""
    store = _store(ctx)
    if dry_run:
        from .sync import plan

        planned = plan(store, remote)
        if as_json:
            _json(planned._asdict())
        else:
            click.echo(
                f"{planned.remote}: {planned.action} "
                f"(local {_short(planned.local)}, remote {_short(planned.fetched)})"
            )
        return
    done = store.sync(remote)
    if as_json:
        _json(
            {
                "remote": done.remote,
                "fetched": done.fetched,
                "merged": None if done.merged is None else done.merged.outcome,
                "pushed": done.pushed,
                "handed_to_hub": None if done.handed_to_hub is None else done.handed_to_hub.outcome,
                "attempts": done.attempts,
                "restored": list(done.restored),
                "conflicts": [
                    c.to_json()
                    for m in (done.merged, done.handed_to_hub, *done.merged_back)
                    if m is not None
                    for c in m.conflicts
                ],
            }
        )
        return
    _print_sync(done)


def _print_sync(done: SyncResult) -> None:
    """The lines `git tasks sync` prints: hand-back, restored states, outcome, conflicts."""
    if done.handed_to_hub is not None:
        click.echo(f"hub: merged this clone's own work ({done.handed_to_hub.outcome})")
    if done.restored:
        shown = ", ".join(commit[:12] for commit in done.restored)
        click.echo(f"{done.remote}: was force-pushed; merged back what it had held ({shown})")
    if done.remote is None:
        click.echo("no remote to sync with beyond the hub")
    else:
        said = []
        if done.merged is not None and done.merged.outcome != "up-to-date":
            said.append(f"{done.merged.outcome} from {done.remote}")
        if done.pushed is not None:
            said.append(f"pushed {done.pushed[:12]}")
        click.echo(f"{done.remote}: {', '.join(said) or 'up to date'}")
    from .cli_merge import conflict_line

    for merged in (done.handed_to_hub, *done.merged_back, done.merged):
        for moved in merged.renumbered if merged is not None else ():
            click.echo(f"renumbered {moved.old} \u2192 {moved.new} ({moved.title!r})")
        for conflict in merged.conflicts if merged is not None else ():
            click.echo(f"conflict: {conflict_line(conflict)}")


def _short(commit: str | None) -> str:
    return "none" if commit is None else commit[:12]


@cli.group(context_settings=CONTEXT)
def remote() -> None:
    """Set up remotes for tasks."""


@remote.command("setup")
@click.argument("name", metavar="REMOTE")
@click.pass_context
def remote_setup(ctx: click.Context, name: str) -> None:
    """Make a plain `git fetch REMOTE` fetch tasks too (never changes what `git push` sends)."""
    from .sync import setup_remote, tracking_ref

    store = _store(ctx)
    added = setup_remote(store, name)
    where = tracking_ref(name, store.ref)
    click.echo(f"{name}: fetches tasks into {where}" + ("" if added else " (already set up)"))
