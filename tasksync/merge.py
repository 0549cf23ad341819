"""Three-way merge of tasks.md: task-aware, deterministic, symmetric; conflicts kept as data.

Tasks are matched by id. Each field of a task (status, title, id as written, link, the text
after the link, description bullets, position) merges on its own: a change on one side is
taken, the same change on both sides is taken once, and different changes on both sides are a
conflict that a fixed rule settles (status: the one further along; anything else: the greater
value) while the other value goes into a :class:`Conflict` record. Lines outside tasks merge
line-wise between the tasks around them. The result never depends on which side is "ours":
``merge3(b, o, t)`` and ``merge3(b, t, o)`` write the same text.

Pure: no git, no I/O. Spec files and the records stored beside them merge in :mod:`.trees`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, NamedTuple

from .errors import TaskNotFound, TaskSyncError
from .markdown import (
    BULLET,
    FENCE,
    RESERVED,
    TASK,
    Index,
    TaskLine,
    line_kind,
    resolve_link,
    split_lines,
)
from .model import Status, TaskId, slugify
from .records import Conflict, Renumbering
from .sequence import Token, merge_order

Side = Literal["ours", "theirs"]
# What a side's spec of a task says, for telling two tasks created with one id apart.
SpecOf = Callable[[Side, int], "str | None"]

# How far along a status is; a status conflict keeps the higher. BLOCKED outranks the work
# states it interrupts (a blocker reported is news) but not review or an end; DONE outranks
# CLOSED (work that was finished stays finished; the close is kept in the record).
STATUS_RANK = {
    Status.TODO: 0,
    Status.IN_PROGRESS: 1,
    Status.BLOCKED: 2,
    Status.IN_REVIEW: 3,
    Status.CLOSED: 4,
    Status.DONE: 5,
}

FIELDS = ("status", "title", "id", "link", "rest", "description")

# Ids from here up stand for tasks by their creation identity while histories merge (see
# :mod:`.trees`); they never reach a file.
VIRTUAL = 10**15


class IndexMerge(NamedTuple):
    """The merged tasks.md, the conflicts settled on the way and the tasks renumbered."""

    text: str
    conflicts: tuple[Conflict, ...]
    renumbered: tuple[Renumbering, ...]


def merge3(
    base: str,
    ours: str,
    theirs: str,
    *,
    specs: SpecOf | None = None,
    renumber: Side | None = None,
    highest: int = 0,
) -> IndexMerge:
    """Merge two descendants of ``base`` of tasks.md.

    ``specs`` tells the spec texts of a task created on both sides, so that two tasks with the
    same line but different specs count as different. A task created with the same id on both
    sides with different content keeps its id on one side and gets the next free id on the
    other: the side whose copy sorts greater, or the side ``renumber`` names (an edit being
    merged onto a tip others already see). Ids given out are above ``highest`` too (the highest
    id a side ever used, deleted tasks included).
    """
    if theirs == base or (ours == theirs and specs is None):
        return IndexMerge(ours, (), ())
    if ours == base:
        return IndexMerge(theirs, (), ())
    kinds: dict[str, int] = {}
    eol = _line_ending(base, ours, theirs)
    with _collector_paused():
        docs = _Doc(base, kinds, eol), _Doc(ours, kinds, eol), _Doc(theirs, kinds, eol)
        renumbered = _renumber(*docs, specs, renumber=renumber, highest=highest)
        conflicts: list[Conflict] = []
        merged = _merge_tasks(*docs, conflicts)
        tokens = merge_order(*docs, conflicts)
        text = _assemble(tokens, merged, docs, conflicts)
    b, o, t = docs
    final = o.final_newline if t.final_newline == b.final_newline else t.final_newline
    if not ours or not theirs:  # an emptied file has no last line to end either way
        final = (t if ours == "" else o).final_newline if ours or theirs else b.final_newline
    if not final:  # the line ending added to the last line goes, with any blank line a
        # removed task's separator left after it: such a file never ends in a line ending
        text = text.rstrip("\r\n")
    return IndexMerge(text, tuple(sorted(conflicts, key=_conflict_key)), tuple(renumbered))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a merge runs.

    A merge of a large file makes tens of thousands of short-lived objects and no cycles; the
    collections they set off scan every object of the process (about 10 ms each in a process
    with pygit2 loaded) and would be most of the merge's time. Whoever disabled the collector
    before keeps it disabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _line_ending(base: str, ours: str, theirs: str) -> str:
    """How the files end their lines, for a last line without an ending: as the base does,
    else as the sides do when they agree, else LF (never as whichever side is ours)."""
    found = _ending_of(base)
    if found is not None:
        return found
    endings = {ending for ending in map(_ending_of, (ours, theirs)) if ending is not None}
    return endings.pop() if len(endings) == 1 else "\n"


def _ending_of(text: str) -> str | None:
    at = text.rfind("\n")
    if at < 0:
        return None
    return "\r\n" if at > 0 and text[at - 1] == "\r" else "\n"


# -- documents ------------------------------------------------------------------------------------


class _Doc:
    """A tasks.md as tokens: each task one token (its number), every other line one token."""

    __slots__ = ("blocks", "final_newline", "numbers", "tokens")

    def __init__(self, text: str, kinds: dict[str, int], eol: str) -> None:
        self.final_newline = not text or text.endswith("\n")
        if not self.final_newline:  # end the last line as the file ends its other lines
            text += eol
        lines = split_lines(text)
        tokens: list[Token] = []
        blocks: dict[int, str] = {}
        numbers: set[int] = set()

        def close(number: int, start: int, end: int) -> None:
            if number in blocks:  # a second task with one id: it merges as plain lines
                tokens.extend(lines[start:end])
            else:
                blocks[number] = lines[start] if end == start + 1 else "".join(lines[start:end])
                tokens.append(number)

        fenced = False
        task = start = 0  # the task whose description lines may follow (0: none), its line
        for i, line in enumerate(lines):
            kind = kinds.get(line)
            if kind is None:  # the three sides share most lines: each is classified once
                code, number = line_kind(line)
                kind = kinds[line] = code | number << 3  # an int: nothing for the GC to track
            code = kind & 7
            if task:
                if code == BULLET:
                    continue
                if i == start + 1 and task not in blocks:  # most tasks: one line
                    blocks[task] = lines[start]
                    tokens.append(task)
                else:
                    close(task, start, i)
                task = 0
            if code == FENCE:
                fenced = not fenced
            elif code == TASK and not fenced:
                task, start = kind >> 3, i
                numbers.add(task)
                continue
            elif code == RESERVED and not fenced:
                numbers.add(kind >> 3)
            tokens.append(line)
        if task:
            close(task, start, len(lines))
        self.tokens = tokens
        self.blocks = blocks
        self.numbers = numbers

    def order(self) -> list[int]:
        return [token for token in self.tokens if type(token) is int]

    def renumber(self, old: int, new: int, block: str) -> None:
        self.tokens[self.tokens.index(old)] = new
        del self.blocks[old]
        self.blocks[new] = block
        self.numbers.add(new)


def _entry(block: str) -> TaskLine:
    return Index.from_lines(split_lines(block)).tasks[0]


def _fields(block: str) -> dict[str, str]:
    """The fields of one task block, each as written."""
    entry = _entry(block)
    lines = split_lines(block)
    first = lines[0]
    content = first.rstrip("\n")
    content = content.removesuffix("\r") if first.endswith("\r\n") else content
    id_start = entry.id_col + 2
    return {
        "status": entry.checkbox,
        "title": entry.title,
        "id": content[id_start : content.index("](", id_start)],
        "link": entry.link,
        "rest": entry.rest,
        "description": "".join(lines[1:]),
        "eol": first[len(content) :],
    }


def _render(fields: dict[str, str]) -> str:
    title = f" {fields['title']}" if fields["title"] else ""
    return (
        f"- [{fields['status']}]{title} [{fields['id']}]({fields['link']}){fields['rest']}"
        f"{fields['eol']}{fields['description']}"
    )


# -- tasks created twice --------------------------------------------------------------------------


def _renumber(
    b: _Doc,
    o: _Doc,
    t: _Doc,
    specs: SpecOf | None,
    *,
    renumber: Side | None,
    highest: int,
) -> list[Renumbering]:
    # Stand-in numbers are identities: one on both sides is one task, merged field by field.
    twice = sorted(n for n in o.blocks if n in t.blocks and n not in b.blocks and n < VIRTUAL)
    done: list[Renumbering] = []
    if not twice:
        return done
    free = max([highest, *(n for n in (*b.numbers, *o.numbers, *t.numbers) if n < VIRTUAL)]) + 1
    for number in twice:
        spec_o = specs("ours", number) if specs is not None else None
        spec_t = specs("theirs", number) if specs is not None else None
        if o.blocks[number] == t.blocks[number] and spec_o == spec_t:
            continue  # the same task, created on both sides
        mine = (o.blocks[number], spec_o or "") > (t.blocks[number], spec_t or "")
        side: Side = renumber or ("ours" if mine else "theirs")
        doc = o if side == "ours" else t
        fields = _fields(doc.blocks[number])
        entry = _entry(doc.blocks[number])
        new_id = TaskId(free, entry.id.prefix)
        link = _renumbered_link(fields["link"], number, new_id, entry.title)
        doc.renumber(number, free, _render({**fields, "id": str(new_id), "link": link}))
        done.append(
            Renumbering(
                entry.id,
                new_id,
                entry.title,
                side,
                resolve_link(fields["link"]),
                resolve_link(link),
            )
        )
        free += 1
    return done


def with_number(text: str, moved: Renumbering) -> str | None:
    """``text`` with the task a merge renumbered given its new id (and its link's file name
    renamed), when ``text`` still has that task under its old id: the same title or the same
    spec file. Unchanged when it does not; None when it does but another task has the new id
    there (the move cannot be made in this text)."""
    old, new = moved.old.number, moved.new
    index = Index.parse(text)
    try:
        entry = index.find(TaskId(old))
    except TaskSyncError:
        return text
    if entry.title != moved.title and (moved.old_path is None or entry.spec_path != moved.old_path):
        return text  # another task holds the old id here: the one that kept it
    try:
        index.find(new)
    except TaskNotFound:
        pass
    except TaskSyncError:
        return None
    else:
        return None
    start = entry.offset
    end = text.find("\n", start)
    end = len(text) if end < 0 else end + 1
    fields = _fields(text[start:end])
    link = _renumbered_link(fields["link"], old, new, entry.title)
    return text[:start] + _render({**fields, "id": str(new), "link": link}) + text[end:]


def renumbered_text(text: str, numbers: dict[int, int], *, relink: bool) -> str:
    """``text`` with each task whose id number is a key of ``numbers`` given the number it
    maps to (its id style kept); with ``relink`` its link's file name follows, else the link
    stays as written. Lines outside tasks and every other byte are kept."""
    if not numbers:
        return text
    kinds: dict[str, int] = {}
    doc = _Doc(text, kinds, _line_ending(text, text, text))
    out: list[str] = []
    for token in doc.tokens:
        if type(token) is str:
            out.append(token)
            continue
        number = int(token)
        block = doc.blocks[number]
        new = numbers.get(number)
        if new is None or new == number:
            out.append(block)
            continue
        out.append(_with_id(block, number, new, relink=relink))
    joined = "".join(out)
    if not doc.final_newline and joined.endswith("\n"):
        joined = joined[:-2] if joined.endswith("\r\n") else joined[:-1]
    return joined


_ID_TEXT = re.compile(r" \[(md#|#)([0-9]{1,18})\]\(")


def _with_id(block: str, number: int, new: int, *, relink: bool) -> str:
    """``block`` with its task's id (the last id link a ")" follows, as parse_task_line reads
    it) written as ``new`` in the same style, and with ``relink`` its link's file name too.
    String surgery on the one line: a merge rewrites thousands of these."""
    end = block.find("\n")
    line = block if end < 0 else block[:end]
    close = line.rfind(")")
    found = None
    for match in _ID_TEXT.finditer(line, 5, close):
        if int(match.group(2)) == number and line.find(")", match.end()) >= 0:
            found = match
    if found is None:  # pragma: no cover - the block is a task line with that id
        raise AssertionError(line)
    new_id = TaskId(new, found.group(1))
    link_end = line.find(")", found.end())
    link = line[found.end() : link_end]
    if relink:
        link = _relinked(link, new_id)
    head = f"{line[: found.start()]} [{new_id}]({link}"
    return head + line[link_end:] + block[len(line) :]


def task_blocks(text: str) -> dict[int, str]:
    """The id number → task line and description of every task in ``text`` (the first of a
    repeated id)."""
    return _Doc(text, {}, _line_ending(text, text, text)).blocks


def _relinked(link: str, new: TaskId) -> str:
    """``link`` naming ``new``'s number where its file name starts with another number."""
    head, slash, name = link.rpartition("/")
    match = _LEADING_NUMBER.match(name)
    if match is None or int(match.group(1)) == new.number:
        return link
    return f"{head}{slash}{new.digits}{name[match.end() :]}"


