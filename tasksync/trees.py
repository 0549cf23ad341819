"""Three-way merge of whole task trees: tasks.md, spec files and the merge records.

tasks.md goes through :func:`~tasksync.merge.merge3`. Spec files merge line by line through a
function the caller supplies (the store's, which is libgit2's merge); when both sides edited the
same lines, the file takes the winning side's version of those lines, stays free of conflict
markers, and both versions go into a conflict record for its task. A task renumbered by the
merge takes its spec file to the new name. Pure: the caller reads and writes git.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from . import records
from .errors import TaskSyncError
from .markdown import INDEX_PATH, Index, resolve_link
from .merge import VIRTUAL, Side, _relinked, merge3, renumbered_text, task_blocks, with_number
from .model import TaskId
from .records import RECORDS_PATH, Conflict, Renumbering
from .spec import with_title

Read = Callable[[str], "str | None"]
# A line merge of one file: base, ours, theirs, the side whose lines win where both sides
# changed the same ones (None: leave them marked) -> merged text and whether it was clean.
LineMerge = Callable[["str | None", str, str, "Side | None"], "tuple[str, bool]"]


class TreeSide(NamedTuple):
    """One side of a merge: the paths it changed against the base, and a reader for its files."""

    changed: frozenset[str]
    read: Read


class TreeMerge(NamedTuple):
    """What to write on top of ours; the conflicts and renumberings the merge produced."""

    index_text: str | None  # new tasks.md text, or None when ours' stands
    files: tuple[tuple[str, str | None], ...]  # other paths → new text, or None to remove
    conflicts: tuple[Conflict, ...]
    renumbered: tuple[Renumbering, ...]


def merge_trees(
    base: Read,
    ours: TreeSide,
    theirs: TreeSide,
    line_merge: LineMerge,
    *,
    renumber: Side | None = None,
) -> TreeMerge:
    """Merge ``theirs`` into ``ours`` (both descendants of ``base``); ``renumber`` as for
    :func:`~tasksync.merge.merge3`."""
    index_b = base(INDEX_PATH) or ""
    index_o = (ours.read(INDEX_PATH) or "") if INDEX_PATH in ours.changed else index_b
    index_t = (theirs.read(INDEX_PATH) or "") if INDEX_PATH in theirs.changed else index_b
    kept_b = records.parse(base(RECORDS_PATH))
    kept_o = records.parse(ours.read(RECORDS_PATH))
    kept_t = records.parse(theirs.read(RECORDS_PATH))
    real_o = index_o
    # Tasks created with an identity are matched by it, whatever ids the histories gave them.
    known = _Identities.of((index_b, index_o, index_t), (kept_b, kept_o, kept_t))
    if known is not None:
        index_b, index_o, index_t = known.virtual
    (index_b, index_o, index_t), moves = _renumbered_since(
        (index_b, index_o, index_t), (kept_b, kept_o, kept_t)
    )
    # The files as the merge sees them: renumbered specs under their new names.
    base_view = _View(base, ())
    views = {
        "ours": _View(ours.read, ours.changed, base_view),
        "theirs": _View(theirs.read, theirs.changed, base_view),
    }
    if known is not None:  # the base's first: the sides read their untouched files there
        known.move_specs((base_view, views["ours"], views["theirs"]))
    for who, moved in moves:
        (base_view if who == "base" else views[who]).move(moved)
    # Parsed once: each lookup in an index is then a map lookup, not a scan of its text.
    sides = {"ours": (Index.parse(index_o), ours), "theirs": (Index.parse(index_t), theirs)}

    def spec_of(side: Side, number: int) -> str | None:
        index, tree = sides[side]
        path = _spec_path(index, number)
        return None if path is None else tree.read(path)

    highest = max(kept_b.highest, kept_o.highest, kept_t.highest)
    if known is not None:  # ids identified tasks hold count as taken for new ones
        highest = max(highest, known.highest())
    merged = merge3(index_b, index_o, index_t, specs=spec_of, renumber=renumber, highest=highest)
    for moved in merged.renumbered:
        views[moved.side].move(moved)
    conflicts = [records.settled(c) for c in merged.conflicts]
    files: dict[str, str | None] = {}
    paths = (views["ours"].changed | views["theirs"].changed) - {INDEX_PATH, RECORDS_PATH}
    owners = _Owners(merged.text)
    for path in sorted(paths):
        was, mine, yours = (
            base_view.read(path),
            views["ours"].read(path),
            views["theirs"].read(path),
        )
        text, conflict = _merge_file(path, (was, mine, yours), line_merge, owners)
        if conflict is not None:
            conflicts.append(conflict)
        if text != ours.read(path):
            files[path] = text
    result, renumbered = merged.text, merged.renumbered
    kept = records.merge(kept_b, kept_o, kept_t)
    if known is not None:
        back = known.real(result, renumber=renumber, highest=highest)
        result = back.text
        renumbered = (*renumbered, *back.renumbered)
        conflicts = [back.conflict(c) for c in conflicts]
        back.rename(files)
        kept = kept.with_uids(back.uids)
    kept = kept.with_conflicts(tuple(conflicts)).with_renumbered(tuple(renumbered))
    text = records.render(kept)
    if text != ours.read(RECORDS_PATH):
        files[RECORDS_PATH] = text
    for path in [path for path, value in files.items() if value == ours.read(path)]:
        del files[path]
    return TreeMerge(
        result if result != real_o else None,
        tuple(sorted(files.items())),
        tuple(conflicts),
        tuple(renumbered),
    )


def _renumbered_since(
    texts: tuple[str, str, str], kept: tuple[records.Records, records.Records, records.Records]
) -> tuple[tuple[str, str, str], list[tuple[str, Renumbering]]]:
    """The three tasks.md texts with renumberings one side made since the base applied to the
    base and to a side that has not made them, and which of the three each was applied to:
    so the task that moved is matched under its new id everywhere, and the task that took its
    old id reads as the new task it is.

    Without this, two sides that each merged a third's task and renumbered it the same way
    would each see the base's task turned into a different one under the old id, and a merge
    of the two would lose one of those tasks.
    """
    out = {"base": texts[0], "ours": texts[1], "theirs": texts[2]}
    present = {who: set(task_blocks(text)) for who, text in out.items()}  # kept up to date
    moves: list[tuple[str, Renumbering]] = []
    seen = set(kept[0].renumbered)
    for moved in (*kept[1].renumbered, *kept[2].renumbered):
        if moved in seen:
            continue
        seen.add(moved)
        lacking = ["base"] + [
            who
            for who, side in (("ours", kept[1]), ("theirs", kept[2]))
            if moved not in side.renumbered
        ]
        changed = {
            who: with_number(out[who], moved) if moved.old.number in present[who] else out[who]
            for who in lacking
        }
        if any(text is None for text in changed.values()):
            continue  # not everywhere, then nowhere: a half-made move would mismatch tasks
        for who, text in changed.items():
            if text is not None and text != out[who]:
                out[who] = text
                present[who] = (present[who] - {moved.old.number}) | {moved.new.number}
                moves.append((who, moved))
    moves.sort(key=lambda move: move[0] != "base")
    return (out["base"], out["ours"], out["theirs"]), moves


def _merge_file(
    path: str,
    texts: tuple[str | None, str | None, str | None],
    line_merge: LineMerge,
    owners: _Owners,
) -> tuple[str | None, Conflict | None]:
    """One file's merged text (None: removed), and the conflict it leaves, if any."""
    was, mine, yours = texts
    if yours in (mine, was):
        text = mine
    elif mine == was:
        text = yours
    elif mine is None or yours is None:
        return (yours if mine is None else mine), None  # removed on one side, changed on other
    else:
        text, clean = line_merge(was, mine, yours, None)
        if clean:
            return text, None
        winner: Side = "ours" if mine > yours else "theirs"
        text, _ = line_merge(was, mine, yours, winner)
        won, lost = (mine, yours) if winner == "ours" else (yours, mine)
        return text, Conflict(owners.get(path), "spec", was, won, lost, text)
    if text is None and (mine, yours) != (None, None) and owners.get(path) is not None:
        # Removed on one side and untouched on the other: right when its task went, wrong
        # when the task survives (deleted on one side, changed on the other).
        return (mine if mine is not None else yours), None
    return text, None


