"""Watch latency: from a write in another worktree or session clone to the watcher's event.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_watch.py            # full run, about a minute and a half on 2 cores
    python benchmarks/bench_watch.py --quick    # fewer writes, about 15 seconds

A main repository holds a store of 200 tasks (``--tasks N`` for another size); it has a linked
worktree (``git worktree add``) and a session clone (``git clone PATH``, whose store is the main
repository's, found through its hub). Two writer processes, one in the worktree and one in the
session clone, each keep a ``TaskStore`` open and set a task's status whenever told to,
answering with the commit and the ``time.monotonic_ns()`` read right after ``set_status``
returned (the compare-and-swap is its last step). A watcher in the main repository receives the
events; the latency of a write is the monotonic time at which the watcher had the write's event
minus the writer's time (the clock is the machine's, shared by all processes). Negative values
mean the watcher had the event before the writer's call had returned.

Watchers, each measured on its own: ``TaskStore.watch()`` in this process (the time is taken
in its callback), and ``git tasks watch --json`` as a process (the time is taken when this
process reads its line). Each with inotify and with ``--poll`` (polling only, every 0.05 s).
Writes alternate between the two writers, one at a time: the next write is sent once the
watcher had the last one, after a random pause of 0-50 ms (one polling interval), so writes
fall at every phase of the polling. Every event is checked (a status event of the written task
with the new status, from the written commit, and nothing else). Prints a markdown table and
writes a JSON file. Nothing is asserted about timing; the target is a p99 of at most 200 ms.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_status_set import (
    Session,
    Stats,
    build_store,
    find_cli,
    layout,
    ms,
    sealed_environment,
    stats,
)

from tasksync import Event, Status, TaskStore
from tasksync.watch import POLL_INTERVAL

TASKS = 200  # default store size (--tasks)
TARGET_MS = 200.0
DEFAULT_OUT = Path("benchmarks/results/watch.json")
SIDES = ("worktree", "session")
WAIT = 10.0  # seconds a write's event may take before the benchmark gives up
PAUSE = POLL_INTERVAL  # the most a pause between writes takes: any phase of the polling

# A writer: opens the store once, then for each line "TASK STATUS" sets the status and prints
# the commit and the monotonic time right after the call returned.
WRITER = """
import sys, time
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    task, status = line.split()
    started = time.monotonic_ns()
    store.set_status(int(task), status)
    print(store.last_commit, started, time.monotonic_ns(), flush=True)
"""


@dataclass(frozen=True, slots=True)
class Plan:
    writes: int  # timed writes per writer and configuration
    warmup: int  # untimed writes per writer first


FULL = Plan(writes=200, warmup=10)
QUICK = Plan(writes=30, warmup=3)


@dataclass(frozen=True, slots=True)
class Result:
    watcher: str  # "API" or "CLI"
    wakes: str  # "inotify" or "polling"
    writer: str  # "worktree" or "session"
    latency: Stats  # from the writer's call returning to the watcher having the event
    from_start: Stats  # from the writer's call starting


class Writer:
    """A writer process in one workspace."""

    def __init__(self, name: str, path: Path, tasks: range) -> None:
        self.name = name
        self.tasks = tasks  # the tasks this writer flips, in turn
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.statuses: dict[int, Status] = {}
        self.step = 0
        if self._line() != "ready":
            raise RuntimeError(f"the {name} writer did not start")

    def write(self) -> tuple[int, Status, str, int, int]:
        """Flip the writer's next task; its number, new status, commit and times."""
        task = self.tasks[self.step % len(self.tasks)]
        self.step += 1
        status = (
            Status.TODO if self.statuses.get(task) is Status.IN_PROGRESS else Status.IN_PROGRESS
        )
        self.statuses[task] = status
        assert self.process.stdin is not None
        self.process.stdin.write(f"{task} {status.value}\n")
        self.process.stdin.flush()
        commit, started, returned = self._line().split()
        return task, status, commit, int(started), int(returned)

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


Received = tuple[int, dict[str, object]]  # monotonic ns when had, the event's JSON object


@dataclass
class Watcher:
    """Where the events arrive, each with the monotonic time it arrived."""

    events: queue.Queue[Received]
    stop: Callable[[], None]


def api_watcher(path: Path, poll: bool) -> Watcher:
    events: queue.Queue[Received] = queue.Queue()
    watch = TaskStore.open(path).watch(poll=poll)

    def had(event: Event) -> None:
        events.put((time.monotonic_ns(), event.to_json()))

    thread = threading.Thread(target=watch.run, args=(had,), daemon=True)
    thread.start()

    def stop() -> None:
        watch.stop()
        thread.join(10)

    return Watcher(events, stop)


def cli_watcher(path: Path, poll: bool, cli: Path) -> Watcher:
    events: queue.Queue[Received] = queue.Queue()
    since = TaskStore.open(path).head() or ""  # writes made while the process starts count
    command = [str(cli), "-C", str(path), "watch", "--json", "--since", since]
    command += ["--poll"] * poll
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            events.put((time.monotonic_ns(), json.loads(line)))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)
        thread.join(10)

    return Watcher(events, stop)


