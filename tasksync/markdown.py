"""Lossless reading and editing of ``process/tasks.md``; pure functions over ``str``.

An :class:`Index` keeps the file as its original lines, each with its own line ending, and
knows which lines are tasks. Rendering joins the lines back, so ``Index.parse(x).text == x``
for every string. Edits replace, insert or remove only the lines an operation changes:
headings, prose, fenced examples, blank-line style, CRLF and the presence or absence of a final
newline all survive.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

from .errors import AmbiguousTaskId, FormatError, TaskNotFound
from .model import Status, TaskId

INDEX_PATH = "process/tasks.md"
SPEC_DIR = "process/tasks"
RECORDS_PATH = ".tasksync/records.json"  # conflict records and renumberings (see records)

_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_TASK_HEAD = re.compile(r"- \[(.)\] ")
# The id link that ends a title; the title runs up to the last one of these on the line.
# Ids longer than 18 digits are not ids (and would not fit any sane counter).
_ID_LINK = re.compile(r" \[(md#|#)([0-9]{1,18})\]\(")
MAX_ID = 10**18
# Lookups an index remembers (and hands on through checkbox edits) before it starts afresh.
_FOUND_KEPT = 64
_ANY_ID_LINK = re.compile(r" \[(?:md#|#)([0-9]{1,18})\]\(")
# The first line that does not start with a blank or tab: no description goes past it.
_NOT_INDENTED = re.compile(r"^(?![ \t])", re.MULTILINE)
# A description bullet: indented, then "-" and its text; any other line ends the block.
_DESCRIPTION = re.compile(r"[ \t]+- ?(.*)")


def split_lines(text: str) -> tuple[str, ...]:
    """Split ``text`` into lines that keep their endings; ``"".join`` restores it."""
    return tuple(_LINE.findall(text))


def _content(line: str) -> str:
    """A line without its ending (``\\n`` or ``\\r\\n``)."""
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


def _is_blank(line: str) -> bool:
    return not line.strip()


class TaskLine(NamedTuple):
    """A task line of the index, with the description lines that follow it."""

    line: int  # position of the task line in Index.lines
    end: int  # one past its last description line
    checkbox: str
    title: str
    id: TaskId
    link: str
    rest: str  # everything after the link's closing parenthesis
    description: tuple[str, ...]
    id_col: int  # column where the `` [ID](`` link starts
    offset: int  # where the line starts in the text

    @property
    def status(self) -> Status:
        status = Status.from_checkbox(self.checkbox)
        if status is None:  # pragma: no cover - parse only accepts known characters
            raise AssertionError(self.checkbox)
        return status

    @property
    def spec_path(self) -> str | None:
        """The link as a path on the ref, or None when it leaves ``process/`` or is a URL."""
        return resolve_link(self.link)


@lru_cache(maxsize=4096)  # pure, and asked again for every operation on the same task
def resolve_link(link: str) -> str | None:
    """Map a link target as written in tasks.md to a path in the ref's tree.

    Newer files link ``process/tasks/NNN-…``; older ones link ``tasks/NNN-…`` relative to
    ``process/``. Anything that is a URL, absolute, leaves ``process/``, or names the index or
    the spec directory itself (a hand-edited link can) is not a spec path: writing a spec there
    would replace the index or every other spec.
    """
    target = link.strip().split("#", 1)[0]
    if not target or "://" in target or target.startswith(("/", "\\")) or "\\" in target:
        return None
    if not target.startswith("process/"):
        target = "process/" + target
    normal = posixpath.normpath(target)
    if not normal.startswith("process/") or normal != target.replace("/./", "/"):
        return None
    if normal in (INDEX_PATH, SPEC_DIR) or normal.startswith(INDEX_PATH + "/"):
        return None
    return normal


def _description(lines: tuple[str, ...], start: int) -> tuple[str, ...]:
    """The description bullets from ``lines[start]`` on, up to the first other line."""
    description: list[str] = []
    for at in range(start, len(lines)):  # no slice: that would copy the rest of the file
        following = _content(lines[at])
        if _is_blank(following) or following.lstrip().startswith("```"):
            break
        bullet = _DESCRIPTION.fullmatch(following)
        if bullet is None:
            break
        description.append(bullet.group(1) or "")
    return tuple(description)


def _task(
    line: int,
    parsed: tuple[str, str, TaskId, str, str, int],
    description: tuple[str, ...],
    offset: int,
) -> TaskLine:
    """The record of a task line at ``line`` (starting at ``offset``) and its description."""
    checkbox, title, task_id, link, rest, id_col = parsed
    end = line + 1 + len(description)
    return TaskLine(line, end, checkbox, title, task_id, link, rest, description, id_col, offset)


def _fence_lines(text: str) -> list[int]:
    """Where the fence lines start: lines whose first non-blank characters are ```."""
    starts: list[int] = []
    at = text.find("```")
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        if not text[start:at].strip():  # only blanks before: what str.lstrip would strip
            starts.append(start)
            end = text.find("\n", at)
            if end < 0:
                break
            at = text.find("```", end)
        else:
            at = text.find("```", at + 3)
    return starts