class _Owners:
    """Which task links a spec path in the merged index, worked out on first use."""

    def __init__(self, index: str) -> None:
        self._index = index
        self._owners: dict[str, TaskId] | None = None

    def get(self, path: str) -> TaskId | None:
        if self._owners is None:
            self._owners = {}
            for entry in Index.parse(self._index).tasks:
                found = resolve_link(entry.link)
                if found is not None:
                    self._owners.setdefault(found, entry.id)
        return self._owners.get(path)


class _Back(NamedTuple):
    """A merged text taken back from creation identities to ids."""

    text: str
    renumbered: tuple[Renumbering, ...]
    moves: tuple[tuple[str, str, TaskId, str], ...]  # spec old path, new path, id, title
    uids: dict[int, str]
    ids: dict[int, int]  # stand-in number → id

    def rename(self, files: dict[str, str | None]) -> None:
        """Spec files merged under stand-in names put under their tasks' real ones."""
        for old_path, new_path, new_id, title in self.moves:
            spec = files.pop(old_path, None)
            if spec is not None:
                files[new_path] = with_title(spec, new_id, title)
        for path in [path for path in files if _STAND_IN_FILE.search(path)]:
            del files[path]  # the spec of a task the merge removed, under its stand-in name

    def conflict(self, conflict: Conflict) -> Conflict:
        """``conflict`` with stand-in numbers turned into the ids they became."""

        def real(value: str | None) -> str | None:
            if value is None:
                return None

            def number(found: str) -> int:
                return self.ids.get(int(found), int(found))

            value = _STAND_IN.sub(lambda m: str(TaskId(number(m[2]), m[1])), value)
            return _STAND_IN_NAME.sub(lambda m: f"/{TaskId(number(m[1])).digits}-", value)

        task = conflict.task
        if task is not None and task.number in self.ids:
            task = TaskId(self.ids[task.number], task.prefix)
        return Conflict(
            task,
            conflict.field,
            real(conflict.base),
            real(conflict.ours),
            real(conflict.theirs),
            real(conflict.kept),
        )