_LEADING_NUMBER = re.compile(r"0*([0-9]+)")


def _renumbered_link(link: str, old: int, new: TaskId, title: str) -> str:
    """``link`` with the id in its file name replaced; a fresh name when it holds no id."""
    head, slash, name = link.rpartition("/")
    match = _LEADING_NUMBER.match(name)
    if match is not None and int(match.group(1)) == old:
        return f"{head}{slash}{new.digits}{name[match.end() :]}"
    return f"{head}{slash}{new.digits}-{slugify(title)}.md"


# -- fields ---------------------------------------------------------------------------------------


def _merge_tasks(b: _Doc, o: _Doc, t: _Doc, conflicts: list[Conflict]) -> dict[int, str]:
    """Number → merged block of every task that survives the merge."""
    merged: dict[int, str] = {}
    for number in o.blocks.keys() | t.blocks.keys():
        mine, yours, was = o.blocks.get(number), t.blocks.get(number), b.blocks.get(number)
        if mine is not None and mine == yours:
            merged[number] = mine
        elif mine is None or yours is None:
            kept = yours if mine is None else mine
            assert kept is not None  # noqa: S101 - not both None: they differ
            if was is None:
                merged[number] = kept  # created on one side
            elif kept != was:
                merged[number] = kept  # deleted on one side, changed on the other: kept
                conflicts.append(
                    Conflict(
                        _task_id(kept),
                        "deleted",
                        _line(was),
                        None if mine is None else _line(mine),
                        None if yours is None else _line(yours),
                        _line(kept),
                    )
                )
            # else deleted on one side and untouched on the other: gone
        elif mine == was:
            merged[number] = yours
        elif yours == was:
            merged[number] = mine
        else:
            merged[number] = _merge_fields(was, mine, yours, conflicts)
    return merged