def _link_lines(text: str) -> dict[int, list[int]]:
    """Id number → starts of the lines holding an id link with that number."""
    links: dict[int, list[int]] = {}
    for match in _ANY_ID_LINK.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        lines = links.setdefault(int(match.group(1)), [])
        if not lines or lines[-1] != start:
            lines.append(start)
    return links


def _block_end(text: str, start: int) -> int:
    """Where the indented lines that start at ``start`` end (a description is no longer)."""
    match = _NOT_INDENTED.search(text, start)
    return len(text) if match is None else match.start()


def parse_task_line(content: str) -> tuple[str, str, TaskId, str, str, int] | None:
    """Split one line (without its ending) into checkbox, title, id, link and the rest.

    Returns None when the line is not a task line: it must start in column 0 with ``- [``,
    one known checkbox character and ``] ``, and carry an `` [ID](link)`` after the title.
    """
    head = _TASK_HEAD.match(content)
    if head is None or len(head.group(1)) != 1:
        return None
    checkbox = head.group(1)
    body_start = head.end()
    for match in reversed(list(_ID_LINK.finditer(content, body_start - 1))):
        close = content.find(")", match.end())
        if close < 0:
            continue
        title = content[body_start : match.start()] if match.start() >= body_start else ""
        task_id = TaskId(int(match.group(2)), match.group(1))
        link, rest = content[match.end() : close], content[close + 1 :]
        return checkbox, title, task_id, link, rest, match.start()
    return None


def _current(task: TaskLine, checkbox: str) -> TaskLine:
    """``task`` with the checkbox its line has now."""
    return task if task.checkbox == checkbox else task._replace(checkbox=checkbox)


