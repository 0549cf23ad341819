"""The cost of ``tasks.fsync``: ``status set`` with libgit2's fsync of objects and refs off and on.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_fsync.py            # 1,000 writes per size, a few minutes
    python benchmarks/bench_fsync.py --quick    # 100 writes per size, under a minute
    python benchmarks/bench_fsync.py --sizes 100,1000,10000

At 100 and 1,000 tasks it builds two stores alike, one with ``git config tasks.fsync true``,
and measures side by side, alternating step by step so both see the same machine and disk:

1. in-process: ``TaskStore.set_status`` through one long-lived handle of each store;
2. CLI: ``git-tasks status set ID STATUS`` as a process against each store.

With fsync on, a status change fsyncs each new object (blob, trees, commit) and its directory,
then the reflog and the ref's lock file and their directories (12 fsyncs for one changed
tasks.md). The cost is the disk's: a laptop SSD, a VM's virtual disk and a network filesystem
differ by orders of magnitude, so measure where the store lives. Packing is off in both
stores so no background gc lands in the timings. Prints a markdown table and writes a JSON
file; nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_status_set import (
    INDEX_PATH,
    REF,
    Plan,
    Session,
    Stats,
    applied,
    check_same_bytes,
    each_size,
    find_cli,
    git,
    layout,
    ms,
    parse_sized_args,
    sealed_environment,
    side_by_side_cells,
    side_by_side_plans,
    stats,
    take,
    unpacked_store,
    wall,
    writes_side_by_side,
)

from tasksync import TaskStore

SIZES = (100, 1_000)
DEFAULT_OUT = Path("benchmarks/results/fsync.json")
FULL, QUICK = side_by_side_plans(cli=40, quick_cli=8)


@dataclass(frozen=True, slots=True)
class SizeResult:
    tasks: int
    tasks_md_bytes: int
    off: Stats
    on: Stats
    cli_off: Stats
    cli_on: Stats

    @property
    def ratio(self) -> float:
        return self.on.median_ms / self.off.median_ms

    @property
    def cli_ratio(self) -> float:
        return self.cli_on.median_ms / self.cli_off.median_ms


def store(path: Path, size: int, fsync: bool) -> Path:
    return unpacked_store(path, layout(size), ("tasks.fsync", "true" if fsync else "false"))


def opened(path: Path) -> TaskStore:
    handle = TaskStore.open(path)
    assert handle.workspace.fsync == (path.name == "on")
    return handle


def measure(root: Path, size: int, plan: Plan, cli: Path) -> SizeResult:
    lay = layout(size)
    off, on = store(root / "off", size, False), store(root / "on", size, True)
    off_ns, on_ns = writes_side_by_side({off: opened(off), on: opened(on)}, lay, plan)

    cli_off, cli_on = store(root / "cli-off", size, False), store(root / "cli-on", size, True)
    cli_steps = take(size, plan.cli_warmup + plan.cli)
    samples: dict[Path, list[int]] = {cli_off: [], cli_on: []}
    for i, (task, status) in enumerate(cli_steps):
        order = [cli_off, cli_on] if i % 2 == 0 else [cli_on, cli_off]
        for path in order:
            elapsed = wall([str(cli), "status", "set", str(task), status.value], path)
            if i >= plan.cli_warmup:
                samples[path].append(elapsed)
    for path in (cli_off, cli_on):
        check_same_bytes(path, f"{REF}:{INDEX_PATH}", applied(lay, cli_steps), path.name)
        git(path, "fsck", "--no-progress")
    return SizeResult(
        size,
        len(lay.index),
        stats(off_ns),
        stats(on_ns),
        stats(samples[cli_off]),
        stats(samples[cli_on]),
    )


def table(results: Sequence[SizeResult]) -> str:
    out = [
        "| tasks | tasks.md | fsync off: median / p99 | fsync on: median / p99 "
        "| on − off (median) | on ÷ off | CLI off median | CLI on median | CLI on ÷ off |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        out.append(
            side_by_side_cells(r.tasks, r.tasks_md_bytes, r.off, r.on, 1)
            + f"| {ms(r.cli_off.median_ms)} | {ms(r.cli_on.median_ms)} | {r.cli_ratio:.2f}× |"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    cli = find_cli(args.cli)
    session = Session("fsync", args.quick, cli, plan)
    with sealed_environment() as root:
        session.measure_machine()
        filesystem = subprocess.run(
            ["df", "-T", str(root)], capture_output=True, text=True, check=False
        ).stdout.splitlines()[-1:]
        results = each_size(root, args.sizes, lambda path, size: measure(path, size, plan, cli))
    about = f"Stores on: {' '.join(filesystem[0].split()[:2]) if filesystem else 'unknown'}. "
    session.finish(
        args.out,
        table(results),
        {
            "filesystem": filesystem[0] if filesystem else "",
            "sizes": [
                {
                    **asdict(r),
                    "on_vs_off": round(r.ratio, 2),
                    "cli_on_vs_off": round(r.cli_ratio, 3),
                }
                for r in results
            ],
        },
        about,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run(
        parse_sized_args(
            argv, __doc__, quick="100 writes per size, not 1,000", out=DEFAULT_OUT, sizes=SIZES
        )
    )


if __name__ == "__main__":
    main()