def measure(
    writers: dict[str, Writer], watcher: Watcher, plan: Plan, rng: random.Random
) -> dict[str, tuple[list[int], list[int]]]:
    """Writes alternating between the writers; per writer, latencies from return and start."""
    samples: dict[str, tuple[list[int], list[int]]] = {name: ([], []) for name in writers}
    order = list(writers)
    for n in range(plan.warmup + plan.writes):
        for name in order:
            task, status, commit, started, returned = writers[name].write()
            try:
                had, event = watcher.events.get(timeout=WAIT)
            except queue.Empty:
                raise RuntimeError(f"no event within {WAIT:g} s for {commit}") from None
            check(event, task, status, commit)
            if n >= plan.warmup:
                samples[name][0].append(had - returned)
                samples[name][1].append(had - started)
            time.sleep(rng.uniform(0, PAUSE))
        order.reverse()
    if not watcher.events.empty():
        raise RuntimeError(f"an event nobody wrote: {watcher.events.get()[1]}")
    return samples


def check(event: dict[str, object], task: int, status: Status, commit: str) -> None:
    wanted = {"kind": "status", "task": f"#{task:03d}", "after": status.value, "commit": commit}
    got = {key: event[key] for key in wanted}
    if got != wanted:
        raise RuntimeError(f"expected {wanted}, the watcher had {got}")


def run_all(root: Path, plan: Plan, cli: Path, tasks: int) -> list[Result]:
    main = root / "project"
    build_store(main, layout(tasks))
    git(main, "worktree", "add", "-q", "-b", "worktree", str(root / "worktree"))
    git(root, "clone", "-q", str(main), str(root / "session"))
    session = TaskStore.open(root / "session")
    assert session.hub is not None and session.hub.path == main, session.hub
    assert session.store_dir == TaskStore.open(main).store_dir
    half = tasks // 2
    halves = {"worktree": range(1, half + 1), "session": range(half + 1, tasks + 1)}
    writers = {name: Writer(name, root / name, halves[name]) for name in SIDES}
    rng = random.Random(20250601)
    results: list[Result] = []
    kinds: list[tuple[str, Callable[[bool], Watcher]]] = [
        ("API", lambda poll: api_watcher(main, poll)),
        ("CLI", lambda poll: cli_watcher(main, poll, cli)),
    ]
    try:
        for watcher_name, start in kinds:
            for poll in (False, True):
                wakes = "polling" if poll else "inotify"
                print(f"{watcher_name} watcher, {wakes} ...", file=sys.stderr, flush=True)
                watcher = start(poll)
                try:
                    samples = measure(writers, watcher, plan, rng)
                finally:
                    watcher.stop()
                for name in SIDES:
                    returned, started = samples[name]
                    results.append(
                        Result(watcher_name, wakes, name, stats(returned), stats(started))
                    )
    finally:
        for writer in writers.values():
            writer.close()
    have = {t.id.number: t.status for t in TaskStore.open(main).list(include_done=True)}
    for writer in writers.values():
        for task, status in writer.statuses.items():
            if have[task] is not status:
                raise RuntimeError(f"task {task} is {have[task]}, not {status}")
    return results


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


# -- output ---------------------------------------------------------------------------------------


def verdict(p99: float) -> str:
    return f"{'met' if p99 <= TARGET_MS else 'MISSED'}"


def tables(results: Sequence[Result]) -> str:
    out = [
        "| watcher | woken by | writer in | latency median / p99 / max | min "
        "| from the write's start median / p99 | target p99 ≤ 200 ms |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        lat, start = r.latency, r.from_start
        out.append(
            f"| {r.watcher} | {r.wakes} | {r.writer} "
            f"| {ms(lat.median_ms)} / {ms(lat.p99_ms)} / {ms(lat.max_ms)} | {ms(lat.min_ms)} "
            f"| {ms(start.median_ms)} / {ms(start.p99_ms)} | {verdict(lat.p99_ms)} |"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    cli = find_cli(args.cli)
    session = Session("watch", args.quick, cli, plan)
    with sealed_environment() as root:
        session.measure_machine()
        results = run_all(root, plan, cli, args.tasks)
    text = tables(results)
    session.finish(
        args.out,
        text,
        {
            "tasks": args.tasks,
            "target_p99_ms": TARGET_MS,
            "results": [{**asdict(r), "met": r.latency.p99_ms <= TARGET_MS} for r in results],
        },
        about=(
            f"{plan.writes} writes per writer and watcher after {plan.warmup} warm-up writes "
            f"each, store of {args.tasks:,} tasks. "
        ),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer writes (30 per writer)")
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks in the store (200)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--cli", type=Path, help="the git-tasks script (default: next to python)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