class Index:
    """A parsed ``process/tasks.md``: its lines and where its tasks are. Immutable.

    Parsing is lazy. An index made from text answers :meth:`find` with one regular-expression
    pass over the text and edits a checkbox by splicing one character, so a single status change
    on a large file never splits it into lines; the full parse happens on first use of
    :attr:`lines` or :attr:`tasks`, once per index (and an index is cached per blob id).
    """

    __slots__ = (
        "_fences",
        "_found",
        "_lines",
        "_links",
        "_lookups",
        "_open_fence",
        "_positions",
        "_reserved",
        "_tasks",
        "_text",
    )

    def __init__(
        self,
        lines: tuple[str, ...],
        tasks: tuple[TaskLine, ...],
        reserved: frozenset[int] = frozenset(),
        open_fence: int | None = None,
    ) -> None:
        self._text: str | None = None
        self._lines: tuple[str, ...] | None = lines
        self._tasks: tuple[TaskLine, ...] | None = tasks
        # Numbers of task-shaped lines whose checkbox is unknown: not tasks, never reused.
        self._reserved = reserved
        # The line of a ``` fence that is never closed, if any: everything after it is code.
        self._open_fence = open_fence
        self._positions: dict[int, list[int]] | None = None
        self._fences: list[int] | None = None
        # Lazy lookups: number → starts of lines holding such an id link, built on the second
        # lookup in a chain of checkbox edits (which keep every line where it is).
        self._links: dict[int, list[int]] | None = None
        self._lookups = 0
        # Lookups already made, by number: one operation often looks a task up twice. Shared
        # by a chain of checkbox edits, which move no line: an entry's checkbox is read again
        # from the text on use (see _scan).
        self._found: dict[int, tuple[TaskLine, ...]] | None = None

    @classmethod
    def parse(cls, text: str) -> Index:
        index = cls.__new__(cls)
        index._text = text
        index._lines = index._tasks = index._positions = index._fences = index._links = None
        index._lookups = 0
        index._found = None
        index._reserved = frozenset()
        index._open_fence = None
        return index

    @classmethod
    def from_lines(cls, lines: tuple[str, ...]) -> Index:
        tasks: list[TaskLine] = []
        reserved: set[int] = set()
        fence: int | None = None
        i = 0
        offset = 0
        count = len(lines)
        while i < count:
            line = lines[i]
            content = _content(line)
            if content.lstrip().startswith("```"):
                fence = i if fence is None else None
            elif fence is None and content.startswith("- ["):
                parsed = parse_task_line(content)
                if parsed is not None:
                    if Status.from_checkbox(parsed[0]) is None:
                        reserved.add(parsed[2].number)
                    else:
                        task = _task(i, parsed, _description(lines, i + 1), offset)
                        tasks.append(task)
                        end = task.end
                        while i + 1 < end:
                            i += 1
                            offset += len(line)
                            line = lines[i]
            offset += len(line)
            i += 1
        return cls(lines, tuple(tasks), frozenset(reserved), fence)

    def _parsed(self) -> tuple[tuple[str, ...], tuple[TaskLine, ...]]:
        if self._lines is None or self._tasks is None:
            full = Index.from_lines(split_lines(self.text))
            self._reserved, self._open_fence = full._reserved, full._open_fence
            self._lines, self._tasks = full._lines, full._tasks
        assert self._lines is not None and self._tasks is not None  # noqa: S101 - set above
        return self._lines, self._tasks

    @property
    def lines(self) -> tuple[str, ...]:
        return self._parsed()[0]

    @property
    def tasks(self) -> tuple[TaskLine, ...]:
        return self._parsed()[1]

    @property
    def reserved(self) -> frozenset[int]:
        self._parsed()
        return self._reserved

    @property
    def open_fence(self) -> int | None:
        self._parsed()
        return self._open_fence

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self._lines or ())
        return self._text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Index({len(self.lines)} lines, {len(self.tasks)} tasks)"

    def __iter__(self) -> Iterator[TaskLine]:
        return iter(self.tasks)

    # -- lookups ------------------------------------------------------------------------------

    def find(self, task_id: TaskId) -> TaskLine:
        """The task with ``task_id``'s number; raise when there is none or more than one."""
        if self._tasks is None:
            found = self._scan(task_id.number)
        else:
            found = [self._tasks[k] for k in self._position_map().get(task_id.number, ())]
        if len(found) > 1:
            exact = [t for t in found if t.id.prefix == task_id.prefix]
            found = exact if len(exact) == 1 else found
        if not found:
            raise TaskNotFound(str(self.style_id(task_id.number)))
        if len(found) > 1:
            raise AmbiguousTaskId(str(found[0].id), (t.line + 1 for t in found))
        return found[0]

    def _scan(self, number: int) -> list[TaskLine]:
        """Find the task lines with ``number`` without parsing the whole text.

        Candidate lines are those holding an id link with this number: found by a search for
        the link on a first lookup, and from a map of every id link built once on the second
        (the map survives checkbox edits, which move no line). Each candidate is then read
        exactly as the full parse reads it: a task line outside fences, with a known checkbox,
        whose last id link has this number. A line is inside a fence when an odd number of
        fence lines come before it.
        """
        known = self._found
        if known is not None:
            hit = known.get(number)
            if hit is not None:
                text = self.text
                return [_current(t, text[t.offset + 3]) for t in hit]
        text = self.text
        if self._fences is None:
            self._fences = _fence_lines(text)
        fences = self._fences
        self._lookups += 1
        if self._links is None and self._lookups > 1:
            self._links = _link_lines(text)
        if self._links is not None:
            candidates = self._links.get(number, [])
        else:
            candidates = sorted(
                {
                    text.rfind("\n", 0, match.start()) + 1
                    for match in re.finditer(rf" \[(?:md#|#)0*{number}\]\(", text)
                }
            )
        found: list[TaskLine] = []
        for start in candidates:
            if not text.startswith("- [", start) or bisect.bisect_left(fences, start) % 2:
                continue  # not a task line, or inside a fence
            stop = text.find("\n", start)
            stop = len(text) if stop < 0 else stop + 1
            parsed = parse_task_line(_content(text[start:stop]))
            if parsed is None or parsed[2].number != number:
                continue
            if Status.from_checkbox(parsed[0]) is None:
                continue
            description = _description(split_lines(text[stop : _block_end(text, stop)]), 0)
            found.append(_task(text.count("\n", 0, start), parsed, description, start))
        if known is None or len(known) >= _FOUND_KEPT:
            known = self._found = {}
        known[number] = tuple(found)
        return found

    def next_id(self) -> TaskId:
        """Highest numeric id + 1 in the file's id style (``#001`` for an empty file)."""
        numbers = [t.id.number for t in self.tasks] + list(self.reserved)
        number = max(numbers, default=0) + 1
        if number >= MAX_ID:
            raise FormatError(
                INDEX_PATH, f"its highest id leaves no room for a new one (>= {MAX_ID})"
            )
        return self.style_id(number)

    def style_id(self, number: int) -> TaskId:
        """``number`` written in the id style of this file (that of its last task)."""
        prefix = self.tasks[-1].id.prefix if self.tasks else "#"
        return TaskId(number, prefix)

    def link_for(self, task_id: TaskId, slug: str) -> str:
        """The link a new task gets, following the style of the file's last task."""
        name = f"{task_id.digits}-{slug}.md"
        if self.tasks and resolve_link(self.tasks[-1].link) is not None:
            last = self.tasks[-1].link
            if last.startswith("tasks/"):
                return f"tasks/{name}"
        return f"{SPEC_DIR}/{name}"

    # -- edits ----------------------------------------------------------------------------------

    def with_checkbox(self, task: TaskLine, checkbox: str) -> Index:
        """Rewrite only the checkbox character of ``task``'s line.

        The new index shares everything but that character with this one, so a chain of status
        changes costs no parsing, whether or not this index was ever fully parsed.
        """
        text = self.text
        at = task.offset + 3
        new = Index.parse(text[:at] + checkbox + text[at + 1 :])
        new._fences, new._links, new._lookups = self._fences, self._links, self._lookups
        new._found = self._found  # every line stays where it was
        if self._lines is not None and self._tasks is not None:
            lines, tasks = self._lines, self._tasks
            old = lines[task.line]
            positions = self._position_map()
            k = next(k for k in positions[task.id.number] if tasks[k].line == task.line)
            new._lines = (
                *lines[: task.line],
                old[:3] + checkbox + old[4:],
                *lines[task.line + 1 :],
            )
            new._tasks = (*tasks[:k], task._replace(checkbox=checkbox), *tasks[k + 1 :])
            new._reserved, new._open_fence = self._reserved, self._open_fence
            new._positions = positions
        return new

    def _position_map(self) -> dict[int, list[int]]:
        """Task number → positions in :attr:`tasks` (several when a file repeats an id)."""
        if self._positions is None:
            positions: dict[int, list[int]] = {}
            for k, task in enumerate(self.tasks):
                positions.setdefault(task.id.number, []).append(k)
            self._positions = positions
        return self._positions

    def with_title(self, task: TaskLine, title: str) -> Index:
        """Replace only the title part of ``task``'s line."""
        old = self.lines[task.line]
        new_line = f"- [{task.checkbox}] {title}{old[task.id_col :]}"
        return self._splice(task.line, task.line + 1, (new_line,))

    def with_description(self, task: TaskLine, description: str) -> Index:
        """Replace ``task``'s description bullets with one bullet per line of ``description``."""
        eol = self.eol
        indent = "  "
        if task.end > task.line + 1:
            first = self.lines[task.line + 1]
            indent = first[: len(first) - len(first.lstrip(" \t"))]
        bullets = tuple(
            f"{indent}- {text.strip()}{eol}" for text in description.splitlines() if text.strip()
        )
        return self._splice(task.line + 1, task.end, bullets)

    def with_task_added(self, line: str) -> Index:
        """Append a task line after the last task, in the file's blank-line and EOL style."""
        eol = self.eol
        if self.tasks:
            at = self.tasks[-1].end
            if not self._blank_separated():
                return self._splice(at, at, (line + eol,))
            if at < len(self.lines) and _is_blank(self.lines[at]):
                # Reuse the blank line that already follows the last task.
                return self._splice(at + 1, at + 1, (line + eol, eol))
            return self._splice(at, at, (eol, line + eol))
        at = len(self.lines) if self.open_fence is None else self.open_fence
        if at and not _is_blank(self.lines[at - 1]):
            return self._splice(at, at, (eol, line + eol))
        if at < len(self.lines):  # before an unclosed fence: keep a blank line between
            return self._splice(at, at, (line + eol, eol))
        return self._splice(at, at, (line + eol,))

    def without(self, task: TaskLine) -> Index:
        """Remove ``task``'s line and its description, keeping the blank-line style."""
        start, end = task.line, task.end
        lines = self.lines
        before_blank = start > 0 and _is_blank(lines[start - 1])
        if before_blank and end < len(lines) and _is_blank(lines[end]):
            end += 1
        elif before_blank and end == len(lines):
            start -= 1
        return self._splice(start, end, ())

    # -- helpers --------------------------------------------------------------------------------

    @property
    def eol(self) -> str:
        """The file's line ending: that of its first line, ``\\n`` when it has none."""
        for line in self.lines:
            if line.endswith("\n"):
                return "\r\n" if line.endswith("\r\n") else "\n"
        return "\n"

    def _blank_separated(self) -> bool:
        """Whether the last two tasks are separated by blank lines only."""
        if len(self.tasks) < 2:
            return False
        before, last = self.tasks[-2], self.tasks[-1]
        gap = self.lines[before.end : last.line]
        return bool(gap) and all(_is_blank(line) for line in gap)

    def _splice(self, start: int, end: int, new: tuple[str, ...]) -> Index:
        """Replace ``lines[start:end]`` with ``new`` (lines that end in an EOL).

        Keeps the file's final-newline state: an old unterminated last line that is no longer
        last gets an ending, and a new last line loses its ending when the file had none.
        """
        final_newline = not self.lines or self.lines[-1].endswith("\n")
        lines = list(self.lines[:start]) + list(new) + list(self.lines[end:])
        for i in range(len(lines) - 1):
            if not lines[i].endswith("\n"):
                lines[i] += self.eol
        if lines and not final_newline:
            lines[-1] = _content(lines[-1])
            while lines and not lines[-1]:
                lines.pop()
                if lines:
                    lines[-1] = _content(lines[-1])
        return Index.from_lines(tuple(lines))


