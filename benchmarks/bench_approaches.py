"""Alternative designs for shared task state, side by side with tasksync.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_approaches.py            # 100 and 1,000 tasks; 1-8 writers
    python benchmarks/bench_approaches.py --quick    # fewer operations, under 3 minutes
    python benchmarks/bench_approaches.py --full     # also 10,000 tasks and 16 writers

Each design of ``benchmarks/approaches`` (the status quo, A-E, tasksync with and without its
file lock, with fsync) holds the same ``process/tasks.md`` and sets task checkboxes. Five
measurements:

1. latency: one writer per design in this process, the designs alternating step by step (the
   first one rotating), each step flipping a task between TODO and IN-PROGRESS along the walk
   of ``bench_status_set`` (tasks.md never repeats a state); every design must end on the
   bytes the walk predicts;
2. concurrency: N writer processes per design, started together, each setting K distinct tasks
   to IN-PROGRESS and recording what it was told succeeded; then the final state (the
   committed tasks.md, the rows, the replayed log) is compared with every writer's record:
   a **lost update** is an operation a writer saw succeed whose effect is missing. For tasksync,
   the history must hold one status commit per acknowledged operation;
3. visibility: one writer in this process and one reader process in another workspace (each of
   the design's readers in turn); per step the reader is armed, the write is made, and the
   reader reports the monotonic clock when it first saw it: visibility is that minus the moment
   the write returned (negative when the reader saw it before the writer's call returned). A
   reader that does not see a write within the timeout counts it as not visible;
4. one-shot: the wall time of a fresh process that imports the design, opens it, sets one
   task's checkbox and exits, next to ``python -c "import pygit2, click"`` and
   ``git-tasks status set``;
5. disk: the bytes under each design's directory after one writer's status changes at 1,000
   tasks (10,000 with ``--full``), with git's automatic gc as users have it and, for
   tasksync, with its packing on and off.

Prints markdown tables and writes a JSON file. Nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from approaches import DESIGNS, Backend, Design, checkbox_at, child_env, design
from bench_status_set import (
    Layout,
    Session,
    Stats,
    applied,
    find_cli,
    layout,
    ms,
    sealed_environment,
    stats,
    walk,
)

from tasksync import Status

DEFAULT_OUT = Path("benchmarks/results/approaches.json")
WRITTEN = Status.IN_PROGRESS.checkbox  # what concurrent writers set (every task starts TODO)
WORKER_TIMEOUT = 600.0  # seconds a writer process may take for its operations
VISIBILITY_TIMEOUT = 0.5  # seconds a reader waits to see a write before it counts as not seen
VISIBILITY_GIVE_UP = 3  # not seen this many times in a row: the rest of the steps are skipped
VISIBILITY_WARMUP = 3  # untimed steps first


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: tuple[int, ...]  # task counts of the latency measurement
    latency_steps: int  # timed steps per size and design
    warmup_steps: int  # untimed steps first, at least this many,
    warmup_seconds: float  # and at least this long
    writers: tuple[int, ...]  # writer processes of the concurrency measurement
    ops_per_writer: int
    concurrency_tasks: int  # size of the store the writers share
    visibility_steps: int  # timed writes per design and reader (on a store of 1,000 tasks)
    oneshot_runs: int  # fresh processes per design
    disk_operations: int  # status changes per design before its disk use is measured


QUICK = Plan((100, 1_000), 40, 5, 0.5, (1, 2, 4, 8), 12, 1_000, 20, 5, 500)
DEFAULT = Plan((100, 1_000), 200, 20, 2.0, (1, 2, 4, 8), 40, 1_000, 100, 10, 2_000)
FULL = Plan((100, 1_000, 10_000), 300, 30, 5.0, (1, 2, 4, 8, 16), 50, 1_000, 200, 20, 10_000)


@dataclass(frozen=True, slots=True)
class Latency:
    design: str
    tasks: int
    latency: Stats


@dataclass(frozen=True, slots=True)
class Concurrency:
    design: str
    writers: int
    operations: int  # attempted, all writers together
    acknowledged: int  # the writer was told it succeeded
    failed: int  # the writer was told it failed
    lost: int  # acknowledged, yet missing from the final state
    intact: bool  # the final tasks.md is the initial one with some checkboxes set, nothing else
    seconds: float  # from the first writer starting to the last one finishing
    latency: Stats  # of every operation, failed ones included
    history: dict[str, int] | None  # tasksync: status commits against acknowledged operations
    first_error: str

    @property
    def throughput(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Visibility:
    design: str
    reader: str
    steps: int  # timed writes attempted
    unseen: int  # of them, writes the reader did not see within the timeout
    visibility: Stats | None  # of the writes it saw; None when it saw none


@dataclass(frozen=True, slots=True)
class Disk:
    design: str
    variant: str
    operations: int
    setup_bytes: int  # everything under the design's directory once set up
    bytes: int  # and after the operations (and any background maintenance they started)
    seconds: float  # the operations' wall time


@dataclass(frozen=True, slots=True)
class OneShot:
    what: str  # a design, or a reference command
    runs: int
    median_ms: float
    min_ms: float


# -- latency --------------------------------------------------------------------------------------


def measure_latency(root: Path, lay: Layout, designs: Sequence[Design], plan: Plan) -> list[Stats]:
    backends: list[Backend] = []
    for made in designs:
        (root / made.key).mkdir(parents=True)
        made.setup(root / made.key, lay)
        backends.append(made.open(root / made.key))
    os.sync()  # what setup wrote is on disk before timing starts
    samples: list[list[int]] = [[] for _ in designs]
    taken: list[tuple[int, Status]] = []
    started = time.monotonic()
    warm = True
    for number, (task, status) in enumerate(walk(lay.size)):
        if warm and len(taken) >= plan.warmup_steps:
            warm = time.monotonic() - started < plan.warmup_seconds
        taken.append((task, status))
        shift = number % len(designs)
        for which in [*range(shift, len(designs)), *range(shift)]:
            before = time.perf_counter_ns()
            backends[which].set_status(task, status.checkbox)
            elapsed = time.perf_counter_ns() - before
            if not warm:
                samples[which].append(elapsed)
        if len(samples[0]) >= plan.latency_steps:
            break
    expected = applied(lay, taken)
    for made, backend in zip(designs, backends, strict=True):
        for what, found in (("read()", backend.read()), ("final()", made.final(root / made.key))):
            if found != expected:
                raise RuntimeError(f"{made.key}: {what} differs from the walk's tasks.md")
        backend.close()
        made.stop(root / made.key)
    shutil.rmtree(root)
    return [stats(s) for s in samples]


# -- concurrency ----------------------------------------------------------------------------------


def measure_concurrency(root: Path, made: Design, writers: int, plan: Plan) -> Concurrency:
    lay = layout(plan.concurrency_tasks)
    root.mkdir(parents=True)
    made.setup(root, lay)
    k = plan.ops_per_writer
    if writers * k > lay.size:
        raise ValueError(f"{writers} writers x {k} operations need more than {lay.size} tasks")
    processes = []
    try:
        for w in range(writers):
            tasks = ",".join(str(1 + w + writers * i) for i in range(k))  # spread, distinct
            command = [sys.executable, "-m", "approaches.worker", made.key, str(root), tasks]
            processes.append(
                subprocess.Popen(
                    [*command, WRITTEN],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=child_env(),
                )
            )
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"a {made.key} writer did not start")
        for process in processes:  # all are ready: let them go together
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            process.stdin.flush()
        records = []
        for process in processes:
            out, _ = process.communicate(timeout=WORKER_TIMEOUT)
            if process.returncode != 0:
                raise RuntimeError(f"a {made.key} writer exited with {process.returncode}")
            records.append(json.loads(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    final = made.final(root)
    ops = [tuple(op) for record in records for op in record["ops"]]
    acknowledged = [int(op[0]) for op in ops if op[1]]
    lost = sum(1 for task in acknowledged if checkbox(final, task) != WRITTEN)
    intact = len(final) == len(lay.index) and all(
        final[at] == ord(WRITTEN) or final[at] == lay.index[at]
        for at in range(len(final))
        if final[at] != lay.index[at]
    )
    history = made.audit(root, acknowledged)
    made.stop(root)
    shutil.rmtree(root)
    errors = [str(op[3]) for op in ops if not op[1]]
    return Concurrency(
        design=made.key,
        writers=writers,
        operations=len(ops),
        acknowledged=len(acknowledged),
        failed=len(errors),
        lost=lost,
        intact=intact,
        seconds=(max(r["ended"] for r in records) - min(r["started"] for r in records)) / 1e9,
        latency=stats([int(op[2]) for op in ops]),
        history=history,
        first_error=errors[0] if errors else "",
    )


checkbox = checkbox_at


# -- visibility -----------------------------------------------------------------------------------


def measure_visibility(root: Path, made: Design, variant: str, plan: Plan) -> Visibility:
    lay = layout(plan.concurrency_tasks)
    root.mkdir(parents=True)
    made.setup(root, lay)
    backend = made.open(root)
    command = [sys.executable, "-m", "approaches.reader", made.key, str(root), variant]
    reader = subprocess.Popen(
        [*command, str(VISIBILITY_TIMEOUT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert reader.stdin is not None and reader.stdout is not None
    samples: list[int] = []
    unseen = 0
    steps = 0
    in_a_row = 0
    try:
        if reader.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"a {made.key} reader did not start")
        for number, (task, status) in enumerate(walk(lay.size)):
            if steps >= plan.visibility_steps or in_a_row >= VISIBILITY_GIVE_UP:
                break
            reader.stdin.write(f"{task} {status.checkbox}\n".encode())
            reader.stdin.flush()
            if reader.stdout.readline().strip() != b"armed":
                raise RuntimeError(f"a {made.key} reader stopped")
            backend.set_status(task, status.checkbox)
            returned = time.monotonic_ns()
            answer = reader.stdout.readline().strip()
            if not answer:
                raise RuntimeError(f"a {made.key} reader stopped")
            if number < VISIBILITY_WARMUP:
                continue
            steps += 1
            if answer == b"none":
                unseen += 1
                in_a_row += 1
            else:
                samples.append(int(answer) - returned)
                in_a_row = 0
        reader.stdin.write(b"\n")
        reader.stdin.flush()
        reader.wait(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
        reader.stdin.close()
        reader.stdout.close()
        backend.close()
        made.stop(root)
    shutil.rmtree(root)
    return Visibility(made.key, variant, steps, unseen, stats(samples) if samples else None)


# -- disk ---------------------------------------------------------------------------------------


def used_bytes(root: Path) -> int:
    """Apparent sizes of every file under ``root`` (links not followed)."""
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def measure_disk(root: Path, made: Design, variant: str, plan: Plan) -> Disk:
    """One writer makes ``plan.disk_operations`` status changes at 1,000 tasks, as the
    latency walk does; the design's directory is measured once background work has ended."""
    lay = layout(1_000)
    root.mkdir(parents=True)
    made.setup(root, lay)
    made.for_disk(root, variant)
    made.settle(root)
    before = used_bytes(root)
    backend = made.open(root)
    taken: list[tuple[int, Status]] = []
    started = time.monotonic()
    for task, status in walk(lay.size):
        if len(taken) >= plan.disk_operations:
            break
        backend.set_status(task, status.checkbox)
        taken.append((task, status))
    seconds = time.monotonic() - started
    backend.close()
    made.settle(root)
    if made.final(root) != applied(lay, taken):
        raise RuntimeError(f"{made.key}: the final tasks.md differs from the walk's")
    after = used_bytes(root)
    made.stop(root)
    shutil.rmtree(root)
    return Disk(made.key, variant, len(taken), before, after, seconds)


