"""Latency of ``status set``: tasksync against the git floor, the working tree and the CLI.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_status_set.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_status_set.py --quick    # smaller run, under a minute
    python benchmarks/bench_status_set.py --profile  # where the time goes, no table

At 100, 1,000 and 10,000 tasks (``process/tasks.md`` with one line per task and one spec file
per task under ``process/tasks/``) it measures, side by side:

1. in-process: ``TaskStore.set_status`` through one long-lived handle;
2. git floor: the same bytes written as blob, trees (unchanged subtrees reused), commit and a
   compare-and-swap of the ref, with pygit2 directly and no parsing; in-process, the floor and
   a second floor (the control, which shows what the harness resolves) write three refs of one
   repository, their tasks.md differing only in the heading's word;
3. status quo: tasks.md in a working tree edited and saved, then ``git add`` and ``git commit``
   as subprocesses, in a repository holding only the task files and in one with 10,000 other
   working-tree files;
4. CLI: ``git-tasks status set ID STATUS`` as a process, against a bare
   ``python -c "import pygit2, click"`` with the same interpreter, and against the git floor as
   a process (``cli_floor.py``: the same imports, then tasks.md read from the ref and written
   back with one character changed), which shows how much of the CLI's budget git itself takes.

Each write alternates one task between TODO and IN-PROGRESS; the task written next follows a
binary Gray code over neighbouring tasks in the middle of the file, so every write produces a
tasks.md never seen before (re-writing an existing blob would let git skip the write). Every
measurement follows this walk, and each repository is checked to end on the bytes it predicts.

Prints markdown tables with the ratios and their targets and writes a JSON file. Nothing is
asserted about timing. Git runs with a pinned identity and without user or system config; all
repositories live in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import json
import math
import os
import platform
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import pygit2
from cli_floor import tip_trees, write_index

from tasksync import Status, TaskStore

REF = "refs/tasks/main"
# The refs the git floor and its control write, beside tasksync's REF in the same repository,
# and the headings of their tasks.md (as long as tasksync's "Tasks", so every offset is equal).
FLOOR_REF, FLOOR_HEADING = "refs/tasks/floor", "Floor"
CONTROL_REF, CONTROL_HEADING = "refs/tasks/control", "Check"
CLI_FLOOR = Path(__file__).with_name("cli_floor.py")  # the floor as a process
INDEX_PATH = "process/tasks.md"
SIZES = (100, 1_000, 10_000)
STATUS_QUO_EXTRA_FILES = 10_000
STATUS_QUO_BIG_SIZE = 1_000
FIRST, SECOND = Status.TODO, Status.IN_PROGRESS
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Bench Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}
TARGETS = {"in_process_vs_floor": 1.3, "cli_vs_bare_import": 1.2}
STATUS_QUO_TARGETS = {"tiny": 5.0, "big": 20.0}
DEFAULT_OUT = Path("benchmarks/results/status_set.json")


@dataclass(frozen=True, slots=True)
class Plan:
    """How many timed iterations each measurement runs, and its warm-up."""

    in_process: dict[int, int]  # from this many tasks up -> iterations of in-process and floor
    status_quo: int
    cli: int
    warmup_steps: int  # at least this many untimed steps before timing starts,
    warmup_seconds: float  # and at least this long: fresh repositories start slow on some VMs
    cli_warmup: int

    def iterations(self, size: int) -> int:
        return self.in_process[max((k for k in self.in_process if k <= size), default=0)]


FULL = Plan(
    in_process={0: 3000, 5_000: 1500},
    status_quo=300,
    cli=60,
    warmup_steps=30,
    warmup_seconds=5.0,
    cli_warmup=3,
)
QUICK = Plan(
    in_process={0: 300, 5_000: 150},
    status_quo=30,
    cli=8,
    warmup_steps=10,
    warmup_seconds=1.0,
    cli_warmup=2,
)


# -- the task files -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """The task files of a store with ``size`` tasks, all TODO."""

    size: int
    index: bytes
    checkbox_at: dict[int, int]  # task number -> byte offset of its checkbox character
    specs: tuple[tuple[str, bytes], ...]  # file name under process/tasks/ -> content


def layout(size: int, heading: str = "Tasks") -> Layout:
    """``size`` tasks under the heading ``# {heading}``: layouts whose headings differ but have
    the same length share every offset and spec file, and no tasks.md."""
    lines = [f"# {heading}\n", "\n"]
    offset = sum(len(line) for line in lines)
    checkbox_at: dict[int, int] = {}
    specs: list[tuple[str, bytes]] = []
    for number in range(1, size + 1):
        digits = f"{number:03d}"
        name = f"{digits}-title-{number}.md"
        line = f"- [ ] Title {number} [#{digits}](process/tasks/{name})\n"
        checkbox_at[number] = offset + 3
        offset += len(line)
        lines.append(line)
        spec = (
            f"# Task #{digits}: Title {number}\n\n## Context\n\n"
            f"Why task {number} exists and what it should change.\n\n"
            f"## Acceptance\n\n- Task {number} is done when its checks pass.\n"
        )
        specs.append((name, spec.encode()))
    return Layout(size, "".join(lines).encode(), checkbox_at, tuple(specs))


Step = tuple[int, Status]  # task number, status to set


def walk(size: int) -> Iterator[Step]:
    """Status changes after which tasks.md never repeats an earlier state.

    Step ``i`` flips the task of the bit that changes between Gray codes ``i - 1`` and ``i``
    between TODO and IN-PROGRESS; bit ``k`` is task ``size // 2 + k``.
    """
    base = size // 2
    current: dict[int, Status] = {}
    for i in itertools.count(1):
        task = base + (i & -i).bit_length() - 1
        if task > size:
            raise ValueError(f"{size} tasks are too few for {i} distinct states")
        new = SECOND if current.get(task, FIRST) is FIRST else FIRST
        current[task] = new
        yield task, new


def take(size: int, count: int) -> list[Step]:
    return list(itertools.islice(walk(size), count))


def applied(lay: Layout, steps: Sequence[Step]) -> bytes:
    data = bytearray(lay.index)
    for task, status in steps:
        data[lay.checkbox_at[task]] = ord(status.checkbox)
    return bytes(data)


def message(task: int, status: Status) -> str:
    old = FIRST if status is SECOND else SECOND
    return (
        f"#{task:03d}: status {old.value} \u2192 {status.value}\n\n"
        f"Tasksync-Operation: set-status\nTasksync-Task: #{task:03d}\n"
        f"Tasksync-Status: {old.value} -> {status.value}\n"
    )


# -- repositories ---------------------------------------------------------------------------------


def build_store(path: Path, lay: Layout, ref: str = REF) -> None:
    """A repository with one commit on main and the task files on ``ref``, as after init; a
    repository already at ``path`` gets just the ref."""
    signature = pygit2.Signature(IDENTITY["GIT_AUTHOR_NAME"], IDENTITY["GIT_AUTHOR_EMAIL"])
    if (path / ".git").is_dir():
        repo = pygit2.Repository(str(path))
    else:
        repo = pygit2.init_repository(str(path), initial_head="main")
        readme = repo.TreeBuilder()
        readme.insert("README.md", repo.create_blob(b"# Project\n"), pygit2.GIT_FILEMODE_BLOB)
        repo.create_commit("HEAD", signature, signature, "Initial commit", readme.write(), [])
    specs = repo.TreeBuilder()
    for name, data in lay.specs:
        specs.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    process = repo.TreeBuilder()
    process.insert("tasks.md", repo.create_blob(lay.index), pygit2.GIT_FILEMODE_BLOB)
    process.insert("tasks", specs.write(), pygit2.GIT_FILEMODE_TREE)
    root = repo.TreeBuilder()
    root.insert("process", process.write(), pygit2.GIT_FILEMODE_TREE)
    commit = repo.create_commit(None, signature, signature, "tasks: imported", root.write(), [])
    reflog = Path(repo.path) / "logs" / ref  # `git tasks init` creates it: every update is logged
    reflog.parent.mkdir(parents=True, exist_ok=True)
    reflog.touch()
    repo.references.create(ref, commit)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def build_working_tree(path: Path, lay: Layout, extra_files: int) -> int:
    """A repository with the task files (and ``extra_files`` others) committed and packed.

    Returns the number of files in its working tree.
    """
    specs = path / "process" / "tasks"
    specs.mkdir(parents=True)
    (path / INDEX_PATH).write_bytes(lay.index)
    (path / "README.md").write_bytes(b"# Project\n")
    for name, data in lay.specs:
        (specs / name).write_bytes(data)
    for i in range(extra_files):
        module = path / "src" / f"pkg{i % 100:02d}" / f"module_{i:05d}.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(f'"""Module {i}."""\n\n\ndef f{i}() -> int:\n    return {i}\n')
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "-c", "gc.auto=0", "commit", "-q", "-m", "Initial commit")
    git(path, "gc", "-q")  # packed, as a repository that has lived a while is
    return 2 + len(lay.specs) + extra_files


def remove_repository(path: Path) -> None:
    """Delete a repository once any `git gc --auto` that a commit started in the background ends."""
    deadline = time.monotonic() + 120
    while (path / ".git" / "gc.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(path)


def ref_blob(path: Path, spec: str) -> str:
    repo = pygit2.Repository(str(path))
    return str(repo.revparse_single(spec).id)


def check_same_bytes(path: Path, spec: str, expected: bytes, what: str) -> None:
    found = ref_blob(path, spec)
    wanted = str(pygit2.hash(expected))
    if found != wanted:
        raise RuntimeError(f"{what}: {spec} is {found}, expected {wanted}")


# -- the operations -------------------------------------------------------------------------------


Op = Callable[[int, Status], object]


def tasksync_op(path: Path) -> Op:
    # The floor never packs: neither does tasksync here (benchmarks/bench_disk.py measures
    # packing), so no background gc lands in the middle of the timings.
    git(path, "config", "tasks.autoPack", "false")
    store = TaskStore.open(path)

    def op(task: int, status: Status) -> object:
        return store.set_status(task, status)

    return op


def floor_op(path: Path, lay: Layout, ref: str = REF) -> Op:
    """Blob, two trees, commit, compare-and-swap of ``ref``: what any status set has to write."""
    repo = pygit2.Repository(str(path))
    data = bytearray(lay.index)
    name, email = IDENTITY["GIT_AUTHOR_NAME"], IDENTITY["GIT_AUTHOR_EMAIL"]

    def op(task: int, status: Status) -> object:
        data[lay.checkbox_at[task]] = ord(status.checkbox)
        tip = tip_trees(repo, ref)
        signature = pygit2.Signature(name, email)
        return write_index(repo, tip, bytes(data), signature, message(task, status))

    return op


def status_quo_op(path: Path, lay: Layout) -> Op:
    """Edit tasks.md in the working tree, save it, ``git add`` it and ``git commit``."""
    index = path / INDEX_PATH

    def op(task: int, status: Status) -> object:
        data = bytearray(index.read_bytes())
        data[lay.checkbox_at[task]] = ord(status.checkbox)
        index.write_bytes(data)
        git(path, "add", INDEX_PATH)
        git(path, "commit", "-q", "-m", message(task, status))
        return None

    return op


# -- timing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stats:
    samples: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float


def stats(samples_ns: Sequence[int]) -> Stats:
    ms = sorted(s / 1e6 for s in samples_ns)
    p99 = ms[max(0, math.ceil(0.99 * len(ms)) - 1)]
    return Stats(len(ms), statistics.median(ms), p99, statistics.fmean(ms), ms[0], ms[-1])


def timed(op: Op, step: Step) -> int:
    started = time.perf_counter_ns()
    op(*step)
    return time.perf_counter_ns() - started


def interleaved(
    ops: Sequence[Op], steps: Iterator[Step], count: int, plan: Plan
) -> tuple[list[list[int]], list[Step]]:
    """Run every op on each step in turn, so that all see the same machine load; the order
    goes through every permutation in turn (for two ops: alternating which goes first), so
    each op runs in each position equally often. ``count`` timed steps follow the warm-up.
    Returns the samples of each op and the steps taken (warm-up included)."""
    os.sync()  # the repositories just built are written out before timing starts
    samples: list[list[int]] = [[] for _ in ops]
    taken: list[Step] = []
    orders = itertools.cycle(itertools.permutations(range(len(ops))))
    started = time.monotonic()
    warm = True
    for step in steps:
        if warm and len(taken) >= plan.warmup_steps:
            warm = time.monotonic() - started < plan.warmup_seconds
        taken.append(step)
        for which in next(orders):
            elapsed = timed(ops[which], step)
            if not warm:
                samples[which].append(elapsed)
        if len(samples[0]) >= count:
            break
    return samples, taken


def wall(command: Sequence[str], cwd: Path) -> int:
    started = time.perf_counter_ns()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter_ns() - started


# -- the measurements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SizeResult:
    tasks: int
    tasks_md_bytes: int
    in_process: Stats
    floor: Stats
    cli: Stats
    bare_import: Stats
    control: Stats  # the floor again, on a third ref of the same repository
    floor_process: Stats  # the floor as a process (benchmarks/cli_floor.py)

    @property
    def floor_ratio(self) -> float:
        return self.in_process.median_ms / self.floor.median_ms

    @property
    def control_ratio(self) -> float:
        """How far two identical floors differ: what the harness can resolve at this size."""
        return self.control.median_ms / self.floor.median_ms

    @property
    def cli_ratio(self) -> float:
        return self.cli.median_ms / self.bare_import.median_ms

    @property
    def floor_process_ratio(self) -> float:
        """What git's own reading and writing of tasks.md leaves of the CLI's budget."""
        return self.floor_process.median_ms / self.bare_import.median_ms


@dataclass(frozen=True, slots=True)
class StatusQuoResult:
    repository: str  # "tiny" (task files only) or "big" (and STATUS_QUO_EXTRA_FILES more)
    tasks: int
    working_tree_files: int
    status_quo: Stats  # in a loop of its own
    in_process: Stats  # the in-process measurement at the same size
    status_quo_interleaved: Stats  # alternating step by step with tasksync on its own store
    in_process_interleaved: Stats
    target: float | None

    @property
    def ratio(self) -> float:
        return self.status_quo.median_ms / self.in_process.median_ms

    @property
    def interleaved_ratio(self) -> float:
        return self.status_quo_interleaved.median_ms / self.in_process_interleaved.median_ms


def measure_size(
    root: Path, lay: Layout, plan: Plan, cli: Path, interpreter: str
) -> tuple[Stats, Stats, Stats, Stats, Stats, Stats]:
    # tasksync, the floor and the control write to three refs of one repository, so that
    # every write lands in the same object and ref directories: on this kind of virtual disk
    # the same writes cost up to 2-3x more in one new repository than in another made a
    # moment later (see docs/performance.md). Their tasks.md differ in the heading alone, so
    # no write of one is a blob or tree another already wrote.
    shared = root / "side-by-side"
    floor_lay, control_lay = layout(lay.size, FLOOR_HEADING), layout(lay.size, CONTROL_HEADING)
    build_store(shared, lay)
    build_store(shared, floor_lay, FLOOR_REF)
    build_store(shared, control_lay, CONTROL_REF)
    ops = [
        tasksync_op(shared),
        floor_op(shared, floor_lay, FLOOR_REF),
        floor_op(shared, control_lay, CONTROL_REF),
    ]
    (in_process, floor, control), steps = interleaved(
        ops, walk(lay.size), plan.iterations(lay.size), plan
    )
    check_same_bytes(shared, f"{REF}:{INDEX_PATH}", applied(lay, steps), "in-process")
    check_same_bytes(shared, f"{FLOOR_REF}:{INDEX_PATH}", applied(floor_lay, steps), "floor")
    check_same_bytes(shared, f"{CONTROL_REF}:{INDEX_PATH}", applied(control_lay, steps), "control")

    # The CLI, the bare import and the git floor as a process, in turn in every order; the
    # CLI and the floor process write two refs of one repository, as above.
    processes = root / "cli"
    build_store(processes, lay)
    build_store(processes, floor_lay, FLOOR_REF)
    cli_steps = take(lay.size, plan.cli_warmup + plan.cli)
    bare = [interpreter, "-c", "import pygit2, click"]
    samples: tuple[list[int], list[int], list[int]] = ([], [], [])
    orders = itertools.cycle(itertools.permutations(range(3)))
    for i, (task, status) in enumerate(cli_steps):
        commands = (
            [str(cli), "status", "set", str(task), status.value],
            bare,
            [
                interpreter,
                str(CLI_FLOOR),
                str(processes),
                FLOOR_REF,
                str(floor_lay.checkbox_at[task]),
                status.checkbox,
            ],
        )
        for which in next(orders):
            elapsed = wall(commands[which], processes)
            if i >= plan.cli_warmup:
                samples[which].append(elapsed)
    check_same_bytes(processes, f"{REF}:{INDEX_PATH}", applied(lay, cli_steps), "CLI")
    floor_bytes = applied(floor_lay, cli_steps)
    check_same_bytes(processes, f"{FLOOR_REF}:{INDEX_PATH}", floor_bytes, "floor process")
    for name in ("side-by-side", "cli"):
        shutil.rmtree(root / name)
    cli_ns, bare_ns, floor_ns = samples
    return (
        stats(in_process),
        stats(floor),
        stats(cli_ns),
        stats(bare_ns),
        stats(control),
        stats(floor_ns),
    )


def measure_status_quo(
    root: Path, lay: Layout, extra_files: int, plan: Plan
) -> tuple[int, Stats, Stats, Stats]:
    """The working-tree workflow in a loop of its own, then alternating step by step with
    tasksync on a store of its own (the walk goes on, so git never sees a state twice)."""
    path = root / "working-tree"
    path.mkdir()
    files = build_working_tree(path, lay, extra_files)
    steps = walk(lay.size)  # one walk: the working tree never sees a state twice
    quo = status_quo_op(path, lay)
    (alone,), first = interleaved([quo], steps, plan.status_quo, plan)
    build_store(root / "paired", lay)
    paired, second = interleaved([quo, tasksync_op(root / "paired")], steps, plan.status_quo, plan)
    check_same_bytes(path, f"HEAD:{INDEX_PATH}", applied(lay, first + second), "status quo")
    check_same_bytes(root / "paired", f"{REF}:{INDEX_PATH}", applied(lay, second), "in-process")
    remove_repository(path)
    remove_repository(root / "paired")
    return files, stats(alone), stats(paired[0]), stats(paired[1])


# -- environment and machine ----------------------------------------------------------------------


@contextlib.contextmanager
def sealed_environment() -> Iterator[Path]:
    """A temporary directory as HOME, no user or system git config, a pinned identity."""
    with tempfile.TemporaryDirectory(prefix="tasksync-bench-") as name:
        root = Path(name)
        home = root / "home"
        home.mkdir()
        saved = dict(os.environ)
        for key in list(os.environ):
            if key.startswith(("GIT_", "TASKSYNC_")):
                del os.environ[key]
        os.environ.update(IDENTITY)
        os.environ["HOME"] = str(home)
        os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
        os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
        os.environ["GIT_CONFIG_GLOBAL"] = str(home / ".gitconfig")
        # Child interpreters cache bytecode, as an installed package has it, in the temp dir.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        levels = (
            pygit2.enums.ConfigLevel.GLOBAL,
            pygit2.enums.ConfigLevel.XDG,
            pygit2.enums.ConfigLevel.SYSTEM,
        )
        for level in levels:
            pygit2.settings.search_path[level] = str(home)
        try:
            yield root
        finally:
            os.environ.clear()
            os.environ.update(saved)


def find_cli(given: Path | None) -> Path:
    """The git-tasks script, with tasksync's modules compiled to bytecode first: an install
    compiles them, but an editable one run with PYTHONDONTWRITEBYTECODE set would compile
    every module at every start, and the CLI timings would measure that."""
    if given is not None:
        found: str | None = str(given.absolute())
    else:
        found = shutil.which("git-tasks", path=str(Path(sys.executable).parent)) or shutil.which(
            "git-tasks"
        )
    if found is None:
        raise SystemExit("git-tasks not found next to this interpreter nor on PATH; pass --cli")
    script = Path(found).absolute()
    import tasksync

    package = Path(tasksync.__file__ or "tasksync").parent
    subprocess.run(
        [interpreter_of(script), "-m", "compileall", "-q", str(package)],
        check=False,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    return script


def interpreter_of(script: Path) -> str:
    """The interpreter on the script's ``#!`` line, so the bare import uses the same one."""
    with script.open("rb") as handle:
        first = handle.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        words = first[2:].split()
        if len(words) == 1 and Path(words[0]).is_file():
            return words[0]
    return sys.executable


