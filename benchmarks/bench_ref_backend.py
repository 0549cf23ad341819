"""The cost of moving refs through git: ``status set`` with the libgit2 and the git ref backend.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_ref_backend.py            # 1,000 writes, under a minute
    python benchmarks/bench_ref_backend.py --quick    # 100 writes
    python benchmarks/bench_ref_backend.py --sizes 100,1000,10000

A reftable repository's refs go through the git CLI (``git for-each-ref`` to read the tip,
``git update-ref --stdin`` for the compare-and-swap: two processes a write); every other
repository's through libgit2. At 1,000 tasks (by default) it builds two stores alike and opens
one with the git backend forced (the test seam of ``tasksync.store.refs``, as the tests use it:
this git need not create reftable repositories), then measures side by side, alternating step
by step so both see the same machine load:

1. a write: ``TaskStore.set_status`` through one long-lived handle of each store;
2. a read of the tip alone: ``TaskStore.head()``.

The difference is the price of the two git processes (and of the one read). Packing is off in
both stores. Prints a markdown table and writes a JSON file; nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_status_set import (
    Plan,
    Session,
    Stats,
    each_size,
    find_cli,
    layout,
    ms,
    parse_sized_args,
    sealed_environment,
    side_by_side_cells,
    side_by_side_plans,
    stats,
    unpacked_store,
    writes_side_by_side,
)

from tasksync import TaskStore
from tasksync.store import refs

SIZES = (1_000,)
DEFAULT_OUT = Path("benchmarks/results/ref_backend.json")
READS = 300
FULL, QUICK = side_by_side_plans()


@dataclass(frozen=True, slots=True)
class SizeResult:
    tasks: int
    tasks_md_bytes: int
    libgit2: Stats
    git: Stats
    read_libgit2: Stats
    read_git: Stats

    @property
    def ratio(self) -> float:
        return self.git.median_ms / self.libgit2.median_ms


def open_store(path: Path, size: int, *, git_refs: bool) -> TaskStore:
    unpacked_store(path, layout(size))
    saved = refs.FORCE_GIT_REFS
    refs.FORCE_GIT_REFS = git_refs
    try:
        return TaskStore.open(path)
    finally:
        refs.FORCE_GIT_REFS = saved


def reads(stores: Sequence[TaskStore], count: int) -> list[list[int]]:
    """``head()`` of each store in turn, ``count`` times."""
    samples: list[list[int]] = [[] for _ in stores]
    for _ in range(count):
        for which, store in enumerate(stores):
            started = time.perf_counter_ns()
            store.head()
            samples[which].append(time.perf_counter_ns() - started)
    return samples


def measure(root: Path, size: int, plan: Plan) -> SizeResult:
    lay = layout(size)
    libgit2 = open_store(root / "libgit2", size, git_refs=False)
    through_git = open_store(root / "git", size, git_refs=True)
    libgit2_ns, git_ns = writes_side_by_side(
        {root / "libgit2": libgit2, root / "git": through_git}, lay, plan
    )
    read_libgit2, read_git = reads([libgit2, through_git], READS)
    return SizeResult(
        size,
        len(lay.index),
        stats(libgit2_ns),
        stats(git_ns),
        stats(read_libgit2),
        stats(read_git),
    )


def table(results: Sequence[SizeResult]) -> str:
    out = [
        "| tasks | tasks.md | libgit2 refs: median / p99 | git refs: median / p99 "
        "| git − libgit2 (median) | git ÷ libgit2 | tip read libgit2 | tip read git |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        out.append(
            side_by_side_cells(r.tasks, r.tasks_md_bytes, r.libgit2, r.git, 2)
            + f"| {ms(r.read_libgit2.median_ms)} | {ms(r.read_git.median_ms)} |"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    session = Session("ref_backend", args.quick, find_cli(args.cli), plan)
    with sealed_environment() as root:
        session.measure_machine()
        version = subprocess.run(
            ["git", "version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        results = each_size(root, args.sizes, lambda path, size: measure(path, size, plan))
    session.finish(
        args.out,
        table(results),
        {
            "git": version,
            "sizes": [{**asdict(r), "git_vs_libgit2": round(r.ratio, 3)} for r in results],
        },
        f"Refs through {version}. ",
    )


def main(argv: Sequence[str] | None = None) -> None:
    run(
        parse_sized_args(
            argv, __doc__, quick="100 writes per size, not 1,000", out=DEFAULT_OUT, sizes=SIZES
        )
    )


if __name__ == "__main__":
    main()