_STAND_IN = re.compile(r"(md#|#)([0-9]{16,18})")
_Move = tuple[str, str, TaskId, str]
_STAND_IN_FILE = re.compile(r"/0*[0-9]{16,18}[^/]*$")
_STAND_IN_NAME = re.compile(r"/([0-9]{16,18})-")


def _spec_moves(before: dict[int, str], after: dict[int, str], ids: dict[int, int]) -> list[_Move]:
    """The spec files of tasks whose id ``ids`` changes: (old path, new path, new id, title)."""
    moves: list[_Move] = []
    for old, new in ids.items():
        if old == new or old not in before or new not in after:
            continue
        was, now = Index.parse(before[old]).tasks[0], Index.parse(after[new]).tasks[0]
        if was.spec_path and now.spec_path and was.spec_path != now.spec_path:
            moves.append((was.spec_path, now.spec_path, now.id, now.title))
    return moves


class _Identities:
    """The tasks of the three texts that carry a creation identity, each given one stand-in
    number (from VIRTUAL up) in all three, so the merge matches them by identity."""

    def __init__(
        self,
        virtual: tuple[str, str, str],
        numbers: tuple[dict[str, int], dict[str, int], dict[str, int]],
        stand_in: dict[str, int],
    ) -> None:
        self.virtual = virtual
        self._numbers = numbers  # per text: identity → its id number there
        self._stand_in = stand_in
        # Per text: spec files moved to their stand-in names (old path, new path, id, title).
        self.moves: tuple[list[_Move], ...] = ((), (), ())  # type: ignore[assignment]

    def move_specs(self, views: tuple[_View, _View, _View]) -> None:
        for view, side_moves in zip(views, self.moves, strict=True):
            for move in side_moves:
                view.move_file(move)

    def highest(self) -> int:
        """The highest id an identified task has on any side."""
        return max((n for side in self._numbers for n in side.values()), default=0)

    @classmethod
    def of(
        cls,
        texts: tuple[str, str, str],
        kept: tuple[records.Records, records.Records, records.Records],
    ) -> _Identities | None:
        present = [task_blocks(text) for text in texts]
        if any(number >= VIRTUAL for blocks in present for number in blocks):
            return None  # ids that large are hand-written: match by id as before
        numbers = tuple(
            {uid: n for n, uid in side.uid_map().items() if n in blocks}
            for side, blocks in zip(kept, present, strict=True)
        )
        every = sorted({uid for side in numbers for uid in side})
        if not every:
            return None
        stand_in = {uid: VIRTUAL + rank for rank, uid in enumerate(every)}
        # Links and spec files take the stand-in number too, so a spec the histories keep
        # under different names (the task was renumbered in one) merges as one file.
        virtual = tuple(
            renumbered_text(text, {n: stand_in[uid] for uid, n in side.items()}, relink=True)
            for text, side in zip(texts, numbers, strict=True)
        )
        moves = tuple(
            _spec_moves(blocks, task_blocks(text), {n: stand_in[uid] for uid, n in side.items()})
            for blocks, text, side in zip(present, virtual, numbers, strict=True)
        )
        known = cls(
            (virtual[0], virtual[1], virtual[2]), (numbers[0], numbers[1], numbers[2]), stand_in
        )
        known.moves = moves
        return known

    def real(self, text: str, *, renumber: Side | None, highest: int) -> _Back:
        """The merged ``text`` with ids again: each task the id its sides agree on, else one
        of theirs by the merge's rule, else the next free one."""
        blocks = task_blocks(text)
        by_stand_in = {v: uid for uid, v in self._stand_in.items()}
        taken = {n for n in blocks if n < VIRTUAL}
        b, o, t = self._numbers
        # (id wanted, yields, block, stand-in, identity): with ``renumber`` naming a side, a
        # task of the other side that already has the id it asks for keeps it.
        wanted: list[tuple[int, int, str, int, str]] = []
        kept = {"ours": t, "theirs": o}.get(renumber or "", {})
        for v, block in blocks.items():
            uid = by_stand_in.get(v)
            if uid is None:
                continue
            asked = _wanted(b.get(uid), o.get(uid), t.get(uid), renumber)
            wanted.append((asked, 0 if kept.get(uid) == asked else 1, block, v, uid))
        free = max(highest, *taken, *o.values(), *t.values(), *b.values(), 0) + 1
        ids: dict[int, int] = {}
        uids: dict[int, str] = {}
        for asked, _, _, v, uid in sorted(wanted):
            number = asked
            if number < 1 or number in taken:  # another task has it: the next free one
                number, free = free, free + 1
            taken.add(number)
            ids[v] = number
            uids[number] = uid
        real_text = renumbered_text(text, ids, relink=True)
        moved: list[Renumbering] = []
        moves: list[tuple[str, str, TaskId, str]] = []
        final = task_blocks(real_text)
        for _, _, block, v, uid in wanted:
            new = ids[v]
            entry_old = Index.parse(block).tasks[0]
            entry_new = Index.parse(final[new]).tasks[0]
            old_path, new_path = entry_old.spec_path, entry_new.spec_path
            if old_path and new_path and old_path != new_path:
                moves.append((old_path, new_path, entry_new.id, entry_new.title))
            if new in (o.get(uid), t.get(uid)):
                continue  # one history has it there already, and recorded the move then
            for side, numbers in (("ours", o), ("theirs", t)):
                before = numbers.get(uid)
                if before is not None and before != new:
                    earlier = TaskId(before, entry_new.id.prefix)
                    moved.append(
                        Renumbering(
                            earlier,
                            entry_new.id,
                            entry_new.title,
                            side,
                            resolve_link(_relinked(entry_old.link, earlier)),
                            new_path,
                        )
                    )
        named = dict(ids)  # for records: tasks the merge removed keep the id they had
        for uid, v in self._stand_in.items():
            if v not in named:
                named[v] = o.get(uid) or t.get(uid) or b.get(uid) or 0
        return _Back(real_text, tuple(moved), tuple(moves), uids, named)


