"""Migrating: ``git tasks migrate --history`` on a 1,000-commit history of the in-tree files.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_migrate.py            # full run, under a minute
    python benchmarks/bench_migrate.py --quick    # fewer runs
    python benchmarks/bench_migrate.py --profile  # where the time of one run goes, no table

A repository in the old backend's layout is built with ``git fast-import``: 1,000 commits on
``main`` by five authors over three years, each a change an old-backend user would make
(mostly status changes, then new tasks with their spec files, spec edits, description bullet
edits, and one commit in ten touching only other files), growing ``process/tasks.md`` (a
heading, prose and a fenced example) from 20 tasks to a couple of hundred, each with a spec.
The working tree is checked out with one uncommitted edit on top.

Each run imports that history into a fresh copy of the repository (copied outside the timing):

1. ``TaskStore.open(path).migrate(history=True)`` in this process;
2. ``git-tasks migrate --history --json`` as a process (start-up included), alternating with 1;
3. the same migrate again on a migrated copy, which finds nothing to import (a re-run).

Throughput is commits of HEAD's history examined per second (the median run). Every import is
checked before anything is timed: one import commit per commit that changed the task files,
oldest first, each with its source commit's author, date and blobs, then the working tree's
edit; ``process/tasks.md`` on the ref byte for byte the working tree's; the re-run writes
nothing. Prints a markdown table and writes a JSON file. Nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_status_set import (
    Session,
    Stats,
    find_cli,
    ms,
    sealed_environment,
    stats,
)

from tasksync import TaskStore
from tasksync.model import slugify

COMMITS = 1_000
FIRST_TASKS = 20
SEED = 20_260_301
DEFAULT_OUT = Path("benchmarks/results/migrate.json")
REF = "refs/tasks/main"
AUTHORS = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov")
START = 1_609_459_200  # 2021-01-01
KINDS = ("status", "create", "spec", "description", "other")
KIND_WEIGHTS = (45, 20, 15, 10, 10)
CHECKBOXES = (" ", "+", "-", "x", "~", "!")
HEADING = (
    "# Tasks\n"
    "\n"
    "Tasks of the project. Each task line looks like this:\n"
    "\n"
    "```\n"
    "- [ ] Example task [#999](process/tasks/999-example-task.md)\n"
    "```\n"
    "\n"
)


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int  # in-process imports timed, and as many git-tasks processes
    reruns: int  # re-runs with nothing to import timed


FULL = Plan(runs=7, reruns=7)
QUICK = Plan(runs=2, reruns=2)


# -- the history ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Task:
    number: int
    checkbox: str
    title: str
    bullets: list[str]

    @property
    def spec_path(self) -> str:
        return f"process/tasks/{self.number:03d}-{slugify(self.title)}.md"

    def line(self) -> str:
        bullets = "".join(f"  - {text}\n" for text in self.bullets)
        return f"- [{self.checkbox}] {self.title} [#{self.number:03d}]({self.spec_path})\n{bullets}"


@dataclass(frozen=True, slots=True)
class Built:
    path: Path
    commits: list[str]  # oldest first
    task_commits: list[str]  # those that changed a task file, oldest first
    authors: dict[str, tuple[str, int]]  # commit -> (author name, author time)
    tasks: int  # tasks in the final tasks.md
    index_bytes: int


def index_text(tasks: Sequence[Task]) -> str:
    return HEADING + "".join(task.line() for task in tasks)


def spec_text(task: Task, notes: int) -> str:
    extra = "".join(f"- note {n}: more detail about the work\n" for n in range(notes))
    return (
        f"# Task #{task.number:03d}: {task.title}\n\n## Context\n\nWhy {task.title.lower()} "
        f"matters.\n\n## Requirements\n\n{extra}"
    )


def blob(path: str, text: str) -> bytes:
    data = text.encode("utf-8")
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def build(root: Path, commits: int) -> Built:
    """The repository: ``commits`` commits made with one ``git fast-import``."""
    rng = random.Random(SEED)
    path = root / "project"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    tasks = [Task(n, rng.choice(CHECKBOXES[:3]), f"Task number {n}", []) for n in range(1, 21)]
    notes = {task.number: 0 for task in tasks}
    stream = io.BytesIO()
    when = START
    touching: list[bool] = []
    authors: list[tuple[str, int]] = []
    for mark in range(1, commits + 1):
        when += rng.randint(3_600, 2 * 86_400)
        author = rng.choice(AUTHORS)
        files: list[bytes] = []
        if mark == 1:
            kind, message = "first", "Add the task list"
            files = [blob(t.spec_path, spec_text(t, 0)) for t in tasks]
        else:
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            message = ""
        if kind == "status":
            task = rng.choice(tasks)
            task.checkbox = rng.choice([c for c in CHECKBOXES if c != task.checkbox])
            message = f"Task #{task.number:03d}: status [{task.checkbox}]"
        elif kind == "create":
            number = tasks[-1].number + 1
            task = Task(number, " ", f"Task number {number}", [])
            tasks.append(task)
            notes[number] = 0
            files.append(blob(task.spec_path, spec_text(task, 0)))
            message = f"Add task #{number:03d}"
        elif kind == "spec":
            task = rng.choice(tasks)
            notes[task.number] += 1
            files.append(blob(task.spec_path, spec_text(task, notes[task.number])))
            message = f"Task #{task.number:03d}: spec"
        elif kind == "description":
            task = rng.choice(tasks)
            task.bullets = [*task.bullets[-1:], f"step {mark}"]
            message = f"Task #{task.number:03d}: description"
        elif kind == "other":
            files.append(blob("README.md", f"# Project\n\nRevision {mark}.\n"))
            message = f"Revision {mark} of the readme"
        if kind != "other":
            files.append(blob("process/tasks.md", index_text(tasks)))
        touching.append(kind != "other")
        authors.append((author, when))
        email = author.split()[0].lower() + "@example.com"
        data = message.encode()
        stream.write(
            f"commit refs/heads/main\nmark :{mark}\n"
            f"author {author} <{email}> {when} +0000\n"
            f"committer {author} <{email}> {when} +0000\n"
            f"data {len(data)}\n".encode()
            + data
            + b"\n"
        )
        stream.write(b"".join(files) + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=stream.getvalue(), check=True)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=path, check=True)
    ids = git(path, "rev-list", "--reverse", "main").split()
    assert len(ids) == commits
    # One uncommitted edit: the working tree's state is imported last.
    tasks[0].checkbox = "x" if tasks[0].checkbox != "x" else " "
    final = index_text(tasks)
    (path / "process/tasks.md").write_text(final, encoding="utf-8")
    return Built(
        path,
        ids,
        [c for c, touched in zip(ids, touching, strict=True) if touched],
        dict(zip(ids, authors, strict=True)),
        len(tasks),
        len(final.encode()),
    )


def copy(built: Built, root: Path, name: str) -> Path:
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(built.path, target, symlinks=True)
    return target


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout


# -- checks ---------------------------------------------------------------------------------------


def check(built: Built, path: Path) -> None:
    """The ref holds the history the generator predicts, and the working tree's file."""
    log = git(path, "log", "--reverse", "--format=%H %an %at %B%x00", REF).split("\x00")
    entries = [entry.strip() for entry in log if entry.strip()]
    assert len(entries) == len(built.task_commits) + 1, (len(entries), len(built.task_commits))
    for entry, source in zip(entries, built.task_commits, strict=False):
        imported, name_first, name_last, at, *_ = entry.split()
        assert f"Tasksync-Source: {source}" in entry, entry
        assert (f"{name_first} {name_last}", int(at)) == built.authors[source], entry
        for file in ("process/tasks.md", "process/tasks"):
            assert git(path, "rev-parse", f"{imported}:{file}") == git(
                path, "rev-parse", f"{source}:{file}"
            )
    assert "Tasksync-Source: worktree" in entries[-1]
    on_ref = subprocess.run(
        ["git", "show", f"{REF}:process/tasks.md"], cwd=path, capture_output=True, check=True
    ).stdout
    assert on_ref == (path / "process/tasks.md").read_bytes()


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    measurement: str
    runs: Stats
    commits_per_second: float  # commits examined per second, at the median run