# -- one-shot -------------------------------------------------------------------------------------


def wall_ns(command: Sequence[str], cwd: Path) -> int:
    started = time.perf_counter_ns()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=child_env())
    return time.perf_counter_ns() - started


def one_shot(what: str, samples: Sequence[int]) -> OneShot:
    return OneShot(what, len(samples), statistics.median(samples) / 1e6, min(samples) / 1e6)


def measure_oneshot(root: Path, designs: Sequence[Design], cli: Path, plan: Plan) -> list[OneShot]:
    lay = layout(plan.concurrency_tasks)
    root.mkdir(parents=True)
    runs = plan.oneshot_runs
    found: list[OneShot] = []
    reference: dict[str, list[int]] = {'python -c "import pygit2, click"': []}
    for _ in range(runs):
        command = [sys.executable, "-c", "import pygit2, click"]
        reference['python -c "import pygit2, click"'].append(wall_ns(command, root))
    found.append(one_shot(*next(iter(reference.items()))))
    for n, made in enumerate(designs):
        where = root / f"design-{n}"  # not a design's key: `-m` puts the directory on sys.path
        where.mkdir()
        made.setup(where, lay)
        samples = []
        for task in range(1, runs + 1):
            command = [sys.executable, "-m", "approaches.oneshot", made.key, str(where)]
            samples.append(wall_ns([*command, str(task), WRITTEN], where))
        final = made.final(where)
        if any(checkbox(final, task) != WRITTEN for task in range(1, runs + 1)):
            raise RuntimeError(f"{made.key}: a one-shot write is missing")
        found.append(one_shot(made.key, samples))
        if made.key == "tasksync":  # the real entry point on the same store
            samples = []
            for task in range(runs + 1, 2 * runs + 1):
                command = [str(cli), "status", "set", str(task), Status.IN_PROGRESS.value]
                samples.append(wall_ns(command, where / "repo"))
            found.append(one_shot("git-tasks status set (tasksync's CLI)", samples))
        made.stop(where)
    shutil.rmtree(root)
    return found


