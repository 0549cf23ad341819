"""The ``git tasks hooks`` commands: install, uninstall, pre-push, update and server.
Importing this module registers them on :data:`tasksync.cli.cli`; like the rest of the CLI it
only parses arguments and formats output (the checks live in :mod:`tasksync.hooks`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli import CONTEXT, _shown, cli

if TYPE_CHECKING:
    from .hooks import Installed, Report


def _where(ctx: click.Context) -> Path:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    return Path(obj.get("path") or ".")


def _report(ctx: click.Context, report: Report) -> None:
    """Warnings and errors on stderr, one line each; exit 1 when there is an error."""
    for text in report.warnings:
        click.echo(f"warning: {_shown(text)}", err=True)
    for text in report.errors:
        click.echo(f"error: {_shown(text)}", err=True)
    if report.errors:
        ctx.exit(1)


def _say(done: Installed, name: str) -> None:
    chained = done.chained
    if done.action in ("installed", "updated", "unchanged"):
        verb = {"installed": "Installed", "updated": "Updated", "unchanged": "Already installed:"}
        click.echo(f"{verb[done.action]} the {name} hook {done.hook}")
        if chained is not None:
            click.echo(f"The earlier {name} hook, kept as {chained}, runs first")
    elif done.action == "removed":
        click.echo(f"Removed the {name} hook {done.hook}")
        if chained is not None:
            click.echo(f"Restored the earlier {name} hook {chained}")
    elif done.action == "absent":
        click.echo(f"No tasksync {name} hook in {done.hook.parent}")
        if chained is not None:
            click.echo(f"Restored the earlier {name} hook {chained}")
    else:
        click.echo(f"{done.hook} is not tasksync's {name} hook; left it alone")


@cli.group(context_settings=CONTEXT)
def hooks() -> None:
    """Check pushes of the tasks ref and of branches, with git hooks.

    \b
    git tasks hooks install | uninstall [--server]
    git tasks hooks server [--install]
    """


@hooks.command("install")
@click.pass_context
def hooks_install(ctx: click.Context) -> None:
    """Install the pre-push hook (an existing one is kept and runs first)."""
    from .hooks import install

    _say(install(_where(ctx), "pre-push"), "pre-push")


@hooks.command("uninstall")
@click.option("--server", is_flag=True, help="Remove the server's update hook instead.")
@click.pass_context
def hooks_uninstall(ctx: click.Context, server: bool) -> None:
    """Remove tasksync's pre-push hook and restore the hook it chained."""
    from .hooks import uninstall

    name = "update" if server else "pre-push"
    _say(uninstall(_where(ctx), name), name)


@hooks.command("pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
@click.pass_context
def hooks_pre_push(ctx: click.Context, remote: str | None, url: str | None) -> None:
    """Check a push: what git's pre-push hook runs (REMOTE URL, the refs on stdin).

    Under the pre-commit framework the refs come from PRE_COMMIT_* variables instead.
    """
    from .hooks import parse_push_lines, pre_commit_update, pre_push

    where = _where(ctx)
    found = pre_commit_update(os.environ, where)
    name = remote or os.environ.get("PRE_COMMIT_REMOTE_NAME") or url
    if found is not None:
        updates = [found]
    else:
        updates = [] if sys.stdin.isatty() else parse_push_lines(sys.stdin.read())
    if not name:
        raise click.UsageError("give the REMOTE the push goes to (git passes it to the hook)")
    _report(ctx, pre_push(where, name, updates))


@hooks.command("update")
@click.argument("ref", metavar="REF")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.pass_context
def hooks_update(ctx: click.Context, ref: str, old: str, new: str) -> None:
    """Check one ref update on a server: what the update hook runs (REF OLD NEW)."""
    from .hooks import check_update

    _report(ctx, check_update(_where(ctx), ref, old, new))


@hooks.command("server")
@click.option(
    "--install",
    "install_it",
    is_flag=True,
    help="Write it into this repository's hooks directory instead of printing it.",
)
@click.pass_context
def hooks_server(ctx: click.Context, install_it: bool) -> None:
    """Print the server-side update hook that guards refs/tasks/* (or install it)."""
    from .hooks import UPDATE_SCRIPT, install

    if not install_it:
        click.echo(UPDATE_SCRIPT, nl=False)
        return
    _say(install(_where(ctx), "update"), "update")
