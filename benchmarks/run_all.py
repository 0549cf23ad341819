"""Every benchmark in one command: JSON results, one markdown summary, and plots.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/run_all.py            # every benchmark's full run (about 15 minutes)
    python benchmarks/run_all.py --quick    # every benchmark's quick run (a few minutes)
    python benchmarks/run_all.py --only approaches,disk

Each benchmark runs as its own process, one after the other, and writes
``benchmarks/results/NAME.json``. Then ``benchmarks/results/summary.md`` collects every
benchmark's tables with its command and machine line, and, when matplotlib is installed
(``pip install -e '.[bench]'``), ``benchmarks/results/*.png`` plot the comparison of the
designs: latency by design and size, and throughput and lost updates by number of writers.
Without matplotlib the plots are skipped with a note; everything else is the same.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path("benchmarks/results")
#: Each benchmark: its script, and the options of a quick run.
BENCHMARKS = {
    "status_set": ("bench_status_set.py", ["--quick"]),
    "merge": ("bench_merge.py", ["--quick"]),
    "sync": ("bench_sync.py", ["--quick"]),
    "watch": ("bench_watch.py", ["--quick"]),
    "migrate": ("bench_migrate.py", ["--quick"]),
    "disk": ("bench_disk.py", ["--quick"]),
    "fsync": ("bench_fsync.py", ["--quick"]),
    "ref_backend": ("bench_ref_backend.py", ["--quick"]),
    "approaches": ("bench_approaches.py", ["--quick"]),
}


def run(names: Sequence[str], quick: bool) -> dict[str, float]:
    """Run the benchmarks; their wall times in seconds."""
    here = Path(__file__).resolve().parent
    took: dict[str, float] = {}
    for name in names:
        script, quick_options = BENCHMARKS[name]
        out = RESULTS / f"{name}.json"
        command = [sys.executable, str(here / script), "--out", str(out)]
        command += quick_options if quick else []
        print(f"== {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        started = time.monotonic()
        subprocess.run(command, check=True)
        took[name] = time.monotonic() - started
    return took


def summary(names: Sequence[str], took: dict[str, float]) -> str:
    """Every benchmark's tables, command and machine, from its JSON file."""
    parts = ["# Benchmark results", ""]
    for name in names:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        machine = data.get("machine", {})
        parts += [
            f"## {name}",
            "",
            f"`{data.get('command', '')}` ({data.get('mode', '')} run, "
            f"{took.get(name, data.get('seconds', 0)):.0f} s; "
            f"{machine.get('nproc', '?')} CPUs, {machine.get('python', '')}, "
            f"tasksync {machine.get('tasksync_source', '')})",
            "",
            str(data.get("table", "")).strip(),
            "",
        ]
    return "\n".join(parts)


def plots(written: list[Path]) -> str | None:
    """PNG plots of the designs compared; None when done, else why they were skipped."""
    path = RESULTS / "approaches.json"
    if not path.is_file():
        return "no approaches.json to plot"
    try:
        importlib.import_module("matplotlib").use("Agg")
        pyplot: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    data = json.loads(path.read_text(encoding="utf-8"))
    latency = data.get("latency", [])
    designs = list(dict.fromkeys(row["design"] for row in latency))
    sizes = sorted({row["tasks"] for row in latency})
    figure, axes = pyplot.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(sizes))
    for n, size in enumerate(sizes):
        medians = {r["design"]: r["latency"]["median_ms"] for r in latency if r["tasks"] == size}
        axes.bar(
            [i + n * width for i in range(len(designs))],
            [medians.get(d, 0.0) for d in designs],
            width,
            label=f"{size:,} tasks",
        )
    axes.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(designs))])
    axes.set_xticklabels(designs, rotation=30, ha="right")
    axes.set_yscale("log")
    axes.set_ylabel("median latency of one status change (ms, log scale)")
    axes.legend()
    figure.tight_layout()
    written.append(RESULTS / "approaches-latency.png")
    figure.savefig(written[-1], dpi=120)
    pyplot.close(figure)

    concurrency = data.get("concurrency", [])
    figure, (left, middle, right) = pyplot.subplots(1, 3, figsize=(15, 4.5))
    for design in dict.fromkeys(row["design"] for row in concurrency):
        rows = sorted((r for r in concurrency if r["design"] == design), key=lambda r: r["writers"])
        writers = [r["writers"] for r in rows]
        left.plot(
            writers, [r.get("acknowledged_per_second") or 0 for r in rows], "o-", label=design
        )
        middle.plot(writers, [r["latency"]["p99_ms"] for r in rows], "o-", label=design)
        line = right.plot(writers, [r["lost"] for r in rows], "o-", label=design)
        right.plot(writers, [r["failed"] for r in rows], "x--", color=line[0].get_color())
    left.set_xlabel("concurrent writer processes")
    left.set_ylabel("acknowledged operations per second")
    left.set_yscale("log")
    middle.set_xlabel("concurrent writer processes")
    middle.set_ylabel("p99 latency of one operation (ms, log scale)")
    middle.set_yscale("log")
    right.set_xlabel("concurrent writer processes")
    right.set_ylabel("lost (solid) and failed (dashed) operations")
    right.set_ylim(bottom=0)
    left.legend(fontsize="small")
    figure.tight_layout()
    written.append(RESULTS / "approaches-writers.png")
    figure.savefig(written[-1], dpi=120)
    pyplot.close(figure)

    disk = data.get("disk", [])
    if disk:
        names = [
            r["design"] if r["variant"] == "as set up" else f"{r['design']}, {r['variant']}"
            for r in disk
        ]
        figure, axes = pyplot.subplots(figsize=(9, 4.5))
        axes.barh(names, [r["bytes"] / 1e6 for r in disk])
        axes.invert_yaxis()
        axes.set_xlabel(f"MB on disk after {disk[0]['operations']:,} status changes at 1,000 tasks")
        figure.tight_layout()
        written.append(RESULTS / "approaches-disk.png")
        figure.savefig(written[-1], dpi=120)
        pyplot.close(figure)
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="every benchmark's quick run")
    parser.add_argument(
        "--only", help=f"comma-separated benchmarks (default: all of {', '.join(BENCHMARKS)})"
    )
    parser.add_argument(
        "--no-run", action="store_true", help="only rebuild the summary and plots from results/"
    )
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}: choose from {', '.join(BENCHMARKS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    took = {} if args.no_run else run(names, args.quick)
    text = summary(names, took)
    (RESULTS / "summary.md").write_text(text + "\n", encoding="utf-8")
    written: list[Path] = []
    skipped = plots(written)
    print(f"wrote {RESULTS / 'summary.md'}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if skipped:
        print(f"plots skipped: {skipped}", file=sys.stderr)


if __name__ == "__main__":
    main()
