"""One writer process of the stress test: a seeded mix of creates and status changes.

Usage: ``python stress_writer.py PATH NAME SEED COUNT``. Opens the task store at PATH, prints
``ready``, waits for a line on stdin, runs COUNT operations and prints one JSON object: the wall
clock times it started and finished, and a record per operation: what it asked for and the
commit the store said it made (None for a no-op or a refused precondition).
"""

from __future__ import annotations

import json
import random
import sys
import time

from tasksync import PreconditionFailed, Status, TaskStore

STATUSES = [status.value for status in Status]


def run(
    path: str, name: str, seed: int, count: int, times: dict[str, float]
) -> list[dict[str, str | None]]:
    store = TaskStore.open(path)
    rng = random.Random(seed)
    print("ready", flush=True)
    sys.stdin.readline()
    times["started"] = time.time()
    records: list[dict[str, str | None]] = []
    for n in range(count):
        if rng.random() < 0.3:
            title = f"{name} task {n}"
            status = rng.choice(STATUSES)
            task = store.create(title, status=status)
            if task.title != title or task.status.value != status:
                raise AssertionError(f"create returned {task!r} for {title!r} {status}")
            records.append(
                {
                    "op": "create",
                    "id": str(task.id),
                    "title": title,
                    "status": status,
                    "expect": None,
                    "commit": store.last_commit,
                }
            )
            continue
        known = store.list(include_done=True)
        target = rng.choice(known)
        status = rng.choice(STATUSES)
        expect = target.status.value if rng.random() < 0.3 else None
        try:
            task = store.set_status(target.id, status, expect=expect)
        except PreconditionFailed:
            commit = None
        else:
            if task.status.value != status:
                raise AssertionError(f"set_status returned {task!r} for {status}")
            commit = store.last_commit
        records.append(
            {
                "op": "set-status",
                "id": str(target.id),
                "title": None,
                "status": status,
                "expect": expect,
                "commit": commit,
            }
        )
    return records


def main(argv: list[str]) -> int:
    path, name, seed, count = argv[1], argv[2], int(argv[3]), int(argv[4])
    times: dict[str, float] = {}
    records = run(path, name, seed, count, times)
    json.dump({**times, "finished": time.time(), "records": records}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
