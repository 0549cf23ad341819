"""One writer process of the crash harness: a seeded mix of task operations, journaled.

Usage: ``python crash_writer.py PATH NAME SEED COUNT``. Opens the task store at PATH (a worktree
of its own, so its commits carry ``Tasksync-Workspace: NAME``) and runs COUNT operations
through the public API: creates with and without a status and description, status changes
(some with ``expect``), title, description and whole-spec updates, and deletes.

Its journal is its standard output, one JSON object per line, each line written with a single
``write(2)`` no longer than ``PIPE_BUF``, so a SIGKILL never leaves half a line:

- ``{"m": "ready"}`` once the store is open;
- ``{"m": "intent", "n": N, "op": ..., ...}`` with every argument, before the call;
- then one of ``{"m": "ack", "n": N, "commit": C, "task": ID}`` once the call has returned
  (``commit`` is None for a no-op), ``{"m": "refused", "n": N, "error": NAME}`` (the task was
  gone, or ``expect`` did not hold) or ``{"m": "error", "n": N, "error": TEXT}`` (any other
  tasksync error: the harness counts it as a failure);
- ``{"m": "paused", "n": N, "at": WHERE}`` when an armed pause point is reached;
- ``{"m": "done"}`` at the end.

An operation is acknowledged when its ``ack`` line is written: a process killed after the call
returned and before that write acknowledged nothing, exactly as a command killed before it
printed its result told its caller nothing.

Standard input arms the two pause points, which the harness uses to kill at chosen instants:
a line ``window`` pauses the next write inside its compare-and-swap window (objects written,
ref not yet moved, the writer lock held; the ``before_swap`` seam of the store's transactor),
``landed`` pauses it after its swap landed and before the call returns (still holding the
lock; the transactor's ``pack_sample`` seam), ``disarm`` takes an armed point back, and ``go``
lets a paused write go on.
"""

from __future__ import annotations

import json
import os
import random
import select
import sys
import threading
from collections.abc import Callable

from tasksync import PreconditionFailed, Status, TaskNotFound, TaskStore, TaskSyncError

STATUSES = [status.value for status in Status]
# Weights of the operations a writer picks from (a create when it knows no task).
MIX = {
    "create": 18,
    "create-status": 12,
    "set-status": 30,
    "title": 10,
    "description": 10,
    "spec": 6,
    "delete": 8,
}
REFRESH_EVERY = 16  # operations between two listings of the tasks a writer targets

Message = dict[str, object]


def emit(message: Message) -> None:
    """One journal line in one write: whole or not at all when the process is killed."""
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    if len(data) > select.PIPE_BUF:
        raise ValueError(f"journal line of {len(data)} bytes: over PIPE_BUF")
    os.write(1, data)


class Pauses:
    """The pause points the harness arms through standard input."""

    def __init__(self) -> None:
        self.armed: str | None = None
        self.number = 0  # the operation under way
        self._go = threading.Event()
        self._guard = threading.Lock()
        threading.Thread(target=self._listen, name="crash-writer-stdin", daemon=True).start()

    def _listen(self) -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "go":
                self._go.set()
            elif word in ("window", "landed", "disarm"):
                with self._guard:
                    self.armed = None if word == "disarm" else word

    def point(self, where: str) -> None:
        """Pause here until ``go`` when this point is armed (once per arming)."""
        with self._guard:
            if self.armed != where:
                return
            self.armed = None
            self._go.clear()
        emit({"m": "paused", "n": self.number, "at": where})
        self._go.wait()


def install(store: TaskStore, pauses: Pauses) -> None:
    """Put the pause points on the store's transactor seams (test seams, not public API)."""
    transactor = store._tx
    transactor.before_swap = lambda: pauses.point("window")
    sample: Callable[[], bool] = transactor.pack_sample

    def after_landing() -> bool:
        pauses.point("landed")
        return sample()

    transactor.pack_sample = after_landing
    if transactor.pack_threshold <= 0:
        raise SystemExit("the landed pause point needs tasks.autoPack on (gc.auto > 0)")


def intent(rng: random.Random, name: str, n: int, known: dict[str, str]) -> Message:
    """The next operation, with every argument the harness needs to replay it."""
    kinds = list(MIX)
    kind = rng.choices(kinds, weights=[MIX[k] for k in kinds])[0] if known else "create"
    if kind.startswith("create"):
        message: Message = {"op": "create", "title": f"{name} t{n}"}
        if kind == "create-status":
            message["status"] = rng.choice(STATUSES)
        if rng.random() < 0.3:
            message["description"] = f"{name} about t{n}"
        return message
    task = rng.choice(sorted(known))
    if kind == "set-status":
        expect = known[task] if rng.random() < 0.3 else None
        return {"op": "set-status", "task": task, "status": rng.choice(STATUSES), "expect": expect}
    if kind == "title":
        return {"op": "update", "task": task, "title": f"{name} u{n}"}
    if kind == "description":
        return {"op": "update", "task": task, "description": f"{name} d{n}"}
    if kind == "spec":
        spec = f"# Task: {name} spec {n}\n\n## Context\n\n{name} s{n}\n\n## Notes\n\nkept\n"
        return {"op": "update", "task": task, "spec": spec}
    return {"op": "delete", "task": task}


def perform(store: TaskStore, message: Message) -> tuple[str, str]:
    """Run one operation; (task id, status) of the task it returned."""
    op = message["op"]

    def text(key: str) -> str | None:
        value = message.get(key)
        return None if value is None else str(value)

    if op == "create":
        task = store.create(
            str(message["title"]),
            description=text("description") or "",
            status=text("status") or Status.TODO,
        )
        if task.title != message["title"] or task.status.value != (text("status") or "TODO"):
            raise AssertionError(f"create returned {task!r} for {message!r}")
    elif op == "set-status":
        task = store.set_status(str(message["task"]), str(message["status"]), text("expect"))
        if task.status.value != message["status"]:
            raise AssertionError(f"set_status returned {task!r} for {message!r}")
    elif op == "update":
        task = store.update(
            str(message["task"]),
            title=text("title"),
            description=text("description"),
            spec=text("spec"),
        )
    else:
        task = store.delete(str(message["task"]))
    return str(task.id), task.status.value


def run(path: str, name: str, seed: int, count: int) -> None:
    store = TaskStore.open(path)
    pauses = Pauses()
    install(store, pauses)
    rng = random.Random(seed)
    known: dict[str, str] = {}
    emit({"m": "ready"})
    for n in range(count):
        if n % REFRESH_EVERY == 0 or not known:
            listed = store.list(include_done=True, descriptions=False)
            known = {str(task.id): task.status.value for task in listed}
        message = intent(rng, name, n, known)
        pauses.number = n
        emit({"m": "intent", "n": n, **message})
        try:
            task, status = perform(store, message)
        except (TaskNotFound, PreconditionFailed) as error:
            known.pop(str(message.get("task")), None)
            emit({"m": "refused", "n": n, "error": type(error).__name__})
            continue
        except TaskSyncError as error:
            emit({"m": "error", "n": n, "error": f"{type(error).__name__}: {error}"[:1000]})
            continue
        emit({"m": "ack", "n": n, "commit": store.last_commit, "task": task})
        if message["op"] == "delete":
            known.pop(task, None)
        else:
            known[task] = status
    emit({"m": "done"})


def main(argv: list[str]) -> int:
    path, name, seed, count = argv[1], argv[2], int(argv[3]), int(argv[4])
    run(path, name, seed, count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