def machine(interpreter: str) -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git_version = subprocess.run(
        ["git", "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "interpreter": interpreter,
        "pygit2": version("pygit2"),
        "libgit2": pygit2.LIBGIT2_VERSION,
        "click": version("click"),
        "filelock": version("filelock"),
        "tasksync": version("tasksync"),
        "tasksync_source": source_revision(),
        "git": git_version,
    }


def source_revision() -> str:
    """The commit of the tasksync checkout being measured, ``+changes`` when it differs."""
    import tasksync

    package = Path(tasksync.__file__).parent

    def ask(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=package, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = ask("rev-parse", "--short=12", "HEAD")
    if not commit:
        return "not a git checkout"
    return commit + ("+changes" if ask("status", "--porcelain", "--", ".") else "")


def machine_line(info: Mapping[str, str], seconds: float, before: str, after: str) -> str:
    """The line under a benchmark's tables: the machine, the versions, the load."""
    return (
        f"{info['nproc']} CPUs, {info['python']}, pygit2 {info['pygit2']} "
        f"(libgit2 {info['libgit2']}), {info['git']}; tasksync {info['tasksync_source']}; "
        f"{seconds:.0f} s in all; load average {before} before, {after} after"
    )


def result_head(
    name: str,
    *,
    command: str,
    quick: bool,
    seconds: float,
    loads: tuple[str, str],
    info: Mapping[str, str],
    cli: Path,
    plan: object,
) -> dict[str, object]:
    """The fields every benchmark's JSON result starts with."""
    return {
        "benchmark": name,
        "command": command,
        "mode": "quick" if quick else "full",
        "seconds": round(seconds, 1),
        "load_average": {"before": loads[0], "after": loads[1]},
        "machine": dict(info),
        "cli": str(cli),
        "plan": asdict(plan),  # type: ignore[call-overload]
    }


class Session:
    """One benchmark run's bookkeeping: its command, the machine, the load and the time, from
    start to the printed machine line and the JSON result file."""

    def __init__(self, name: str, quick: bool, cli: Path, plan: object) -> None:
        self.name = name
        self.quick = quick
        self.cli = cli
        self.plan = plan
        self.command = shlex.join([sys.executable, *sys.argv])
        self.started = time.monotonic()
        self.load_before = load()
        self.info: dict[str, str] = {}

    def measure_machine(self) -> dict[str, str]:
        """Describe the machine (inside the sealed environment, as git will run there)."""
        self.info = machine(interpreter_of(self.cli))
        return self.info

    def finish(self, out: Path, table: str, fields: Mapping[str, object], about: str = "") -> None:
        """Print the tables and the machine line (after ``about``) and write the result."""
        load_after = load()
        seconds = time.monotonic() - self.started
        print(table)
        print("\n" + about + machine_line(self.info, seconds, self.load_before, load_after))
        head = result_head(
            self.name,
            command=self.command,
            quick=self.quick,
            seconds=seconds,
            loads=(self.load_before, load_after),
            info=self.info,
            cli=self.cli,
            plan=self.plan,
        )
        write_result(out, {**head, **fields, "table": table})


def write_result(out: Path, result: Mapping[str, object]) -> None:
    """Write a benchmark's JSON result file and say where it went."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


def load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


# -- output ---------------------------------------------------------------------------------------


def verdict(ratio: float, target: float, at_most: bool) -> str:
    met = ratio <= target if at_most else ratio >= target
    sign = "\u2264" if at_most else "\u2265"
    return f"{ratio:.2f}\u00d7 (target {sign} {target:g}\u00d7: {'met' if met else 'MISSED'})"


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def tables(sizes: Sequence[SizeResult], quo: Sequence[StatusQuoResult]) -> str:
    out = [
        "| tasks | tasks.md | in-process median / p99 | git floor median / p99 "
        "| in-process \u00f7 floor | control \u00f7 floor | CLI median | bare import median "
        "| CLI \u00f7 bare import | floor process median | floor process \u00f7 bare import |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in sizes:
        out.append(
            f"| {r.tasks:,} | {r.tasks_md_bytes / 1024:,.0f} KiB "
            f"| {ms(r.in_process.median_ms)} / {ms(r.in_process.p99_ms)} "
            f"| {ms(r.floor.median_ms)} / {ms(r.floor.p99_ms)} "
            f"| {verdict(r.floor_ratio, TARGETS['in_process_vs_floor'], at_most=True)} "
            f"| {r.control_ratio:.2f}\u00d7 "
            f"| {ms(r.cli.median_ms)} | {ms(r.bare_import.median_ms)} "
            f"| {verdict(r.cli_ratio, TARGETS['cli_vs_bare_import'], at_most=True)} "
            f"| {ms(r.floor_process.median_ms)} | {r.floor_process_ratio:.2f}\u00d7 |"
        )
    out += [
        "",
        "| working tree | tasks | files | status quo median / p99 | in-process median "
        "| status quo \u00f7 in-process | interleaved: status quo / in-process medians, ratio |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for q in quo:
        kind = (
            "task files only"
            if q.repository == "tiny"
            else f"task files + {STATUS_QUO_EXTRA_FILES:,} others"
        )
        ratio = (
            f"{q.ratio:.1f}\u00d7"
            if q.target is None
            else verdict(q.ratio, q.target, at_most=False)
        )
        out.append(
            f"| {kind} | {q.tasks:,} | {q.working_tree_files:,} "
            f"| {ms(q.status_quo.median_ms)} / {ms(q.status_quo.p99_ms)} "
            f"| {ms(q.in_process.median_ms)} | {ratio} "
            f"| {ms(q.status_quo_interleaved.median_ms)} / "
            f"{ms(q.in_process_interleaved.median_ms)}, {q.interleaved_ratio:.1f}\u00d7 |"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    cli = find_cli(args.cli)
    interpreter = interpreter_of(cli)
    size_results: list[SizeResult] = []
    quo_results: list[StatusQuoResult] = []
    session = Session("status_set", args.quick, cli, plan)
    with sealed_environment() as root:
        session.measure_machine()
        for size in args.sizes:
            lay = layout(size)
            print(f"measuring {size:,} tasks ...", file=sys.stderr, flush=True)
            measured = measure_size(root, lay, plan, cli, interpreter)
            size_results.append(SizeResult(size, len(lay.index), *measured))
            for kind, extra in (("tiny", 0), ("big", STATUS_QUO_EXTRA_FILES)):
                if kind == "big" and size != STATUS_QUO_BIG_SIZE:
                    continue
                files_note = f"{extra:,} more files" if extra else "task files only"
                print(f"status quo, {size:,} tasks, {files_note} ...", file=sys.stderr)
                files, alone, quo, paired = measure_status_quo(root, lay, extra, plan)
                target = STATUS_QUO_TARGETS[kind] if size == STATUS_QUO_BIG_SIZE else None
                quo_results.append(
                    StatusQuoResult(kind, size, files, alone, measured[0], quo, paired, target)
                )
    table = tables(size_results, quo_results)
    session.finish(
        args.out,
        table,
        {
            "targets": {**TARGETS, "status_quo_vs_in_process": STATUS_QUO_TARGETS},
            "sizes": [
                {
                    **asdict(r),
                    "in_process_vs_floor": round(r.floor_ratio, 3),
                    "control_vs_floor": round(r.control_ratio, 3),
                    "cli_vs_bare_import": round(r.cli_ratio, 3),
                    "floor_process_vs_bare_import": round(r.floor_process_ratio, 3),
                }
                for r in size_results
            ],
            "status_quo": [
                {
                    **asdict(q),
                    "status_quo_vs_in_process": round(q.ratio, 2),
                    "interleaved_status_quo_vs_in_process": round(q.interleaved_ratio, 2),
                }
                for q in quo_results
            ],
        },
    )


# -- two stores alike, side by side (bench_fsync.py, bench_ref_backend.py) -----------------------


def side_by_side_plans(cli: int = 0, quick_cli: int = 0) -> tuple[Plan, Plan]:
    """The full and the quick plan of a benchmark that writes two stores side by side: 1,000
    or 100 timed writes after at least 30 steps and 3 s, or 10 steps and 1 s, of warm-up; and
    ``cli`` or ``quick_cli`` timed CLI runs on each store after 3 or 2 untimed ones."""
    full = Plan(
        in_process={0: 1000},
        status_quo=0,
        cli=cli,
        warmup_steps=30,
        warmup_seconds=3.0,
        cli_warmup=3 if cli else 0,
    )
    quick = Plan(
        in_process={0: 100},
        status_quo=0,
        cli=quick_cli,
        warmup_steps=10,
        warmup_seconds=1.0,
        cli_warmup=2 if quick_cli else 0,
    )
    return full, quick


def unpacked_store(path: Path, lay: Layout, *settings: tuple[str, str]) -> Path:
    """:func:`build_store` with tasksync's packing off (no background gc lands in the timings)
    and each ``(key, value)`` of ``settings`` set with ``git config``."""
    build_store(path, lay)
    for key, value in (("tasks.autoPack", "false"), *settings):
        git(path, "config", key, value)
    return path


def set_status_op(store: TaskStore) -> Op:
    """``set_status`` through one long-lived handle."""

    def op(task: int, status: Status) -> object:
        return store.set_status(task, status)

    return op


def writes_side_by_side(
    stores: Mapping[Path, TaskStore], lay: Layout, plan: Plan
) -> list[list[int]]:
    """``set_status`` through each store's handle, interleaved step by step (:func:`interleaved`),
    then each store checked to end on the bytes the walk predicts and to pass ``git fsck``. The
    samples of each store, in the mapping's order."""
    samples, steps = interleaved(
        [set_status_op(store) for store in stores.values()],
        walk(lay.size),
        plan.iterations(lay.size),
        plan,
    )
    for path in stores:
        check_same_bytes(path, f"{REF}:{INDEX_PATH}", applied(lay, steps), path.name)
        git(path, "fsck", "--no-progress")
    return samples


Measured = TypeVar("Measured")


def each_size(
    root: Path, sizes: Sequence[int], measure: Callable[[Path, int], Measured]
) -> list[Measured]:
    """``measure(directory, size)`` for each size, in a new directory under ``root``, saying on
    stderr which size it is at."""
    results: list[Measured] = []
    for size in sizes:
        print(f"measuring {size:,} tasks ...", file=sys.stderr, flush=True)
        directory = root / str(size)
        directory.mkdir()
        results.append(measure(directory, size))
    return results


def parse_sized_args(
    argv: Sequence[str] | None, doc: str | None, *, quick: str, out: Path, sizes: Sequence[int]
) -> argparse.Namespace:
    """The options of a benchmark over store sizes: ``--quick`` (whose help is ``quick``),
    ``--out`` (default ``out``), ``--cli`` and ``--sizes`` (default ``sizes``, each at least 64
    tasks); the description is the first paragraph of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--out", type=Path, default=out, help="JSON result file")
    parser.add_argument("--cli", type=Path, help="the git-tasks script (default: next to python)")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        default=tuple(sizes),
        help=f"comma-separated task counts (default: {','.join(map(str, sizes))}; "
        "each at least 64)",
    )
    args = parser.parse_args(argv)
    if any(size < 64 for size in args.sizes):
        parser.error("every size must be at least 64 tasks")
    return args


def spread(value: Stats) -> str:
    """A measurement's median and 99th percentile, as the tables show them."""
    return f"{ms(value.median_ms)} / {ms(value.p99_ms)}"


def side_by_side_cells(
    tasks: int, index_bytes: int, first: Stats, second: Stats, ratio_digits: int
) -> str:
    """The first cells of a table row comparing two stores: tasks, the size of tasks.md, each
    store's median / p99, and the difference and the ratio of the medians (second to first)."""
    ratio = second.median_ms / first.median_ms
    return (
        f"| {tasks:,} | {index_bytes / 1024:,.0f} KiB | {spread(first)} | {spread(second)} "
        f"| {ms(second.median_ms - first.median_ms)} | {ratio:.{ratio_digits}f}\u00d7 "
    )


# -- profiling ------------------------------------------------------------------------------------


def profiled(op: Op, steps: Sequence[Step], title: str, sorts: Sequence[tuple[str, int]]) -> None:
    """Run ``op`` over ``steps`` under cProfile; print the top functions for each sort key."""
    profiler = cProfile.Profile()
    profiler.enable()
    for step in steps:
        op(*step)
    profiler.disable()
    for key, top in sorts:
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats(key).print_stats(top)
        print(f"## {title}, {len(steps)} calls, by {key} (times are totals over the calls)")
        print(report.getvalue())


def import_times(command: Sequence[str], cwd: Path) -> dict[str, tuple[int, int, int]]:
    """Module -> (self us, cumulative us, depth) from ``-X importtime`` (first one wins)."""
    stderr = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    out: dict[str, tuple[int, int, int]] = {}
    for line in stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        name = fields[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        out.setdefault(name.strip(), (int(fields[0]), int(fields[1]), depth))
    return out


def best_ms(run: Callable[[], object], number: int) -> float:
    """Best of five mean times of ``number`` calls, in milliseconds."""
    return min(timeit.repeat(run, number=number, repeat=5)) / number * 1000


def pieces(path: Path, lay: Layout) -> None:
    """Unprofiled times of the steps of one status set that the git floor does not have."""
    from tasksync.markdown import Index
    from tasksync.model import TaskId

    repo = pygit2.Repository(str(path))
    tip = repo.references[REF].target
    number = lay.size // 2
    spec = f"process/tasks/{number:03d}-title-{number}.md"
    text = lay.index.decode()
    index = Index.parse(text)
    wanted = TaskId(number)
    entry = index.find(wanted)

    def lookup(name: str) -> Callable[[], object]:
        def run() -> object:
            commit = repo[tip]
            assert isinstance(commit, pygit2.Commit)
            return commit.tree[name].id

        return run

    blob_id = commit_tree(repo, tip)[INDEX_PATH].id

    def read_data() -> object:
        blob = repo[blob_id]
        assert isinstance(blob, pygit2.Blob)
        return blob.data

    def read_buffer() -> object:
        blob = repo[blob_id]
        assert isinstance(blob, pygit2.Blob)
        return bytes(memoryview(blob))

    tree_type = pygit2.enums.ObjectType.TREE
    rows = [
        ("repo[tasks.md].data (pygit2 reads the object again)", best_ms(read_data, 20)),
        ("bytes(memoryview(repo[tasks.md])) (the object read)", best_ms(read_buffer, 20)),
        (f"tree[{spec!r}] (libgit2 caches trees up to 4 KiB)", best_ms(lookup(spec), 50)),
        (f"tree[{INDEX_PATH!r}]", best_ms(lookup(INDEX_PATH), 200)),
        ("Index.parse(tasks.md)", best_ms(lambda: Index.parse(text), 3)),
        ("Index.find(id)", best_ms(lambda: index.find(wanted), 50)),
        ("Index.with_checkbox(task, '+')", best_ms(lambda: index.with_checkbox(entry, "+"), 50)),
        ("Index.text.encode()", best_ms(lambda: bytes(index.text, "utf-8"), 50)),
    ]
    pygit2.settings.cache_object_limit(tree_type, 16 << 20)
    rows.insert(3, ("the same with the tree cache limit at 16 MiB", best_ms(lookup(spec), 50)))
    pygit2.settings.cache_object_limit(tree_type, 4096)
    print(f"## pieces at {lay.size:,} tasks, unprofiled (best of 5)")
    for name, value in rows:
        print(f"{value:10.4f} ms  {name}")
    print()


def cli_split(path: Path, cli: Path, interpreter: str, steps: Sequence[Step]) -> None:
    """Median wall times of the bare import (and of the same process ended without Python's
    finalization of its modules), of ``git-tasks --version`` (imports, no repository) and of
    ``git-tasks status set``, run in turn."""
    quick_exit = "import pygit2, click, os; os._exit(0)"
    commands: dict[str, Callable[[Step], list[str]]] = {
        "python -c 'import pygit2, click'": lambda _: [interpreter, "-c", "import pygit2, click"],
        f"python -c '{quick_exit}'": lambda _: [interpreter, "-c", quick_exit],
        "git-tasks --version": lambda _: [str(cli), "--version"],
        "git-tasks status set ID STATUS": lambda step: [
            str(cli),
            "status",
            "set",
            str(step[0]),
            step[1].value,
        ],
    }
    times: dict[str, list[int]] = {name: [] for name in commands}
    for step in steps:
        for name, argv in commands.items():
            times[name].append(wall(argv(step), path))
    print(f"## CLI split, median of {len(steps)} runs each")
    for name, samples in times.items():
        print(f"{statistics.median(samples) / 1e6:8.2f} ms  {name}")
    print()


def commit_tree(repo: pygit2.Repository, commit_id: pygit2.Oid | str) -> pygit2.Tree:
    commit = repo[commit_id]
    assert isinstance(commit, pygit2.Commit)
    return commit.tree


def placement(root: Path, lay: Layout, count: int = 6, steps: int = 300) -> None:
    """The git floor in ``count`` repositories made one after another, all stepped together
    in a new random order each step: what separate repositories do to a side-by-side
    comparison on this machine (the reason tasksync, the floor and the control share one)."""
    import random

    paths = [root / f"placement-{k}" for k in range(count)]
    for path in paths:
        build_store(path, lay)
    ops = [floor_op(path, lay) for path in paths]
    samples: list[list[int]] = [[] for _ in ops]
    order = list(range(count))
    for k, step in enumerate(walk(lay.size)):
        if k >= steps:
            break
        random.shuffle(order)
        for which in order:
            elapsed = timed(ops[which], step)
            if k >= steps // 5:
                samples[which].append(elapsed)
    medians = [statistics.median(s) / 1e6 for s in samples]
    print(f"## the git floor in {count} repositories made one after another, {lay.size:,} tasks")
    print("median ms, in the order made: " + ", ".join(f"{m:.3f}" for m in medians))
    print(f"slowest / fastest: {max(medians) / min(medians):.2f}x")
    print()
    for path in paths:
        shutil.rmtree(path)


def profile(args: argparse.Namespace, calls: int = 300, top: int = 25) -> None:
    """cProfile of in-process ``set_status`` and of the floor, of one CLI process, and the
    modules the CLI imports beyond ``import pygit2, click``."""
    cli = find_cli(args.cli)
    interpreter = interpreter_of(cli)
    with sealed_environment() as root:
        for size in args.sizes:
            lay = layout(size)
            steps = take(size, 2 * calls)
            build_store(root / f"store-{size}", lay)
            build_store(root / f"floor-{size}", lay)
            ops = [tasksync_op(root / f"store-{size}"), floor_op(root / f"floor-{size}", lay)]
            interleaved(ops, iter(steps[:calls]), calls, QUICK)  # warm-up, not kept
            title = f"in-process set_status, {size:,} tasks"
            profiled(ops[0], steps[calls:], title, [("tottime", top), ("cumulative", 40)])
            profiled(ops[1], steps[calls:], f"git floor, {size:,} tasks", [("tottime", 12)])
            pieces(root / f"floor-{size}", lay)
            placement(root, lay)

            fresh = root / f"cli-{size}"
            build_store(fresh, lay)
            (task, status), (next_task, next_status) = take(size, 2)
            # The first process fills the bytecode cache; the second is profiled.
            wall([str(cli), "status", "set", str(task), status.value], fresh)
            # Through main(): the git-tasks entry point ends the process before cProfile
            # could write its file (see tasksync.cli.run).
            script = root / "git_tasks_main.py"
            script.write_text("from tasksync.cli import main\n\nmain()\n", encoding="utf-8")
            command = [str(script), "status", "set", str(next_task), next_status.value]
            out = root / f"cli-{size}.prof"
            subprocess.run(
                [interpreter, "-m", "cProfile", "-o", str(out), *command],
                cwd=fresh,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            report = io.StringIO()
            pstats.Stats(str(out), stream=report).sort_stats("cumulative").print_stats(top)
            print(f"## one CLI process, {size:,} tasks (cumulative)")
            print(report.getvalue())
            cli_split(fresh, cli, interpreter, take(size, 2 + 15)[2:])

        path = root / "imports"
        build_store(path, layout(args.sizes[0]))
        (task, status), (next_task, next_status) = take(args.sizes[0], 2)
        wall([interpreter, "-c", "import pygit2, click"], path)
        wall([str(cli), "status", "set", str(task), status.value], path)
        bare = import_times([interpreter, "-c", "import pygit2, click"], path)
        mine = import_times(
            [interpreter, str(cli), "status", "set", str(next_task), next_status.value], path
        )
        extra = {name: times for name, times in mine.items() if name not in bare}
        total = sum(own for own, _, _ in extra.values())
        print("## -X importtime: modules the CLI imports that `import pygit2, click` does not")
        print(f"{len(extra)} modules, {total / 1000:.1f} ms of own import time in all")
        print(
            f"(`import pygit2, click` alone: {bare['pygit2'][1] / 1000:.1f} ms + "
            f"{bare['click'][1] / 1000:.1f} ms cumulative)"
        )
        for name, (own, cumulative, depth) in sorted(extra.items(), key=lambda kv: -kv[1][0]):
            if own >= 300:
                print(
                    f"{own / 1000:7.2f} ms own {cumulative / 1000:7.2f} ms cumulative  "
                    f"{'  ' * depth}{name}"
                )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (about 10x)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--cli", type=Path, help="the git-tasks script (default: next to python)")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        default=SIZES,
        help="comma-separated task counts (default: 100,1000,10000; each at least 64)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile and import-time reports instead"
    )
    args = parser.parse_args(argv)
    if any(size < 64 for size in args.sizes):
        parser.error("every size must be at least 64 tasks")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.profile:
        profile(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