def _merge_fields(was: str | None, mine: str, yours: str, conflicts: list[Conflict]) -> str:
    o, t = _fields(mine), _fields(yours)
    b = _fields(was) if was is not None else dict.fromkeys(o, "\0")
    out: dict[str, str] = {}
    found: list[tuple[str, str, str, str, str]] = []
    for name in (*FIELDS, "eol"):
        vb, vo, vt = b[name], o[name], t[name]
        if name == "status" and vb != "\0":  # x and X are one status: compare statuses
            vb, vo, vt = (_canonical(v, vo, vt) for v in (vb, vo, vt))
        if vt in (vo, vb):
            out[name] = vo
        elif vo == vb:
            out[name] = vt
        else:
            out[name] = _winner(name, vo, vt)
            if name != "eol" and not _same_status(name, vo, vt):
                found.append((name, vb, vo, vt, out[name]))
    task_id = _task_id(_render(out))
    for name, vb, vo, vt, kept in found:
        show = _status_name if name == "status" else _as_is
        conflicts.append(
            Conflict(
                task_id, name, None if vb == "\0" else show(vb), show(vo), show(vt), show(kept)
            )
        )
    if out == o:
        return mine
    if out == t:
        return yours
    return _render(out)


def _canonical(checkbox: str, ours: str, theirs: str) -> str:
    """A checkbox as one side wrote its status: X stands for x unless a side wrote X."""
    if checkbox in "xX":
        return "X" if "X" in (ours, theirs) and "x" not in (ours, theirs) else "x"
    return checkbox


