"""A reader in another workspace: ``python -m approaches.reader DESIGN ROOT VARIANT TIMEOUT``.

Opens the design's reader VARIANT (one of its ``readers``) and prints ``ready``. Then, for each
line ``TASK CHAR`` on its standard input: gets ready to see the write (``arm``), prints
``armed``, waits until it sees task TASK's checkbox be CHAR and prints the monotonic clock (ns)
at that moment, or ``none`` when it did not within TIMEOUT seconds. An empty line ends it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from approaches import design


def main(argv: list[str]) -> None:
    key, root, variant, timeout = argv
    reader = design(key).reader(Path(root), variant)
    print("ready", flush=True)
    for line in sys.stdin:
        request = line.rstrip("\n")
        if not request:
            break
        task, char = request.split(" ", 1)  # the char may be a space
        reader.arm(int(task), char)
        print("armed", flush=True)
        seen = reader.wait_for(int(task), char, float(timeout))
        print("none" if seen is None else seen, flush=True)
    reader.close()


if __name__ == "__main__":
    main(sys.argv[1:])
