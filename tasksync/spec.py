"""Spec files (``process/tasks/NNN-slug.md``): title heading and ``## Context``; pure."""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import InvalidDescription
from .markdown import split_lines
from .model import TaskId

_HEADING = re.compile(r"# (?:Task(?: (?:md#|#)?\d+)?: )?(.*)")
_ID_HEADING = re.compile(r"# Task (?:md#|#)?\d+: ")
_SECTION = re.compile(r"## ")


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


def spec_title(text: str) -> str | None:
    """The title from the first ``# `` heading (``# Task #157: T``, ``# Task: T`` or ``# T``)."""
    for line in split_lines(text):
        content = _strip_eol(line)
        if content.startswith("# "):
            match = _HEADING.fullmatch(content)
            return match.group(1).strip() if match else None
    return None


def _context_span(lines: tuple[str, ...]) -> tuple[int, int] | None:
    """Lines of the ``## Context`` body: from after its heading to the next ``## ``."""
    start = None
    for i, line in enumerate(lines):
        content = _strip_eol(line)
        if start is None:
            if content.strip().lower() == "## context":
                start = i + 1
        elif _SECTION.match(content):
            return start, i
    return None if start is None else (start, len(lines))


@lru_cache(maxsize=1024)
def context(text: str) -> str | None:
    """The ``## Context`` section's text without surrounding blank lines, or None."""
    lines = split_lines(text)
    span = _context_span(lines)
    if span is None:
        return None
    return "\n".join(_strip_eol(line) for line in lines[span[0] : span[1]]).strip()


def _eol(lines: tuple[str, ...]) -> str:
    for line in lines:
        if line.endswith("\n"):
            return "\r\n" if line.endswith("\r\n") else "\n"
    return "\n"


def check_description(description: str) -> str:
    """Return the description as stored, or raise when it would not read back the same."""
    text = description.replace("\r\n", "\n").replace("\r", "\n").strip()
    try:
        text.encode("utf-8")  # fails exactly on surrogates, and in C: a long text costs little
    except UnicodeEncodeError as error:
        raise InvalidDescription(
            f"it contains the lone surrogate U+{ord(text[error.start]):04X}, which is not "
            "text; check the encoding of its source"
        ) from None
    for line in text.split("\n"):
        if _SECTION.match(line) or line.startswith("# "):
            raise InvalidDescription(
                f"the line {line!r} would start a new section of the spec; "
                "indent it or drop the leading #"
            )
    return text


def new_spec(task_id: TaskId, title: str, description: str) -> str:
    """The spec file a new task gets."""
    body = f"{description}\n\n" if description else ""
    return f"# Task {task_id}: {title}\n\n## Context\n\n{body}"


def with_context(text: str, description: str) -> str:
    """``text`` with its ``## Context`` body replaced (the section added when missing)."""
    lines = split_lines(text)
    eol = _eol(lines)
    body = tuple(f"{line}{eol}" for line in description.split("\n")) if description else ()
    span = _context_span(lines)
    if span is None:
        # Add the section before the first other section, or at the end: text after the
        # title (prose of its own) stays where it is and does not become part of the context.
        at = next((i for i, line in enumerate(lines) if _SECTION.match(line)), len(lines))
        head, rest = list(lines[:at]), lines[at:]
        if head and not head[-1].endswith("\n"):
            head[-1] += eol
        block = [*((eol,) if head and head[-1].strip() else ()), f"## Context{eol}", eol, *body]
        if rest:
            block.append(eol)
        return "".join((*head, *block, *rest))
    start, end = span
    tail_blank = (eol,) if end < len(lines) else ()
    return "".join((*lines[:start], eol, *body, *tail_blank, *lines[end:]))


def with_title(text: str, task_id: TaskId, title: str) -> str:
    """``text`` with its first heading naming ``title``, in the heading's existing form."""
    lines = list(split_lines(text))
    for i, line in enumerate(lines):
        content = _strip_eol(line)
        if content.startswith("# "):
            ending = line[len(content) :]
            if content.startswith("# Task: "):
                lines[i] = f"# Task: {title}{ending}"
            elif _ID_HEADING.match(content):
                lines[i] = f"# Task {task_id}: {title}{ending}"
            else:
                lines[i] = f"# {title}{ending}"
            return "".join(lines)
    eol = _eol(tuple(lines))
    return f"# Task {task_id}: {title}{eol}{eol}" + text