def _wanted(was: int | None, mine: int | None, yours: int | None, renumber: Side | None) -> int:
    """The id a task asks for after a merge, from its ids in the base and on the two sides."""
    if renumber == "ours" and yours is not None:
        return yours  # theirs keep their ids
    if renumber == "theirs" and mine is not None:
        return mine
    # A side that moved the task since the base knows better than one that did not (it
    # renumbered it when another task took its id); else the lower id.
    sides = [n for n in (mine, yours) if n is not None] or [was or 0]
    changed = [n for n in sides if n != was]
    return min(changed or sides)


class _View:
    """One side's files (or the base's) as the merge sees them: a renumbered task's spec under
    its new name, and a side's untouched files as the base view has them."""

    def __init__(self, read: Read, changed: Iterable[str], base: _View | None = None) -> None:
        self._read = read
        self._own = frozenset(changed)
        self._base = base
        self._moved: dict[str, str | None] = {}
        self.changed = set(self._own)

    def move(self, moved: Renumbering) -> None:
        if moved.old_path is None or moved.new_path is None:
            return
        self.move_file((moved.old_path, moved.new_path, moved.new, moved.title))

    def move_file(self, move: _Move) -> None:
        old_path, new_path, new_id, title = move
        if old_path == new_path:
            return
        # This side's own file (its tree has every path), not the base view's, which may
        # have moved that name away already.
        text = self._moved[old_path] if old_path in self._moved else self._read(old_path)
        # The old name as if never touched here (the base has moved it too, or never had it).
        if old_path not in self._moved or self._moved[old_path] is not None:
            self._moved[old_path] = self._base.read(old_path) if self._base is not None else None
        self._moved[new_path] = None if text is None else with_title(text, new_id, title)
        self.changed |= {old_path, new_path}

    def read(self, path: str) -> str | None:
        if path in self._moved:
            return self._moved[path]
        if self._base is None or path in self._own:
            return self._read(path)
        return self._base.read(path)


def _spec_path(index: Index, number: int) -> str | None:
    try:
        return index.find(TaskId(number)).spec_path
    except TaskSyncError:  # no such task, or two with that id
        return None
