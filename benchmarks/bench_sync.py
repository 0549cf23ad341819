"""Syncing: ``TaskStore.sync()`` round trips, and a session clone's hub against a worktree.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_sync.py            # full run, about two minutes on 2 cores
    python benchmarks/bench_sync.py --quick    # fewer samples, under half a minute

Two measurements:

1. Sync round trips. A remote holds a store of 200 tasks; two clones of it (``tasks.hub
   none``, so each works on its own ref) are in sync with it. ``TaskStore.sync()`` of one
   clone is timed in process (a) with nothing to do, next to a plain ``git fetch`` of the
   tasks refs, and (b) with 10 status changes on each side: before each timed sync the other
   clone changes 10 of its tasks and syncs, then the timed clone changes 10 of its own, so
   every timed sync fetches, merges three-way and pushes. Both against a bare repository on
   disk (the remote's URL is its path) and against a ``git daemon`` on 127.0.0.1 that this
   script starts and stops; samples of the two remotes alternate.
2. Hub latency. A main repository, a linked worktree of it, and a session clone made with
   ``git clone PATH`` (whose store is the main repository's, found through its hub).
   ``set_status`` and ``list`` are timed through the session clone and through the worktree,
   alternating step by step: on one long-lived handle, with ``TaskStore.open`` before every
   call (what each ``git tasks`` process does), and as ``git-tasks`` processes. The target is
   session ÷ worktree ≤ 1.2×.

Every sync is checked (what it merged and pushed, and at the end every task's status on both
clones and the remote's ref), as is every status the hub measurement wrote. Prints markdown
tables and writes a JSON file. Nothing is asserted about timing. Git runs with a pinned
identity and without user or system config; everything lives in a temporary directory that is
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
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
    verdict,
)

from tasksync import Status, TaskStore

TASKS = 200
CHANGES = 10  # status changes per side before each timed sync
HALF = TASKS // 2  # the timed clone changes tasks 1..HALF, the other HALF+1..TASKS
STATUSES = (Status.IN_PROGRESS, Status.IN_REVIEW, Status.DONE, Status.TODO)
HUB_TARGET = 1.2
REMOTES = ("bare", "daemon")
DEFAULT_OUT = Path("benchmarks/results/sync.json")


@dataclass(frozen=True, slots=True)
class Plan:
    nothing: int  # timed syncs with nothing to do, per remote
    changes: int  # timed syncs with 10 changes on each side, per remote
    warmup: int  # untimed rounds before each sync measurement
    hub_steps: int  # timed steps per operation and side, in process
    hub_cli: int  # timed processes per operation and side
    hub_warmup: int


FULL = Plan(nothing=200, changes=60, warmup=5, hub_steps=1000, hub_cli=40, hub_warmup=30)
QUICK = Plan(nothing=20, changes=8, warmup=2, hub_steps=100, hub_cli=6, hub_warmup=5)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def timed(run: Callable[[], object]) -> tuple[int, object]:
    started = time.perf_counter_ns()
    result = run()
    return time.perf_counter_ns() - started, result


# -- the remotes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def git_daemon(base: Path, log: Path) -> Iterator[str]:
    """A ``git daemon`` serving the repositories under ``base`` (push enabled) on 127.0.0.1;
    yields the URL prefix and stops the daemon at the end."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
                f"--base-path={base}",
                "--listen=127.0.0.1",
                f"--port={port}",
                str(base),
            ],
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"git daemon exited: {log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("git daemon did not start listening in 10 s") from None
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed(root: Path) -> Path:
    """A repository with a branch and a store of ``TASKS`` tasks, all TODO."""
    path = root / "seed"
    build_store(path, layout(TASKS))
    return path


def bare_remote(seed_repo: Path, path: Path) -> None:
    git(seed_repo.parent, "init", "-q", "--bare", str(path))
    git(seed_repo, "push", "-q", str(path), "refs/heads/main:refs/heads/main", "refs/tasks/main")


def clone(url: str, path: Path) -> TaskStore:
    """A clone of ``url`` on its own ref (``tasks.hub none``), brought in sync with it."""
    git(path.parent, "clone", "-q", url, str(path))
    git(path, "config", "tasks.hub", "none")
    store = TaskStore.open(path)
    done = store.sync()
    assert done.merged is not None and done.merged.outcome == "fast-forward", done
    return store


# -- sync round trips -----------------------------------------------------------------------------


