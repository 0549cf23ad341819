"""Disk used by the object store after many operations, with tasksync's packing on and off.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_disk.py            # 10,000 status changes at 1,000 tasks
    python benchmarks/bench_disk.py --quick    # 2,000

Every operation stores a whole new ``process/tasks.md`` blob (54 KiB at 1,000 tasks), two trees
and a commit. With ``tasks.autoPack`` on (the default), about one write in 64 looks at the loose
objects and, past git's ``gc.auto`` threshold, starts ``git gc --auto`` in the background
(tasksync/maintenance.py). The benchmark makes the same status changes in two stores built
alike, one with packing on and one with ``tasks.autoPack false``, and reports the bytes under
``.git/objects`` of each at the end (once any background gc has finished), and of the second
after one explicit ``git gc`` for comparison. Target: at most 50 MB with packing on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench_status_set import (
    build_store,
    layout,
    load,
    machine,
    machine_line,
    sealed_environment,
    take,
    write_result,
)

from tasksync import TaskStore

TASKS = 1_000
OPERATIONS = 10_000
QUICK_OPERATIONS = 2_000
TARGET_MB = 50.0
DEFAULT_OUT = Path("benchmarks/results/disk.json")


def used(objects: Path) -> int:
    """Bytes of the files under ``objects`` (apparent sizes)."""
    return sum(path.stat().st_size for path in objects.rglob("*") if path.is_file())


def loose(objects: Path) -> int:
    return sum(1 for folder in objects.iterdir() if len(folder.name) == 2 for _ in folder.iterdir())


def settle(git_dir: Path, timeout: float = 300.0) -> None:
    """Wait until no background gc holds the repository."""
    deadline = time.monotonic() + timeout
    while (git_dir / "gc.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def run_store(path: Path, operations: int, packing: bool) -> dict[str, object]:
    lay = layout(TASKS)
    build_store(path, lay)
    if not packing:
        subprocess.run(["git", "config", "tasks.autoPack", "false"], cwd=path, check=True)
    store = TaskStore.open(path)
    started = time.monotonic()
    for task, status in take(TASKS, operations):
        store.set_status(task, status)
    seconds = time.monotonic() - started
    settle(path / ".git")
    objects = path / ".git" / "objects"
    out: dict[str, object] = {
        "packing": packing,
        "operations": operations,
        "seconds": round(seconds, 1),
        "bytes": used(objects),
        "loose_objects": loose(objects),
        "packs": len(list((objects / "pack").glob("*.pack"))),
    }
    if not packing:
        subprocess.run(["git", "gc", "--quiet"], cwd=path, check=True)
        out["bytes_after_git_gc"] = used(objects)
    return out


def mb(value: object) -> str:
    return f"{int(str(value)) / 1e6:.1f} MB"


def run(args: argparse.Namespace) -> None:
    operations = QUICK_OPERATIONS if args.quick else OPERATIONS
    command = " ".join(["python", "benchmarks/bench_disk.py", *sys.argv[1:]])
    load_before = load()
    started = time.monotonic()
    with sealed_environment() as root:
        info = machine(sys.executable)
        on = run_store(root / "packing-on", operations, packing=True)
        off = run_store(root / "packing-off", operations, packing=False)
    seconds = time.monotonic() - started
    load_after = load()
    met = int(str(on["bytes"])) <= TARGET_MB * 1e6
    text = "\n".join(
        [
            "| packing | operations | objects on disk | loose objects | packs | time |",
            "|---|---:|---:|---:|---:|---:|",
            f"| on (default) | {operations:,} | {mb(on['bytes'])} "
            f"(target ≤ {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}) | "
            f"{on['loose_objects']:,} | {on['packs']} | {on['seconds']} s |",
            f"| off | {operations:,} | {mb(off['bytes'])} "
            f"({mb(off['bytes_after_git_gc'])} after one `git gc`) | "
            f"{off['loose_objects']:,} | {off['packs']} | {off['seconds']} s |",
        ]
    )
    print(text)
    print(
        f"\n{TASKS:,} tasks, status changes of neighbouring tasks. "
        + machine_line(info, seconds, load_before, load_after)
    )
    write_result(
        args.out,
        {
            "benchmark": "disk",
            "command": command,
            "mode": "quick" if args.quick else "full",
            "machine": info,
            "tasks": TASKS,
            "target_mb": TARGET_MB,
            "met": met,
            "packing_on": on,
            "packing_off": off,
            "table": text,
        },
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 operations, not 10,000")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
