"""Docs and code agree: every command, option and config key is documented where users look.

The click command tree of ``git tasks`` is walked; each command must have help text, its own
section in docs/usage.md and its own entry in the man page, and each of its options must be
documented in both places under that command.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import tasksync
from tasksync.cli import cli
from tasksync.model import Status

ROOT = Path(__file__).resolve().parent.parent
USAGE = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
FORMAT = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
MAN = (ROOT / "man" / "git-tasks.1").read_text(encoding="utf-8")
WORKSPACE_SOURCE = (ROOT / "tasksync" / "workspace.py").read_text(encoding="utf-8")

#: The git config keys tasksync reads; a new key must be added here and documented.
CONFIG_KEYS = (
    "tasks.ref",
    "tasks.retryTimeout",
    "tasks.fileLock",
    "tasks.hub",
    "tasks.syncTimeout",
    "tasks.autoPack",
    "tasks.staleLockAfter",
    "tasks.fsync",
    "tasks.maxFileSize",
)

_OPTION_NAME = re.compile(r"--?[A-Za-z][A-Za-z0-9-]*")


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree, groups included, with its path of names (root: ``()``)."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):  # loads the commands defined elsewhere
            sub = command.get_command(ctx, name)
            assert sub is not None, f"`{name}` is listed but cannot be loaded"
            yield from walk(sub, (*path, name))


COMMANDS = dict(walk(cli))
PATHS = sorted(COMMANDS)
SUBCOMMANDS = [path for path in PATHS if path]


def label(path: tuple[str, ...]) -> str:
    return " ".join(path) or "git tasks"


def documented_names(option: click.Option) -> list[str]:
    """The names a reader looks an option up by: its long names, or its short one."""
    names = [*option.opts, *option.secondary_opts]
    long = [name for name in names if name.startswith("--")]
    return long or names


def options(command: click.Command) -> list[click.Option]:
    return [param for param in command.params if isinstance(param, click.Option)]


# -- docs/usage.md --------------------------------------------------------------------------------


def usage_sections() -> dict[str, str]:
    """``### `` sections of usage.md: each name in a heading (``status get, status set``) → text."""
    sections: dict[str, str] = {}
    heading: str | None = None
    body: list[str] = []
    for line in [*USAGE.splitlines(), "## end"]:
        if line.startswith("#"):
            if heading is not None:
                for name in heading.split(","):
                    sections[name.strip()] = "\n".join(body)
            heading = line[4:].strip() if line.startswith("### ") else None
            body = []
        else:
            body.append(line)
    return sections


def usage_section(path: tuple[str, ...]) -> str:
    """The usage.md section documenting ``path`` (the global options for the root)."""
    sections = usage_sections()
    if not path:
        return sections.get("Global options", "")
    wanted = " ".join(path)
    parts = [
        text for name, text in sections.items() if name == wanted or name.startswith(wanted + " ")
    ]
    return "\n".join(parts)


def mentions_option(text: str, name: str) -> bool:
    """``name`` written as code (`` `--expect OLD` ``), not as part of a longer option name."""
    return re.search(rf"`{re.escape(name)}(?![A-Za-z0-9-])", text) is not None


# -- man/git-tasks.1 ------------------------------------------------------------------------------


def roff_text(line: str) -> str:
    """A roff line as a reader sees it: no macro name, font changes, escapes or quotes."""
    text = re.sub(r"\\f[BIRP]", "", line)
    text = text.replace("\\-", "-").replace("\\&", "").replace('"', "")
    if text.startswith("."):
        text = text.split(" ", 1)[1] if " " in text else ""
    return " ".join(text.split())


def man_section(name: str) -> list[str]:
    """The source lines of one ``.SH`` section of the man page."""
    lines = MAN.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith(".SH "):
            inside = line[4:].strip().strip('"') == name
            continue
        if inside:
            out.append(line)
    return out


def man_entries(section: str) -> dict[str, set[str]]:
    """Top-level ``.TP`` tags of a section → option names tagged inside their ``.RS`` block."""
    lines = man_section(section)
    entries: dict[str, set[str]] = {}
    depth = 0
    current: str | None = None
    for i, line in enumerate(lines):
        if line.startswith(".RS"):
            depth += 1
        elif line.startswith(".RE"):
            depth -= 1
        elif line.startswith(".TP") and i + 1 < len(lines):
            tag = roff_text(lines[i + 1])
            if depth == 0:
                current = tag
                entries[tag] = set(_OPTION_NAME.findall(tag)) if tag.startswith("-") else set()
            elif current is not None:
                entries[current] |= set(_OPTION_NAME.findall(tag))
    return entries


def man_options(path: tuple[str, ...]) -> set[str] | None:
    """Option names the man page documents for ``path``; None when it has no entry."""
    if not path:
        names: set[str] = set()
        for found in man_entries("OPTIONS").values():
            names |= found
        return names
    matches = [
        found
        for tag, found in man_entries("COMMANDS").items()
        if tag.split()[: len(path)] == list(path)
    ]
    if not matches:
        return None
    return set().union(*matches)


MAN_TEXT = "\n".join(roff_text(line) for line in MAN.splitlines())


# -- commands and options -------------------------------------------------------------------------


def test_the_tree_has_the_documented_commands() -> None:
    """A guard for the walk itself: nested groups are visited."""
    assert ("status", "set") in COMMANDS
    assert ("status", "get") in COMMANDS
    assert ("init",) in COMMANDS