def timed(run: Callable[[], object]) -> int:
    started = time.perf_counter_ns()
    run()
    return time.perf_counter_ns() - started


def measure(built: Built, root: Path, plan: Plan, cli: Path) -> list[Result]:
    """In-process imports and git-tasks processes alternate round by round (which goes first
    flips), each on a fresh copy made before either is timed; then the re-runs."""
    commits = len(built.commits)
    command = [str(cli), "migrate", "--history", "--json"]
    samples: list[int] = []
    processes: list[int] = []
    for n in range(plan.runs):
        here, there = copy(built, root, "run"), copy(built, root, "cli")

        def in_process(path: Path = here) -> None:
            samples.append(timed(lambda: TaskStore.open(path).migrate(history=True)))

        def as_process(path: Path = there) -> None:
            processes.append(
                timed(lambda: subprocess.run(command, cwd=path, check=True, capture_output=True))
            )

        for step in (in_process, as_process) if n % 2 == 0 else (as_process, in_process):
            step()
        if n == 0:
            check(built, here)
            check(built, there)
    reruns: list[int] = []
    for _ in range(plan.reruns):
        before = git(here, "rev-parse", REF)
        reruns.append(timed(lambda: TaskStore.open(here).migrate(history=True)))
        assert git(here, "rev-parse", REF) == before, "a re-run moved the ref"

    def result(name: str, values: list[int]) -> Result:
        found = stats(values)
        return Result(name, found, commits / (found.median_ms / 1000))

    return [
        result("in process", samples),
        result("git-tasks process", processes),
        result("re-run, nothing to import", reruns),
    ]


