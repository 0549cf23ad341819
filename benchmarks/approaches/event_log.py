"""C: an append-only event log. A write is one ``O_APPEND`` write of one line ``TASK CHAR``
(a single ``write`` call of a few bytes, which the kernel appends whole); a reader keeps its
view of tasks.md and replays the events appended since it last looked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from approaches import Backend, Design, checkbox_offsets

if TYPE_CHECKING:
    from bench_status_set import Layout


class Log:
    def __init__(self, root: Path) -> None:
        self.log = root / "events.log"
        self.fd = os.open(self.log, os.O_WRONLY | os.O_APPEND)
        self.view = bytearray((root / "base.md").read_bytes())
        self.offsets = checkbox_offsets(bytes(self.view))
        self.replayed = 0  # bytes of the log already in the view

    def set_status(self, task: int, char: str) -> None:
        if task not in self.offsets:
            raise KeyError(f"task #{task:03d} is not in tasks.md")
        line = f"{task} {char}\n".encode("ascii")
        if os.write(self.fd, line) != len(line):
            raise OSError(f"short append to {self.log}")

    def read(self) -> bytes:
        with self.log.open("rb") as handle:
            handle.seek(self.replayed)
            new = handle.read()
        complete = new[: new.rfind(b"\n") + 1]  # a line being appended right now waits
        for event in complete.splitlines():
            task, char = event[: event.index(b" ")], event[-1]  # the char may be a space
            self.view[self.offsets[int(task)]] = char
        self.replayed += len(complete)
        return bytes(self.view)

    def close(self) -> None:
        os.close(self.fd)


class EventLog(Design):
    readers = ("replay loop",)

    def setup(self, root: Path, lay: Layout) -> None:
        (root / "base.md").write_bytes(lay.index)
        (root / "events.log").write_bytes(b"")

    def open(self, root: Path) -> Backend:
        return Log(root)

    def final(self, root: Path) -> bytes:
        reader = Log(root)
        try:
            return reader.read()
        finally:
            reader.close()