def _winner(name: str, ours: str, theirs: str) -> str:
    if name == "status":
        rank_o = STATUS_RANK[_status(ours)]
        rank_t = STATUS_RANK[_status(theirs)]
        if rank_o != rank_t:
            return ours if rank_o > rank_t else theirs
        return "x" if "x" in (ours, theirs) else min(ours, theirs)  # DONE written as x
    return max(ours, theirs)


def _status(checkbox: str) -> Status:
    status = Status.from_checkbox(checkbox)
    if status is None:  # pragma: no cover - blocks hold known checkboxes only
        raise AssertionError(checkbox)
    return status


def _same_status(name: str, ours: str, theirs: str) -> bool:
    return name == "status" and _status(ours) is _status(theirs)


def _status_name(checkbox: str) -> str:
    return _status(checkbox).value


def _as_is(value: str) -> str:
    return value


def _task_id(block: str) -> TaskId:
    return _entry(block).id


def _line(block: str) -> str:
    """A task as a record shows it: its line and description, without the last line ending."""
    return block.removesuffix("\n").removesuffix("\r")


def _conflict_key(conflict: Conflict) -> tuple[int, str, str]:
    number = -1 if conflict.task is None else conflict.task.number
    return number, conflict.field, conflict.kept or ""


# -- the text -------------------------------------------------------------------------------------