@dataclass
class Pair:
    """One remote and the two clones syncing with it."""

    kind: str  # "bare" or "daemon"
    url: str
    ours: TaskStore  # the clone whose syncs are timed
    theirs: TaskStore
    ours_path: Path
    rounds: int = 0  # rounds of changes made so far

    def change(self, store: TaskStore, first: int) -> Status:
        """Set the status of the round's group of ``CHANGES`` tasks from ``first`` on."""
        group = self.rounds % (HALF // CHANGES)
        status = STATUSES[(self.rounds // (HALF // CHANGES)) % len(STATUSES)]
        for task in range(first + group * CHANGES, first + (group + 1) * CHANGES):
            store.set_status(task, status)
        return status

    def expected(self) -> dict[int, Status]:
        """Every task's status after ``rounds`` rounds of changes on both sides."""
        out = dict.fromkeys(range(1, TASKS + 1), Status.TODO)
        groups = HALF // CHANGES
        for done in range(self.rounds):
            status = STATUSES[(done // groups) % len(STATUSES)]
            for offset in range(CHANGES):
                task = 1 + (done % groups) * CHANGES + offset
                out[task] = out[task + HALF] = status
        return out


@dataclass(frozen=True, slots=True)
class SyncResult:
    remote: str
    scenario: str  # "nothing" or "changes"
    sync: Stats
    plain_fetch: Stats | None  # `git fetch` of the tasks refs alone (scenario "nothing")


def fetch_command(pair: Pair) -> list[str]:
    return [
        "git",
        "-C",
        str(pair.ours_path),
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "origin",
        "+refs/tasks/*:refs/tasksync/remotes/origin/*",
    ]


def sync_nothing(pairs: Sequence[Pair], plan: Plan) -> list[SyncResult]:
    """Syncs with nothing to do, alternating remotes; a plain fetch after each one."""
    samples: dict[str, tuple[list[int], list[int]]] = {p.kind: ([], []) for p in pairs}
    order = list(pairs)
    for i in range(plan.warmup + plan.nothing):
        for pair in order:
            elapsed, result = timed(pair.ours.sync)
            fetched, _ = timed(partial(subprocess.run, fetch_command(pair), check=True))
            if i >= plan.warmup:
                samples[pair.kind][0].append(elapsed)
                samples[pair.kind][1].append(fetched)
            check_nothing(pair, result)
        order.reverse()
    return [
        SyncResult(kind, "nothing", stats(sync_ns), stats(fetch_ns))
        for kind, (sync_ns, fetch_ns) in samples.items()
    ]


def check_nothing(pair: Pair, result: object) -> None:
    from tasksync.sync import SyncResult as Done

    assert isinstance(result, Done), result
    if result.pushed is not None or (result.merged and result.merged.outcome != "up-to-date"):
        raise RuntimeError(f"{pair.kind}: a sync with nothing to do moved something: {result}")


def sync_changes(pairs: Sequence[Pair], plan: Plan) -> list[SyncResult]:
    """Each round: the other clone changes 10 tasks and syncs, this one changes 10 of its own;
    then this one's sync (fetch, three-way merge, push) is timed. Remotes alternate."""
    from tasksync.sync import SyncResult as Done

    samples: dict[str, list[int]] = {p.kind: [] for p in pairs}
    order = list(pairs)
    for i in range(plan.warmup + plan.changes):
        for pair in order:
            pair.change(pair.theirs, HALF + 1)
            pair.theirs.sync()
            pair.change(pair.ours, 1)
            pair.rounds += 1
            elapsed, result = timed(pair.ours.sync)
            assert isinstance(result, Done)
            if result.merged is None or result.merged.outcome != "merged" or not result.pushed:
                raise RuntimeError(f"{pair.kind}: expected a merge and a push, got {result}")
            if result.merged.conflicts or result.attempts != 1:
                raise RuntimeError(f"{pair.kind}: unexpected conflicts or retries: {result}")
            if i >= plan.warmup:
                samples[pair.kind].append(elapsed)
        order.reverse()
    for pair in pairs:
        check_statuses(pair)
    return [SyncResult(kind, "changes", stats(ns), None) for kind, ns in samples.items()]


def check_statuses(pair: Pair) -> None:
    """Both clones and the remote end on the statuses the rounds predict."""
    pair.theirs.sync()
    want = pair.expected()
    for name, store in (("timed clone", pair.ours), ("other clone", pair.theirs)):
        have = {t.id.number: t.status for t in store.list(include_done=True)}
        if have != want:
            wrong = sorted(n for n in want if have.get(n) is not want[n])
            raise RuntimeError(f"{pair.kind}, {name}: wrong statuses of tasks {wrong[:10]}")
    remote = git(pair.ours_path, "ls-remote", "origin", "refs/tasks/main").split()[0]
    if remote != pair.theirs.head():
        raise RuntimeError(f"{pair.kind}: the remote's ref is {remote}, not the clones' tip")


def measure_sync(root: Path, plan: Plan) -> list[SyncResult]:
    source = seed(root)
    served = root / "served"
    served.mkdir()
    bare_remote(source, root / "remote.git")
    bare_remote(source, served / "project.git")
    results: list[SyncResult] = []
    with git_daemon(served, root / "daemon.log") as prefix:
        urls = {"bare": str(root / "remote.git"), "daemon": f"{prefix}/project.git"}
        pairs = []
        for kind in REMOTES:
            ours = root / "clones" / kind / "ours"
            ours.parent.mkdir(parents=True)
            pairs.append(
                Pair(
                    kind,
                    urls[kind],
                    clone(urls[kind], ours),
                    clone(urls[kind], ours.parent / "theirs"),
                    ours,
                )
            )
        for pair in pairs:
            assert pair.ours.hub is None, "a clone with tasks.hub none must use its own ref"
        print("sync with nothing to do ...", file=sys.stderr, flush=True)
        results += sync_nothing(pairs, plan)
        print(f"sync with {CHANGES} changes on each side ...", file=sys.stderr, flush=True)
        results += sync_changes(pairs, plan)
    return results


# -- hub latency ----------------------------------------------------------------------------------


def gray_walk(first: int) -> Iterator[tuple[int, Status]]:
    """Status changes among tasks ``first``.. after which the tasks never repeat a state: step
    ``i`` flips the task of the bit that changes between Gray codes ``i - 1`` and ``i``."""
    current: dict[int, Status] = {}
    for i in itertools.count(1):
        task = first + (i & -i).bit_length() - 1
        new = Status.IN_PROGRESS if current.get(task, Status.TODO) is Status.TODO else Status.TODO
        current[task] = new
        yield task, new


@dataclass(frozen=True, slots=True)
class HubResult:
    operation: str  # "status set" or "list"
    mode: str  # "handle", "open per call" or "CLI"
    session: Stats
    worktree: Stats

    @property
    def ratio(self) -> float:
        return self.session.median_ms / self.worktree.median_ms


@dataclass
class Side:
    name: str  # "session" or "worktree"
    path: Path
    walk: Iterator[tuple[int, Status]]
    final: dict[int, Status]

    def step(self) -> tuple[int, Status]:
        task, status = next(self.walk)
        self.final[task] = status
        return task, status


def alternate(
    sides: Sequence[Side],
    operations: dict[str, Callable[[Side], object]],
    count: int,
    warmup: int,
) -> dict[str, dict[str, list[int]]]:
    """Each operation on each side in turn, the order flipping from step to step."""
    samples: dict[str, dict[str, list[int]]] = {
        op: {side.name: [] for side in sides} for op in operations
    }
    order = list(sides)
    for i in range(warmup + count):
        for op, run in operations.items():
            for side in order:
                elapsed, _ = timed(partial(run, side))
                if i >= warmup:
                    samples[op][side.name].append(elapsed)
            order.reverse()
    return samples


def wall(command: Sequence[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def measure_hub(root: Path, plan: Plan, cli: Path) -> list[HubResult]:
    base = root / "hub"
    main = base / "project"
    build_store(main, layout(TASKS))
    git(main, "worktree", "add", "-q", "-b", "worktree", str(base / "worktree"))
    git(base, "clone", "-q", str(main), str(base / "session"))
    session = Side("session", base / "session", gray_walk(1), {})
    worktree = Side("worktree", base / "worktree", gray_walk(HALF + 1), {})
    handles = {side.name: TaskStore.open(side.path) for side in (session, worktree)}
    hub = handles["session"].hub
    assert hub is not None and hub.repo is not None and hub.path == main, hub
    assert handles["worktree"].hub is None
    assert handles["session"].store_dir == handles["worktree"].store_dir

    def handle_set(side: Side) -> object:
        return handles[side.name].set_status(*side.step())

    def handle_list(side: Side) -> object:
        return handles[side.name].list()

    def open_set(side: Side) -> object:
        return TaskStore.open(side.path).set_status(*side.step())

    def open_list(side: Side) -> object:
        return TaskStore.open(side.path).list()

    def cli_set(side: Side) -> object:
        task, status = side.step()
        wall([str(cli), "status", "set", str(task), status.value], side.path)
        return None

    def cli_list(side: Side) -> object:
        wall([str(cli), "list"], side.path)
        return None

    sides = (session, worktree)
    results: list[HubResult] = []
    modes: list[tuple[str, dict[str, Callable[[Side], object]], int, int]] = [
        ("handle", {"status set": handle_set, "list": handle_list}, plan.hub_steps, 0),
        ("open per call", {"status set": open_set, "list": open_list}, plan.hub_steps, 0),
        ("CLI", {"status set": cli_set, "list": cli_list}, plan.hub_cli, 2),
    ]
    for mode, operations, count, warmup in modes:
        print(f"hub latency, {mode} ...", file=sys.stderr, flush=True)
        samples = alternate(sides, operations, count, warmup or plan.hub_warmup)
        for op, by_side in samples.items():
            results.append(
                HubResult(op, mode, stats(by_side["session"]), stats(by_side["worktree"]))
            )
    have = {t.id.number: t.status for t in handles["worktree"].list(include_done=True)}
    for side in sides:
        for task, status in side.final.items():
            if have[task] is not status:
                raise RuntimeError(f"{side.name}: task {task} is {have[task]}, not {status}")
    return results


# -- output ---------------------------------------------------------------------------------------


REMOTE_NAMES = {"bare": "bare repository on disk", "daemon": "git daemon, 127.0.0.1"}
SCENARIO_NAMES = {"nothing": "nothing to do", "changes": f"{CHANGES} changes on each side"}


def tables(syncs: Sequence[SyncResult], hubs: Sequence[HubResult]) -> str:
    out = [
        "| remote | sync | median / p99 | min | plain `git fetch` median / p99 |",
        "|---|---|---:|---:|---:|",
    ]
    for kind in REMOTES:
        for r in (r for r in syncs if r.remote == kind):
            fetch = (
                "\u2013"
                if r.plain_fetch is None
                else f"{ms(r.plain_fetch.median_ms)} / {ms(r.plain_fetch.p99_ms)}"
            )
            out.append(
                f"| {REMOTE_NAMES[kind]} | {SCENARIO_NAMES[r.scenario]} "
                f"| {ms(r.sync.median_ms)} / {ms(r.sync.p99_ms)} | {ms(r.sync.min_ms)} "
                f"| {fetch} |"
            )
    out += [
        "",
        "| operation | how | session clone (hub) median / p99 | linked worktree median / p99 "
        "| session \u00f7 worktree |",
        "|---|---|---:|---:|---|",
    ]
    for h in hubs:
        out.append(
            f"| `{h.operation}` | {h.mode} "
            f"| {ms(h.session.median_ms)} / {ms(h.session.p99_ms)} "
            f"| {ms(h.worktree.median_ms)} / {ms(h.worktree.p99_ms)} "
            f"| {verdict(h.ratio, HUB_TARGET, at_most=True)} |"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    cli = find_cli(args.cli)
    session = Session("sync", args.quick, cli, plan)
    with sealed_environment() as root:
        session.measure_machine()
        syncs = measure_sync(root, plan)
        hubs = measure_hub(root, plan, cli)
    text = tables(syncs, hubs)
    session.finish(
        args.out,
        text,
        {
            "tasks": TASKS,
            "changes_per_side": CHANGES,
            "target_hub_vs_worktree": HUB_TARGET,
            "sync": [asdict(r) for r in syncs],
            "hub": [
                {
                    **asdict(h),
                    "session_vs_worktree": round(h.ratio, 3),
                    "met": h.ratio <= HUB_TARGET,
                }
                for h in hubs
            ],
        },
        about=(
            f"sync: {plan.nothing} syncs with nothing to do and {plan.changes} with {CHANGES} "
            f"changes on each side per remote, after {plan.warmup} warm-up rounds; hub: "
            f"{plan.hub_steps} steps in process and {plan.hub_cli} processes per operation and "
            "side. "
        ),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples (about a tenth)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--cli", type=Path, help="the git-tasks script (default: next to python)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
