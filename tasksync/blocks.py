"""The task blocks of successive versions of tasks.md, for naming what each version changed.

:class:`TaskBlocks` reads a version's task blocks (task line and description) as
:meth:`Index.from_lines <tasksync.markdown.Index.from_lines>` reads them, classifying each
distinct line once, so reading a long history of one file costs little more than its changed
lines. ``git tasks migrate`` names with it the tasks each imported state changed. Pure.
"""

from __future__ import annotations

from .markdown import BULLET, FENCE, TASK, line_kind, parse_task_line, resolve_link, split_lines
from .model import TaskId


class TaskBlocks:
    """A reader of task blocks that remembers every line it classified."""

    def __init__(self) -> None:
        self._kinds: dict[str, tuple[int, int]] = {}
        self._heads: dict[str, tuple[TaskId, str | None]] = {}

    def blocks(self, text: str) -> dict[int, list[str]]:
        """Id number → its task blocks in file order (several for a repeated id)."""
        kinds = self._kinds
        out: dict[int, list[str]] = {}
        fenced = False
        number = 0  # the task whose description lines may follow (0: none)
        block: list[str] = []
        for line in split_lines(text):
            kind = kinds.get(line)
            if kind is None:
                kind = kinds[line] = line_kind(line)
            code = kind[0]
            if number:
                if code == BULLET:
                    block.append(line)
                    continue
                out.setdefault(number, []).append("".join(block))
                number = 0
            if code == FENCE:
                fenced = not fenced
            elif code == TASK and not fenced:
                number, block = kind[1], [line]
        if number:
            out.setdefault(number, []).append("".join(block))
        return out

    def head(self, block: str) -> tuple[TaskId, str | None]:
        """The id of a task block and the spec path its link names."""
        line = block.split("\n", 1)[0].rstrip("\r")
        found = self._heads.get(line)
        if found is None:
            parsed = parse_task_line(line)
            assert parsed is not None  # noqa: S101 - a block starts with a task line
            found = self._heads[line] = (parsed[2], resolve_link(parsed[3]))
        return found

    def changed(
        self, old: dict[int, list[str]], new: dict[int, list[str]], specs: set[str]
    ) -> tuple[str, ...]:
        """The ids whose task line, description or spec file differs between two versions."""
        numbers = {
            number for number in old.keys() | new.keys() if old.get(number) != new.get(number)
        }
        if specs:
            for blocks in (new, old):
                for number, found in blocks.items():
                    if any(self.head(block)[1] in specs for block in found):
                        numbers.add(number)
        names = {}
        for number in numbers:
            found = new.get(number) or old[number]
            names[number] = str(self.head(found[0])[0])
        return tuple(names[number] for number in sorted(numbers))
