"""Semantic events: what changed, task by task, between two states of the tasks ref. Pure.

:func:`diff` compares two states given as readers (a path in the tasks tree → its text, None
when absent) and says what happened in the words of tasks: a task was created, changed status,
title, description or spec, or was deleted, and a merge recorded a conflict. A task is the
same task in both states when it has the same id number. :mod:`tasksync.watch` stamps each
event with the commit that produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import records
from .markdown import INDEX_PATH, RECORDS_PATH, Index, TaskLine
from .model import TaskId
from .records import Conflict
from .spec import context, new_spec, with_context, with_title

__all__ = ["KINDS", "Event", "conflict_text", "diff"]

#: Every kind of event, in the order a task's events come in.
KINDS = (
    "created",
    "renumbered",
    "status",
    "title",
    "description",
    "spec",
    "deleted",
    "conflict",
)

Reader = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Event:
    """One change of one task (or one conflict a merge recorded).

    ``before`` and ``after`` are the changed value on each side: the status name, the title,
    the description or the spec file's text. A created task has ``before`` None and its title
    as ``after``; a deleted one its title as ``before`` and ``after`` None; a conflict has
    ``before`` None and a one-line account of it as ``after``. ``title`` and ``status`` are the
    task's own in the state after (before, for a deleted task). The commit fields are empty
    when the event comes from :func:`diff` rather than from a watch.
    """

    kind: str  # one of KINDS
    task: TaskId | None  # None only for a conflict outside any task
    before: str | None
    after: str | None
    commit: str = ""  # the commit whose landing produced the event
    title: str = ""
    status: str = ""
    operation: str = ""  # the commit's Tasksync-Operation trailer (create, set-status, merge…)
    workspace: str = ""  # the commit's Tasksync-Workspace trailer
    author: str = ""  # "Name <email>"
    time: int = 0  # author time, seconds since the epoch
    offset_minutes: int = 0

    def to_json(self) -> dict[str, object]:
        """The JSON object of ``git tasks watch --json`` and of ``--exec``'s stdin."""
        return {
            "kind": self.kind,
            "task": None if self.task is None else str(self.task),
            "before": self.before,
            "after": self.after,
            "commit": self.commit,
            "title": self.title,
            "status": self.status,
            "operation": self.operation,
            "workspace": self.workspace,
            "author": self.author,
            "time": self.time,
            "offset_minutes": self.offset_minutes,
        }


def diff(before: Reader, after: Reader, changed: frozenset[str] | None = None) -> list[Event]:
    """The semantic events that take state ``before`` to state ``after``.

    The readers map a path in the tasks tree to its text (None when absent). ``changed``, when
    given, is the set of paths whose content differs, so files that did not change are never
    read: a status change in a 10,000-task store reads no spec file. Events come in the task
    order of ``after``'s index (for each task in the order of :data:`KINDS`), then deleted
    tasks in ``before``'s order, then new conflict records.
    """
    if changed is not None and not changed:
        return []
    new_text = after(INDEX_PATH) or ""
    if changed is not None and INDEX_PATH not in changed:
        old_text = new_text
    else:
        old_text = before(INDEX_PATH) or ""
    old_tasks, new_tasks = _keyed(old_text), _keyed(new_text)
    specs = None if changed is None else changed - {INDEX_PATH, RECORDS_PATH}
    names = None if specs is None else {path.rpartition("/")[2] for path in specs}
    only_records = old_tasks is new_tasks and names == set()
    events: list[Event] = []
    partner = _partners(old_tasks, new_tasks, before, after, changed)
    for key, new in () if only_records else new_tasks.items():
        old_key = partner.get(key)
        old = None if old_key is None else old_tasks[old_key]
        if old is None:
            events.append(_event("created", new, None, new.title))
            continue
        if old.id.number != new.id.number:  # a merge gave it another id
            events.append(_event("renumbered", new, str(old.id), str(new.id)))
        if (
            old.checkbox == new.checkbox
            and old.title == new.title
            and old.link == new.link
            and old.description == new.description
            and not _may_name(new.link, names)
        ):
            continue  # the same line, bullets and spec file: nothing to read
        events += _task_events(old, new, before, after, specs)
    kept = set(partner.values())
    for key, old in old_tasks.items():
        if key not in kept and not only_records:
            events.append(_event("deleted", old, old.title, None))
    if changed is None or RECORDS_PATH in changed:
        events += _conflict_events(before, after, new_tasks)
    return events


def conflict_text(conflict: Conflict) -> str:
    """One line saying what a merge kept and what it set aside."""
    if conflict.field == "spec":
        return (
            f"{conflict.task} spec: both sides changed the same lines; the file took the "
            "winning side's lines"
        )
    if conflict.field == "deleted":
        return f"{conflict.task}: deleted on one side, changed on the other; kept the change"
    where = "lines outside tasks" if conflict.task is None else f"{conflict.task} {conflict.field}"
    return f"{where}: kept {brief(conflict.kept)} (set aside: {brief(conflict.lost)})"


# -- one task -------------------------------------------------------------------------------------


def _may_name(link: str, names: set[str] | None) -> bool:
    """Whether a link can lead to a file of one of these names (None: any file)."""
    return names is None or any(name in link for name in names)