def _assemble(
    tokens: list[Token],
    merged: dict[int, str],
    docs: tuple[_Doc, _Doc, _Doc],
    conflicts: list[Conflict],
) -> str:
    """The merged text: each surviving task once, where the merged order puts it."""
    out: list[str] = []
    at: dict[int, int] = {}  # number → its place in out
    twice: list[int] = []
    for token in tokens:
        if type(token) is str:
            out.append(token)
        elif token in merged:
            if token in at:
                twice.append(token)
            else:
                at[token] = len(out)
                out.append(merged[token])
    if twice:  # moved to different places on both sides: the first place stands
        places = [_Places.of_doc(doc) for doc in docs]
        kept = _Places.of_output(tokens, merged)
        for number in twice:
            base, mine, yours = (p.of(number) for p in places)
            if mine != yours:
                task = _task_id(merged[number])
                conflicts.append(Conflict(task, "position", base, mine, yours, kept.of(number)))
    missing = [n for n in merged if n not in at]
    if missing:
        out = _put_back(out, at, missing, merged, docs[1:])
    return "".join(out)


def _put_back(
    out: list[str],
    at: dict[int, int],
    missing: list[int],
    merged: dict[int, str],
    sides: tuple[_Doc, _Doc],
) -> list[str]:
    """``out`` with the tasks one side deleted and the other changed put back where the
    changing side has them (see :func:`_place_back`)."""
    tasks = set(at.values())
    first = min(tasks, default=len(out))
    inserts: dict[int, list[tuple[int, list[str]]]] = {}
    wanted = set(missing)
    for side in sides:
        before = -1  # the last token so far that is a task out has
        for i, token in enumerate(side.tokens):
            if type(token) is not int:
                continue
            if token in wanted and (side is sides[0] or token not in sides[0].blocks):
                place, after = _place_back(
                    side.tokens, (before, i), out, at=at, tasks=tasks, first=first
                )
                inserts.setdefault(place, []).append((i, [merged[token], *after]))
            elif token in at:
                before = i
    rebuilt: list[str] = []
    for k in range(len(out) + 1):
        for _, piece in sorted(inserts.get(k, ()), key=lambda item: item[0]):
            rebuilt.extend(piece)
        if k < len(out):
            rebuilt.append(out[k])
    return rebuilt


def _place_back(
    tokens: list[Token],
    span: tuple[int, int],
    out: list[str],
    *,
    at: dict[int, int],
    tasks: set[int],
    first: int,
) -> tuple[int, list[str]]:
    """Where in ``out`` the task at ``tokens[i]`` goes, and the blank lines to put after it.

    After the nearest task before it that ``out`` has, and after the lines between the two
    that the merge kept (a heading, say); followed by the blank lines that follow it on its
    side when the next thing in ``out`` is a task, so the file's spacing holds. ``span`` is
    where that nearest task is in ``tokens`` (-1: none) and where the task is; ``first`` is
    where the first task of ``out`` is.
    """
    j, i = span
    if j < 0:
        place = first
    else:
        place = at[int(tokens[j])] + 1
        for line in (token for token in tokens[j + 1 : i] if type(token) is str):
            k = place
            while k < len(out) and k not in tasks and out[k] != line:
                k += 1
            if k >= len(out) or k in tasks:
                break
            place = k + 1
    after: list[str] = []
    if place < len(out) and place in tasks:
        for token in tokens[i + 1 :]:
            if type(token) is not str or token.strip():
                break
            after.append(token)
    return place, after


class _Places:
    """Where each task stands in one order of tasks: "first" or "after #NNN"."""

    def __init__(self, order: list[int], blocks: dict[int, str]) -> None:
        self._before = {n: (order[i - 1] if i else None) for i, n in enumerate(order)}
        self._blocks = blocks

    @classmethod
    def of_doc(cls, doc: _Doc) -> _Places:
        return cls(doc.order(), doc.blocks)

    @classmethod
    def of_output(cls, tokens: list[Token], merged: dict[int, str]) -> _Places:
        seen: set[int] = set()
        order = []
        for token in tokens:
            if type(token) is int and token in merged and token not in seen:
                seen.add(token)
                order.append(token)
        return cls(order, merged)

    def of(self, number: int) -> str | None:
        if number not in self._before:
            return None
        before = self._before[number]
        return "first" if before is None else f"after {_task_id(self._blocks[before])}"