# -- output ---------------------------------------------------------------------------------------


def history_note(history: dict[str, int] | None) -> str:
    if history is None:
        return ""
    ok = (
        history["exactly_once"] == history["acknowledged"]
        and history["status_commits"] == history["acknowledged"]
    )
    return f"{history['status_commits']} commits, {history['exactly_once']} exactly once" + (
        "" if ok else f" (missing {history['missing']}, repeated {history['repeated']})"
    )


def tables(
    latency: Sequence[Latency],
    concurrency: Sequence[Concurrency],
    visibility: Sequence[Visibility],
    oneshot: Sequence[OneShot],
    disk: Sequence[Disk] = (),
) -> str:
    sizes = sorted({r.tasks for r in latency})
    keys = list(dict.fromkeys(r.design for r in latency))
    out = [
        "| design | " + " | ".join(f"{size:,} tasks: median / p99" for size in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for key in keys:
        cells = []
        for size in sizes:
            found = [r.latency for r in latency if r.design == key and r.tasks == size]
            cells.append(f"{ms(found[0].median_ms)} / {ms(found[0].p99_ms)}" if found else "")
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    out += [
        "",
        "| design | writers | ops | acknowledged | failed | **lost** | acknowledged/s "
        "| ÷ 1 writer's | median / p99 | p99 ÷ 1 writer's median | tasks.md intact | history |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    alone = {c.design: c for c in concurrency if c.writers == 1}
    for c in concurrency:
        one = alone.get(c.design)
        speed = f"{c.throughput / one.throughput:.2f}×" if one and one.throughput else ""
        tail = f"{c.latency.p99_ms / one.latency.median_ms:.1f}×" if one else ""
        out.append(
            f"| {c.design} | {c.writers} | {c.operations} | {c.acknowledged} | {c.failed} "
            f"| **{c.lost}** | {c.throughput:,.0f} | {speed} "
            f"| {ms(c.latency.median_ms)} / {ms(c.latency.p99_ms)} | {tail} "
            f"| {'yes' if c.intact else '**no**'} | {history_note(c.history)} |"
        )
    out += [
        "",
        "| design | reader (another workspace, another process) | visible after: median / p99 "
        "| not seen within the timeout |",
        "|---|---|---:|---:|",
    ]
    for v in visibility:
        seen = (
            f"{ms(v.visibility.median_ms)} / {ms(v.visibility.p99_ms)}"
            if v.visibility is not None
            else "**never**"
        )
        out.append(f"| {v.design} | {v.reader} | {seen} | {v.unseen} of {v.steps} |")
    out += [
        "",
        "| one operation by a fresh process | runs | median | min |",
        "|---|---:|---:|---:|",
    ]
    for o in oneshot:
        out.append(f"| {o.what} | {o.runs} | {ms(o.median_ms)} | {ms(o.min_ms)} |")
    if disk:
        out += [
            "",
            f"| design, {disk[0].operations:,} status changes at 1,000 tasks | set up "
            "| after | grown | per 1,000 changes | changes/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for d in disk:
            name = d.design if d.variant == "as set up" else f"{d.design}, {d.variant}"
            grown = d.bytes - d.setup_bytes
            out.append(
                f"| {name} | {mb(d.setup_bytes)} | {mb(d.bytes)} | {mb(grown)} "
                f"| {mb(grown * 1000 // max(1, d.operations))} "
                f"| {d.operations / d.seconds:,.0f} |"
            )
    return "\n".join(out)


def mb(count: int) -> str:
    return f"{count / 1e6:,.2f} MB"


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL if args.full else DEFAULT
    cli = find_cli(args.cli)
    session = Session("approaches", args.quick, cli, plan)
    latency: list[Latency] = []
    concurrency: list[Concurrency] = []
    visibility: list[Visibility] = []
    oneshot: list[OneShot] = []
    disk: list[Disk] = []
    with sealed_environment() as root:
        session.measure_machine()
        designs = [design(key) for key in args.designs]
        for size in plan.sizes:
            print(f"latency, {size:,} tasks ...", file=sys.stderr, flush=True)
            found = measure_latency(root / f"latency-{size}", layout(size), designs, plan)
            latency += [Latency(d.key, size, s) for d, s in zip(designs, found, strict=True)]
        for writers in plan.writers:
            print(f"{writers} concurrent writers ...", file=sys.stderr, flush=True)
            for made in designs:
                concurrency.append(
                    measure_concurrency(root / f"writers-{writers}-{made.key}", made, writers, plan)
                )
        print("visibility ...", file=sys.stderr, flush=True)
        for made in designs:
            for n, variant in enumerate(made.readers):
                where = root / f"visibility-{made.key}-{n}"
                visibility.append(measure_visibility(where, made, variant, plan))
        print("one-shot processes ...", file=sys.stderr, flush=True)
        oneshot = measure_oneshot(root / "oneshot", designs, cli, plan)
        print(f"disk, {plan.disk_operations:,} operations ...", file=sys.stderr, flush=True)
        for made in designs:
            for n, variant in enumerate(made.disk_variants):
                disk.append(measure_disk(root / f"disk-{made.key}-{n}", made, variant, plan))
    table = tables(latency, concurrency, visibility, oneshot, disk)
    session.finish(
        args.out,
        table,
        {
            "mode": "quick" if args.quick else "full" if args.full else "default",
            "latency": [asdict(r) for r in latency],
            "concurrency": [
                {**asdict(c), "acknowledged_per_second": round(c.throughput, 1)}
                for c in concurrency
            ],
            "visibility_timeout_seconds": VISIBILITY_TIMEOUT,
            "visibility": [asdict(v) for v in visibility],
            "oneshot": [asdict(o) for o in oneshot],
            "disk": [asdict(d) for d in disk],
        },
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="fewer operations, under 3 minutes")
    modes.add_argument("--full", action="store_true", help="also 10,000 tasks and 16 writers")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--cli", type=Path, help="the git-tasks script (for the machine line)")
    parser.add_argument(
        "--designs",
        type=lambda text: tuple(text.split(",")),
        default=tuple(DESIGNS),
        help=f"comma-separated designs (default: all of {', '.join(DESIGNS)})",
    )
    args = parser.parse_args(argv)
    unknown = [key for key in args.designs if key not in DESIGNS]
    if unknown:
        parser.error(f"unknown designs: {', '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