def _task_events(
    old: TaskLine, new: TaskLine, before: Reader, after: Reader, specs: frozenset[str] | None
) -> list[Event]:
    out = []
    if old.status is not new.status:
        out.append(_event("status", new, old.status.value, new.status.value))
    title_changed = old.title != new.title
    if title_changed:
        out.append(_event("title", new, old.title, new.title))
    old_path, new_path = old.spec_path, new.spec_path
    spec_may_differ = (old_path != new_path or specs is None or new_path in specs) and (
        old_path is not None or new_path is not None
    )
    if not spec_may_differ and old.description == new.description:
        return out  # same spec text, same bullets: same description
    old_spec = None if old_path is None else before(old_path)
    new_spec_text = None if new_path is None else after(new_path)
    old_description = _description(old, old_spec)
    new_description = _description(new, new_spec_text)
    description_changed = old_description != new_description
    if description_changed:
        out.append(_event("description", new, old_description, new_description))
    if old_spec != new_spec_text and not _explained(
        old_spec,
        new_spec_text,
        new,
        title_changed=title_changed or old.id.number != new.id.number,  # heading names the id
        description_changed=description_changed,
        description=new_description,
    ):
        out.append(_event("spec", new, old_spec, new_spec_text))
    return out


def _description(entry: TaskLine, spec: str | None) -> str:
    """What :attr:`Task.description` reads: the spec's ``## Context``, else the bullets."""
    found = None if spec is None else context(spec)
    return found if found is not None else "\n".join(entry.description)


def _explained(
    old: str | None,
    new: str | None,
    entry: TaskLine,
    *,
    title_changed: bool,
    description_changed: bool,
    description: str,
) -> bool:
    """Whether the spec's new text is its old text with only the new title and description put
    in, as an update writes it; then the title and description events say it all."""
    if new is None:
        return False
    if old is None:
        return new == new_spec(entry.id, entry.title, description)
    expected = old
    if title_changed:
        expected = with_title(expected, entry.id, entry.title)
    if description_changed and context(expected) != description:
        expected = with_context(expected, description)
    return expected == new


def _event(kind: str, entry: TaskLine, before: str | None, after: str | None) -> Event:
    return Event(kind, entry.id, before, after, title=entry.title, status=entry.status.value)


Key = tuple[int, int]  # (id number, rank among the tasks sharing it)


def _partners(
    old: dict[Key, TaskLine],
    new: dict[Key, TaskLine],
    before: Reader,
    after: Reader,
    changed: frozenset[str] | None,
) -> dict[Key, Key]:
    """Which task of ``old`` each task of ``new`` is (new key -> old key).

    A task created with an identity is the same task under whatever id a merge gave it (the
    records file maps ids to identities). Copies of a repeated id pair up by identical title
    and link first, then by their order. Everything else is the same task by its id.
    """
    out: dict[Key, Key] = {}
    taken: set[Key] = set()
    if changed is None or RECORDS_PATH in changed:
        was = {uid: n for n, uid in records.parse(before(RECORDS_PATH)).uids}
        for number, uid in records.parse(after(RECORDS_PATH)).uids:
            source = was.get(uid)
            if source is None or source == number or (number, 0) not in new:
                continue
            if (source, 0) in old and (source, 0) not in taken:
                out[number, 0] = (source, 0)
                taken.add((source, 0))
    repeated = {n for n, rank in (*old, *new) if rank > 0}
    for key in new:
        if key in out or key[0] in repeated:
            continue
        if key in old and key not in taken:
            out[key] = key
            taken.add(key)
    for number in sorted(repeated):
        olds = [k for k in old if k[0] == number and k not in taken]
        news = [k for k in new if k[0] == number and k not in out]
        for k in list(news):  # identical copies first
            same = next((o for o in olds if _same_line(old[o], new[k])), None)
            if same is not None:
                out[k] = same
                olds.remove(same)
                news.remove(k)
        for k, o in zip(news, olds, strict=False):  # then in order
            out[k] = o
    return out


def _same_line(one: TaskLine, other: TaskLine) -> bool:
    return one.title == other.title and one.link == other.link


@lru_cache(maxsize=8)
def _keyed(text: str) -> dict[tuple[int, int], TaskLine]:
    """The tasks of an index by (id number, how many earlier tasks share it), in file order.

    Files written by older tools can repeat an id; each copy is then matched by its rank.
    Cached: a watch compares each state with the next, so every index is parsed once.
    """
    seen: dict[int, int] = {}
    out = {}
    for entry in Index.parse(text).tasks:
        rank = seen.get(entry.id.number, 0)
        seen[entry.id.number] = rank + 1
        out[entry.id.number, rank] = entry
    return out


# -- conflicts ------------------------------------------------------------------------------------


def _conflict_events(
    before: Reader, after: Reader, tasks: dict[tuple[int, int], TaskLine]
) -> list[Event]:
    old = set(records.parse(before(RECORDS_PATH)).conflicts)
    out = []
    for conflict in records.parse(after(RECORDS_PATH)).conflicts:
        if conflict in old:
            continue
        text = conflict_text(conflict)
        entry = None if conflict.task is None else tasks.get((conflict.task.number, 0))
        title, status = ("", "") if entry is None else (entry.title, entry.status.value)
        out.append(Event("conflict", conflict.task, None, text, title=title, status=status))
    return out


def brief(value: str | None, width: int = 60) -> str:
    """A value on one short line: its first non-blank line, cut at ``width``."""
    lines = [line.strip() for line in (value or "").splitlines() if line.strip()]
    if not lines:
        return "nothing" if value is None else repr(value)
    more = len(lines) - 1
    text = lines[0] if not more else f"{lines[0]} (+{more} line{'s' if more > 1 else ''})"
    return text if len(text) <= width else text[: width - 1] + "…"