@pytest.mark.parametrize("path", PATHS, ids=label)
def test_command_has_help_text(path: tuple[str, ...]) -> None:
    command = COMMANDS[path]
    assert (command.help or "").strip(), f"`{label(path)}` has no help text"


@pytest.mark.parametrize("path", PATHS, ids=label)
def test_every_option_has_help_text(path: tuple[str, ...]) -> None:
    for option in options(COMMANDS[path]):
        assert (option.help or "").strip(), f"{option.opts} of `{label(path)}` has no help text"


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=label)
def test_command_is_in_usage(path: tuple[str, ...]) -> None:
    section = usage_section(path)
    assert section, f"docs/usage.md has no `### {' '.join(path)}` section"
    assert f"git tasks {' '.join(path)}" in section, (
        f"the usage.md section of `{label(path)}` shows no `git tasks {' '.join(path)}` command"
    )


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=label)
def test_command_is_in_man_page(path: tuple[str, ...]) -> None:
    assert man_options(path) is not None, f"man/git-tasks.1 COMMANDS has no entry `{label(path)}`"
    assert f"git tasks {' '.join(path)}" in MAN_TEXT or any(
        line.startswith(".B git tasks") and " ".join(path) in roff_text(line)
        for line in man_section("SYNOPSIS")
    ), f"man/git-tasks.1 SYNOPSIS does not show `{label(path)}`"


@pytest.mark.parametrize("path", PATHS, ids=label)
def test_options_are_in_usage(path: tuple[str, ...]) -> None:
    section = usage_section(path)
    for option in options(COMMANDS[path]):
        for name in documented_names(option):
            assert mentions_option(section, name), (
                f"docs/usage.md does not document {name} of `{label(path)}` in its section"
            )


@pytest.mark.parametrize("path", PATHS, ids=label)
def test_options_are_in_man_page(path: tuple[str, ...]) -> None:
    documented = man_options(path) or set()
    for option in options(COMMANDS[path]):
        for name in documented_names(option):
            assert name in documented, (
                f"man/git-tasks.1 does not document {name} under `{label(path)}`"
            )


def test_help_option_is_documented() -> None:
    assert mentions_option(usage_section(()), "--help")
    assert {"-h", "--help"} <= (man_options(()) or set())


# -- configuration --------------------------------------------------------------------------------


def test_config_keys_are_the_ones_the_code_reads() -> None:
    read = set(re.findall(r"[\"'](tasks\.[A-Za-z]+)[\"']", WORKSPACE_SOURCE))
    assert read == set(CONFIG_KEYS), (
        f"workspace.py reads {sorted(read)}; update CONFIG_KEYS and the docs"
    )


@pytest.mark.parametrize("key", CONFIG_KEYS)
def test_config_key_is_documented(key: str) -> None:
    assert f"| `{key}` |" in USAGE, f"docs/usage.md's configuration table lacks {key}"
    man_keys = man_entries("CONFIGURATION")
    assert key in man_keys, f"man/git-tasks.1 CONFIGURATION lacks {key}"


# -- vocabulary shared by the docs ----------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status), ids=lambda status: status.value)
def test_status_names_are_documented(status: Status) -> None:
    for name, text in (("usage.md", USAGE), ("format.md", FORMAT), ("man page", MAN_TEXT)):
        assert status.value in text, f"{name} does not name the status {status.value}"


def error_classes() -> list[str]:
    return sorted(
        name
        for name in tasksync.__all__
        if isinstance(getattr(tasksync, name), type)
        and issubclass(getattr(tasksync, name), tasksync.TaskSyncError)
    )


@pytest.mark.parametrize("name", error_classes())
def test_error_class_is_documented(name: str) -> None:
    assert f"| `{name}` |" in USAGE, f"docs/usage.md's error table lacks {name}"


@pytest.mark.parametrize(
    "method",
    sorted(
        name
        for name in vars(tasksync.TaskStore)
        if not name.startswith("_") and callable(getattr(tasksync.TaskStore, name))
    ),
)
def test_task_store_method_is_documented(method: str) -> None:
    assert re.search(rf"`(?:TaskStore\.)?{method}\(", USAGE), (
        f"docs/usage.md does not document TaskStore.{method}()"
    )


@pytest.mark.parametrize("code", ["0", "1", "2", "3", "130"])
def test_exit_codes_are_documented(code: str) -> None:
    assert f"| {code} |" in USAGE, f"docs/usage.md's exit status table lacks {code}"
    assert any(line == f".B {code}" for line in man_section("EXIT STATUS")), (
        f"man/git-tasks.1 EXIT STATUS lacks {code}"
    )


_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_relative_links_and_images_point_at_committed_files(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    prose, fenced = [], False
    for line in text.splitlines():  # examples in fences and code spans are not links
        if re.match(r" *```+[^`]*$", line):  # a fence's info string holds no backtick
            fenced = not fenced
        elif not fenced:
            prose.append(re.sub(r"`[^`]*`", "", line))
    text = "\n".join(prose)
    missing = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path = (page.parent / target).resolve()
        tracked = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--error-unmatch", str(path)],
            capture_output=True,
            check=False,
        )
        if not path.exists() or (path.is_file() and tracked.returncode != 0):
            missing.append(target)
    assert missing == [], f"{page.name} links to files a clone does not have: {missing}"
