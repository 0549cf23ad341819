"""Instructions per `status set`, tasksync against the git floor, counted by callgrind.

Wall-clock medians of sub-millisecond operations move by tens of percent on a shared or
virtual machine; instruction counts do not. This runs each operation under
``valgrind --tool=callgrind`` twice (after a warm-up, with ``--ops`` more operations the second
time), so the difference divided by ``--ops`` is the cost of one operation, and splits it by
the library the instructions ran in. Kernel time (file writes, fsync) is not counted: this
measures the work in user space, which is what code changes move.

    python benchmarks/bench_instructions.py            # 100 tasks, 100 operations
    python benchmarks/bench_instructions.py --tasks 1000 --ops 50

Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARMUP = 30

_CHILD = """
import sys
sys.path.insert(0, {here!r})
import bench_status_set as b
which, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with b.sealed_environment() as root:
    lay = b.layout(size)
    b.build_store(root / "store", lay)
    op = b.tasksync_op(root / "store") if which == "tasksync" else b.floor_op(root / "store", lay)
    steps = b.walk(size)
    for _ in range(count):
        op(*next(steps))
"""

# Which part of the process an instruction ran in, by the object file callgrind names.
_PARTS = (
    ("libgit2", re.compile(r"libgit2")),
    ("zlib", re.compile(r"libz\.")),
    ("python", re.compile(r"python|libpython|_pygit2|Python-")),
    ("libc", re.compile(r"libc\.so|libc-|ld-linux|/string/|/malloc/")),
    ("libcrypto", re.compile(r"libcrypto|libssl")),
)


def count(which: str, size: int, ops: int, out: Path) -> Counter[str]:
    """Instructions by part for ``ops`` operations (the warm-up included)."""
    script = out / "child.py"
    script.write_text(_CHILD.format(here=str(HERE)), encoding="utf-8")
    data = out / f"{which}.{ops}.callgrind"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={data}",
            sys.executable,
            str(script),
            which,
            str(size),
            str(ops),
        ],
        check=True,
        capture_output=True,
    )
    annotated = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(data)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    parts: Counter[str] = Counter()
    for line in annotated.splitlines():
        match = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if match is None or "PROGRAM TOTALS" in line:
            if match is not None:
                parts["total"] += int(match.group(1).replace(",", ""))
            continue
        where = match.group(2)
        name = next((part for part, pattern in _PARTS if pattern.search(where)), "other")
        parts[name] += int(match.group(1).replace(",", ""))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks in tasks.md (default 100)")
    parser.add_argument("--ops", type=int, default=100, help="operations measured (default 100)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="tasksync-instructions-") as name:
        out = Path(name)
        per_op: dict[str, Counter[str]] = {}
        for which in ("tasksync", "floor"):
            base = count(which, args.tasks, WARMUP, out)
            full = count(which, args.tasks, WARMUP + args.ops, out)
            per_op[which] = Counter(
                {k: (full[k] - base[k]) // args.ops for k in set(full) | set(base)}
            )
    names = ["total", "python", "libgit2", "zlib", "libc", "libcrypto", "other"]
    print(f"Instructions per status set, {args.tasks:,} tasks, {args.ops} operations")
    print()
    print("| part | tasksync | git floor | difference |")
    print("|---|---:|---:|---:|")
    for part in names:
        ours, floor = per_op["tasksync"][part], per_op["floor"][part]
        print(f"| {part} | {ours:,} | {floor:,} | {ours - floor:+,} |")
    # OpenSSL runs only while an interpreter starts (neither operation hashes or encrypts with
    # it: libgit2 has its own SHA-1), and its start-up cost varies between two runs, so it is
    # left out of the per-operation ratio.
    ours = per_op["tasksync"]["total"] - per_op["tasksync"]["libcrypto"]
    floor = per_op["floor"]["total"] - per_op["floor"]["libcrypto"]
    print()
    print(f"tasksync ÷ floor, user-space instructions without libcrypto: {ours / floor:.2f}×")


if __name__ == "__main__":
    main()
