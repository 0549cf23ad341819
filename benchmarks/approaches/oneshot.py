"""One operation by a fresh process: ``python -m approaches.oneshot DESIGN ROOT TASK CHAR``.

Imports the design, opens its backend, sets task TASK's checkbox to CHAR, closes and exits:
what a command-line entry point of the design would do (a design's server, if it has one, is
already running).
"""

from __future__ import annotations

import sys
from pathlib import Path

from approaches import design


def main(argv: list[str]) -> None:
    key, root, task, char = argv
    backend = design(key).open(Path(root))
    backend.set_status(int(task), char)
    backend.close()


if __name__ == "__main__":
    main(sys.argv[1:])