def table(built: Built, results: Sequence[Result]) -> str:
    out = [
        "| measurement | runs | median / min / max | commits/s (median) |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        out.append(
            f"| {r.measurement} | {r.runs.samples} "
            f"| {ms(r.runs.median_ms)} / {ms(r.runs.min_ms)} / {ms(r.runs.max_ms)} "
            f"| {r.commits_per_second:,.0f} |"
        )
    out.append("")
    out.append(
        f"{len(built.commits):,} commits, {len(built.task_commits):,} of them changing the task "
        f"files (+1 working-tree edit imported); final tasks.md {built.tasks} tasks, "
        f"{built.index_bytes / 1024:.0f} KiB"
    )
    return "\n".join(out)


def profile(built: Built, root: Path) -> None:
    path = copy(built, root, "profiled")
    profiler = cProfile.Profile()
    profiler.enable()
    TaskStore.open(path).migrate(history=True)
    profiler.disable()
    for sort in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(25)
        print(out.getvalue())


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    cli = find_cli(args.cli)
    session = Session("migrate", args.quick, cli, plan)
    with sealed_environment() as root:
        session.measure_machine()
        built = build(root, args.commits)
        if args.profile:
            profile(built, root)
            return
        results = measure(built, root, plan, cli)
    text = table(built, results)
    session.finish(
        args.out,
        text,
        {
            "commits": len(built.commits),
            "task_commits": len(built.task_commits),
            "final_tasks": built.tasks,
            "final_index_bytes": built.index_bytes,
            "results": [asdict(r) for r in results],
        },
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--commits", type=int, default=COMMITS, help="commits in the history")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--cli", type=Path, help="the git-tasks script (default: next to python)")
    parser.add_argument("--profile", action="store_true", help="cProfile of one run, no table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
