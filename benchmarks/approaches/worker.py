"""A writer process: ``python -m approaches.worker DESIGN ROOT TASKS CHAR``.

Opens the design's backend, prints ``ready``, waits for a line on its standard input, then sets
the checkbox of each task of the comma-separated TASKS to CHAR, one after another, and prints
one JSON line: the monotonic clock at the start and end, and per operation the task, whether
the writer was told it succeeded, its latency in nanoseconds and the error it got, if any.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from approaches import design


def main(argv: list[str]) -> None:
    key, root, tasks, char = argv
    backend = design(key).open(Path(root))
    print("ready", flush=True)
    sys.stdin.readline()
    ops: list[tuple[int, bool, int, str]] = []
    started = time.monotonic_ns()
    for task in (int(t) for t in tasks.split(",")):
        before = time.perf_counter_ns()
        try:
            backend.set_status(task, char)
        except Exception as error:  # the writer is told the operation failed, and goes on
            elapsed = time.perf_counter_ns() - before
            ops.append((task, False, elapsed, f"{type(error).__name__}: {error}"[:300]))
        else:
            ops.append((task, True, time.perf_counter_ns() - before, ""))
    ended = time.monotonic_ns()
    backend.close()
    print(json.dumps({"started": started, "ended": ended, "ops": ops}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
