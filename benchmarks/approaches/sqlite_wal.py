"""D: SQLite in WAL mode (the standard library's sqlite3), one row per task. A write is
``BEGIN IMMEDIATE``, one ``UPDATE``, ``COMMIT``; ``synchronous=NORMAL``, so a commit is not
flushed to disk (only checkpoints are), as tasksync does not fsync by default."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from approaches import Backend, Design, checkbox_offsets

if TYPE_CHECKING:
    from bench_status_set import Layout

BUSY_TIMEOUT = 300.0  # seconds a writer waits for the write lock


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Rows:
    def __init__(self, path: Path) -> None:
        self.db = connect(path)

    def set_status(self, task: int, char: str) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            changed = self.db.execute(
                "UPDATE task SET status = ? WHERE number = ?", (char, task)
            ).rowcount
            if changed != 1:
                raise KeyError(f"task #{task:03d} is not in the database")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def read(self) -> bytes:
        (head,) = self.db.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        rows = self.db.execute("SELECT status, rest FROM task ORDER BY position").fetchall()
        return bytes(head) + b"".join(f"- [{status}{rest}".encode() for status, rest in rows)

    def close(self) -> None:
        self.db.close()


class SqliteWal(Design):
    readers = ("query loop",)

    def setup(self, root: Path, lay: Layout) -> None:
        offsets = sorted(checkbox_offsets(lay.index).items(), key=lambda item: item[1])
        text = lay.index
        first = offsets[0][1] - 3
        rows = []
        for position, (number, at) in enumerate(offsets):
            end = text.find(b"\n", at) + 1 or len(text)
            rows.append((number, position, chr(text[at]), text[at + 1 : end].decode()))
        if sum(len(rest) + 4 for *_, rest in rows) != len(text) - first:
            raise ValueError("tasks.md has lines between tasks, which this prototype drops")
        db = connect(root / "tasks.db")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        db.execute(
            "CREATE TABLE task (number INTEGER PRIMARY KEY, position INTEGER NOT NULL,"
            " status TEXT NOT NULL, rest TEXT NOT NULL)"
        )
        db.execute("BEGIN")
        db.execute("INSERT INTO meta VALUES ('head', ?)", (text[:first],))
        db.executemany("INSERT INTO task VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        db.close()

    def open(self, root: Path) -> Backend:
        return Rows(root / "tasks.db")

    def final(self, root: Path) -> bytes:
        rows = Rows(root / "tasks.db")
        try:
            return rows.read()
        finally:
            rows.close()