# What one line is, for readers that walk lines themselves (see line_kind).
PLAIN, FENCE, BULLET, TASK, RESERVED = range(5)


def _task_shape(line: str) -> tuple[str, int] | None:
    """The checkbox and id number :func:`parse_task_line` finds in ``line``, found faster:
    the last id link that a ")" follows, searched from that ")" backwards (linear in the line).
    """
    if line[4:6] != "] ":
        return None
    close = line.rfind(")")
    at = line.rfind(" [", 5, close)
    while at >= 5:
        link = _ID_LINK.match(line, at, close)
        if link is not None:
            return line[3], int(link.group(2))
        at = line.rfind(" [", 5, at)
    return None


def line_kind(line: str) -> tuple[int, int]:
    """What ``line`` is on its own, and its id number for task-shaped lines (else 0).

    TASK and RESERVED (a task-shaped line with an unknown checkbox) count only outside fences;
    BULLET lines count as a description only right after a task line; that is for the caller
    to track, exactly as :meth:`Index.from_lines` does.
    """
    if line.startswith("- ["):  # most lines of a task file: no fence starts with "-"
        shape = _task_shape(line)
        if shape is not None:
            known = Status.from_checkbox(shape[0]) is not None
            return (TASK if known else RESERVED), shape[1]
        return PLAIN, 0
    if line.lstrip().startswith("```"):
        return FENCE, 0
    if line[:1] in (" ", "\t") and _DESCRIPTION.fullmatch(_content(line)):
        return BULLET, 0
    return PLAIN, 0


def task_line(checkbox: str, title: str, task_id: TaskId, link: str) -> str:
    """One task line without its ending."""
    return f"- [{checkbox}] {title} [{task_id}]({link})"
