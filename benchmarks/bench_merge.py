"""Three-way merge of tasks.md: ``merge3`` on 10,000 tasks against ``git merge-file``.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/bench_merge.py            # full run, under a minute
    python benchmarks/bench_merge.py --quick    # fewer runs, a few seconds
    python benchmarks/bench_merge.py --profile  # where the time goes, no table

A base tasks.md of 10,000 tasks (heading, one line per task with its ``#NNN`` id and
``process/tasks/NNN-slug.md`` link, description bullets under some tasks, statuses of a project
well under way) and two sides derived from it with a seeded random generator. Each side changes
100 tasks (mostly statuses, some titles, some description bullets); 10 of those tasks are
changed on both sides, some in the same field with different values (conflicts). A second
scenario has each side also create 5 tasks at the end (with the same new ids on both sides,
so one side's are renumbered) and delete 5.

Each run of a scenario, side by side (the order alternates from run to run):

1. ``merge3(base, ours, theirs)`` in this process;
2. ``git merge-file -p --diff3`` on the same three texts as files, as a process (start-up
   included), with the number of conflict hunks it leaves;
3. ``Index.parse(text).tasks`` of the base: a full parse of one document.

Every merge result is checked against the result the scenario predicts: each task's fields,
the order of tasks, the conflicts recorded (and only those), the renumbered tasks, and that
``merge3(base, theirs, ours)`` writes the same text. Prints a markdown table and writes a JSON
file. Nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import random
import shlex
import subprocess
import sys
import time
import timeit
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench_status_set import (
    Stats,
    load,
    machine,
    ms,
    sealed_environment,
    stats,
    write_result,
)

from tasksync.markdown import Index, TaskLine, line_kind, split_lines
from tasksync.merge import IndexMerge, merge3
from tasksync.model import Status, slugify
from tasksync.records import Conflict, Renumbering

SIZE = 10_000
CHANGED_PER_SIDE = 100
CHANGED_ON_BOTH = 10
# The fields that the first of the tasks changed on both sides change on both (to different
# values: conflicts); the rest of those tasks change another field on each side.
SAME_FIELD_ON_BOTH = ("status", "status", "status", "title", "description", "status")
CREATED_PER_SIDE = 5
DELETED_PER_SIDE = 5
KINDS = ("status", "title", "description")
KIND_WEIGHTS = (7, 2, 1)  # mostly status changes, some titles, some description bullets
SEED = 20_260_101
TARGET_MS = 50.0
DEFAULT_OUT = Path("benchmarks/results/merge.json")
HEADING = "# Tasks\n\n"


@dataclass(frozen=True, slots=True)
class Plan:
    warmup: int
    runs: int


FULL = Plan(warmup=5, runs=100)
QUICK = Plan(warmup=2, runs=10)


# -- the documents --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Task:
    number: int
    checkbox: str
    title: str
    link: str
    description: tuple[str, ...]

    def render(self) -> str:
        bullets = "".join(f"  - {text}\n" for text in self.description)
        return f"- [{self.checkbox}] {self.title} [#{self.number:03d}]({self.link})\n{bullets}"

    def field(self, name: str) -> str:
        """A field as a merge conflict reports it."""
        if name == "status":
            return status_of(self.checkbox).value
        if name == "title":
            return self.title
        return "".join(f"  - {text}\n" for text in self.description)


Doc = dict[int, Task]  # number -> task, in file order


def status_of(checkbox: str) -> Status:
    status = Status.from_checkbox(checkbox)
    assert status is not None
    return status


def new_task(number: int, title: str, description: tuple[str, ...] = ()) -> Task:
    link = f"process/tasks/{number:03d}-{slugify(title).strip('-')}.md"
    return Task(number, " ", title, link, description)


def base_doc(size: int) -> Doc:
    """A project well under way: the oldest tasks finished, the newest still to do."""
    doc: Doc = {}
    for number in range(1, size + 1):
        share = number / size
        if share <= 0.6:
            checkbox = "!" if number % 17 == 0 else "x"
        elif share <= 0.8:
            checkbox = "+-~"[number % 3]
        else:
            checkbox = " "
        description: tuple[str, ...] = ()
        if number % 3 == 0:
            description = (f"Context for task {number}: what it should change.",)
        if number % 9 == 0:
            description = (*description, f"Done when the checks of task {number} pass.")
        task = new_task(number, f"Title {number}", description)
        doc[number] = replace(task, checkbox=checkbox)
    return doc


def render(doc: Doc) -> str:
    return HEADING + "".join(task.render() for task in doc.values())


@dataclass(frozen=True, slots=True)
class Edit:
    number: int
    field: str  # status, title or description
    value: Task  # the task after the edit


def edited(task: Task, kind: str, side: str, rng: random.Random, avoid: str = "") -> Task:
    """``task`` with one field changed; a status never becomes ``avoid`` or its old value."""
    if kind == "status":
        choices = [c for c in " +-x~!" if c not in (task.checkbox, avoid)]
        return replace(task, checkbox=rng.choice(choices))
    if kind == "title":
        return replace(task, title=f"{task.title}, reworded on {side}")
    if task.description:
        last = f"{task.description[-1]} (revised on {side})"
        return replace(task, description=(*task.description[:-1], last))
    return replace(task, description=(f"A note added on {side}.",))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    base: Doc
    ours: Doc
    theirs: Doc
    edits: dict[str, tuple[Edit, ...]]  # side -> its field edits
    created: dict[str, tuple[Task, ...]]
    deleted: dict[str, tuple[int, ...]]

    def texts(self) -> tuple[str, str, str]:
        return render(self.base), render(self.ours), render(self.theirs)

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        both = {e.number for e in self.edits["ours"]} & {e.number for e in self.edits["theirs"]}
        for side in ("ours", "theirs"):
            kinds = Counter(edit.field for edit in self.edits[side])
            out[side] = {
                "tasks_changed": len({edit.number for edit in self.edits[side]}),
                **{kind: kinds[kind] for kind in KINDS},
                "created": len(self.created[side]),
                "deleted": len(self.deleted[side]),
            }
        out["both"] = {"tasks_changed": len(both), "same_field": len(same_field(self))}
        return out


def same_field(scenario: Scenario) -> set[tuple[int, str]]:
    mine = {(e.number, e.field) for e in scenario.edits["ours"]}
    return mine & {(e.number, e.field) for e in scenario.edits["theirs"]}


def scenario(name: str, size: int, create_and_delete: bool, seed: int) -> Scenario:
    rng = random.Random(seed)
    base = base_doc(size)
    alone = CHANGED_PER_SIDE - CHANGED_ON_BOTH
    picked = rng.sample(range(1, size + 1), CHANGED_ON_BOTH + 2 * alone + 2 * DELETED_PER_SIDE)
    shared = picked[:CHANGED_ON_BOTH]
    only = {
        "ours": picked[CHANGED_ON_BOTH : CHANGED_ON_BOTH + alone],
        "theirs": picked[CHANGED_ON_BOTH + alone : CHANGED_ON_BOTH + 2 * alone],
    }
    gone = picked[CHANGED_ON_BOTH + 2 * alone :]
    edits: dict[str, list[Edit]] = {"ours": [], "theirs": []}
    for i, number in enumerate(shared):
        same = i < len(SAME_FIELD_ON_BOTH)
        kind = SAME_FIELD_ON_BOTH[i] if same else rng.choices(KINDS, KIND_WEIGHTS)[0]
        mine = edited(base[number], kind, "ours", rng)
        edits["ours"].append(Edit(number, kind, mine))
        if same:  # the same field, a different value: a conflict
            yours = edited(base[number], kind, "theirs", rng, avoid=mine.checkbox)
        else:  # another field: both changes merge
            kind = rng.choice([k for k in KINDS if k != kind])
            yours = edited(base[number], kind, "theirs", rng)
        edits["theirs"].append(Edit(number, kind, yours))
    sides: dict[str, Doc] = {}
    created: dict[str, tuple[Task, ...]] = {"ours": (), "theirs": ()}
    deleted: dict[str, tuple[int, ...]] = {"ours": (), "theirs": ()}
    for side in ("ours", "theirs"):
        for number in only[side]:
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            edits[side].append(Edit(number, kind, edited(base[number], kind, side, rng)))
        doc = dict(base)
        for edit in edits[side]:
            doc[edit.number] = edit.value
        if create_and_delete:
            half = DELETED_PER_SIDE if side == "ours" else 0
            deleted[side] = tuple(gone[half : half + DELETED_PER_SIDE])
            for number in deleted[side]:
                del doc[number]
            created[side] = tuple(
                new_task(
                    size + k,
                    f"New on {side} {k}",
                    (f"Why {side} needs task {k}.",) if k % 2 else (),
                )
                for k in range(1, CREATED_PER_SIDE + 1)
            )
            doc.update((task.number, task) for task in created[side])
        sides[side] = doc
    return Scenario(
        name,
        base,
        sides["ours"],
        sides["theirs"],
        {side: tuple(edits[side]) for side in edits},
        created,
        deleted,
    )


# -- checking a merge -----------------------------------------------------------------------------


class WrongMerge(AssertionError):
    pass


def check(s: Scenario, result: IndexMerge, swapped: IndexMerge) -> None:
    """Raise :class:`WrongMerge` unless ``result`` is the merge ``s`` predicts."""
    if swapped.text != result.text:
        raise WrongMerge(
            f"{s.name}: merge3(base, theirs, ours) writes another text than "
            "merge3(base, ours, theirs)"
        )
    index = Index.parse(result.text)
    tasks = index.tasks
    gone = set(s.deleted["ours"]) | set(s.deleted["theirs"])
    survivors = [n for n in s.base if n not in gone]
    expected_count = len(survivors) + len(s.created["ours"]) + len(s.created["theirs"])
    if len(tasks) != expected_count:
        raise WrongMerge(f"{s.name}: {len(tasks)} tasks merged, expected {expected_count}")
    inside = {k for task in tasks for k in range(task.line, task.end)}
    outside = [line for k, line in enumerate(index.lines) if k not in inside]
    if "".join(outside) != HEADING:
        raise WrongMerge(f"{s.name}: lines outside tasks changed: {outside[:5]!r}")
    kept = check_conflicts(s, result.conflicts)
    check_changed(s, survivors, tasks[: len(survivors)], kept)
    check_created(s, [as_task(got) for got in tasks[len(survivors) :]], result.renumbered)
    if len({task.id.number for task in tasks}) != len(tasks):
        raise WrongMerge(f"{s.name}: two tasks share an id in the merged text")


def check_conflicts(s: Scenario, conflicts: Sequence[Conflict]) -> dict[tuple[int, str], str]:
    """Check that exactly the fields both sides changed differently are recorded as conflicts;
    (task number, field) -> the value the merge kept."""
    expected: dict[tuple[int, str], tuple[str, str, str]] = {}
    for number, name in same_field(s):
        mine = changes(s, "ours")[number, name].field(name)
        yours = changes(s, "theirs")[number, name].field(name)
        if mine != yours:
            expected[number, name] = (s.base[number].field(name), mine, yours)
    kept: dict[tuple[int, str], str] = {}
    for conflict in conflicts:
        key = (conflict.task.number if conflict.task else -1, conflict.field)
        if key not in expected:
            raise WrongMerge(f"{s.name}: unexpected conflict {conflict}")
        if (conflict.base, conflict.ours, conflict.theirs) != expected[key]:
            raise WrongMerge(f"{s.name}: conflict {conflict} should record {expected[key]}")
        if conflict.kept not in expected[key][1:]:
            raise WrongMerge(f"{s.name}: conflict {conflict} keeps neither side")
        kept[key] = conflict.kept
    if kept.keys() != expected.keys():
        missing = sorted(expected.keys() - kept.keys())
        raise WrongMerge(f"{s.name}: conflicts not recorded: {missing}")
    return kept


def changes(s: Scenario, side: str) -> dict[tuple[int, str], Task]:
    return {(edit.number, edit.field): edit.value for edit in s.edits[side]}


def check_changed(
    s: Scenario,
    survivors: Sequence[int],
    tasks: Sequence[TaskLine],
    kept: dict[tuple[int, str], str],
) -> None:
    """Each task of the base that survives, in base order: its base fields, each side's
    changes, and the kept value where they conflict."""
    by_side = [changes(s, "ours"), changes(s, "theirs")]
    for number, got in zip(survivors, tasks, strict=True):
        want = s.base[number]
        for name in KINDS:
            value = kept.get((number, name))
            for side in by_side:
                edit = side.get((number, name))
                if value is None and edit is not None:
                    value = edit.field(name)
            if value is not None:
                want = with_field(want, name, value)
        if as_task(got) != want:
            raise WrongMerge(f"{s.name}: task #{number:03d} is {as_task(got)}, expected {want}")


def check_created(s: Scenario, tail: Sequence[Task], renumbered: Sequence[Renumbering]) -> None:
    """Tasks created on both sides with the same ids: all there after the base's tasks, one
    side's with the next free ids and their links renamed to match."""
    moved = {r.old.number: r for r in renumbered}
    if len(moved) != len(s.created["ours"]):
        raise WrongMerge(f"{s.name}: {len(moved)} tasks renumbered, not {len(s.created['ours'])}")
    want: list[Task] = []
    for side in ("ours", "theirs"):
        for task in s.created[side]:
            r = moved.get(task.number)
            if r is None or r.side != side:
                want.append(task)
                continue
            old_name = f"process/tasks/{task.number:03d}"
            link = f"process/tasks/{r.new.number:03d}{task.link.removeprefix(old_name)}"
            if r.new_path != link:
                raise WrongMerge(f"{s.name}: renumbering {r} names {r.new_path}, not {link}")
            want.append(replace(task, number=r.new.number, link=link))
    if sorted(tail, key=lambda t: t.number) != sorted(want, key=lambda t: t.number):
        raise WrongMerge(f"{s.name}: created tasks are {tail}, expected {want}")


def with_field(task: Task, name: str, value: str) -> Task:
    if name == "status":
        return replace(task, checkbox=Status(value).checkbox)
    if name == "title":
        return replace(task, title=value)
    return replace(task, description=tuple(line[4:] for line in value.splitlines()))


def as_task(got: TaskLine) -> Task:
    return Task(got.id.number, got.checkbox, got.title, got.link, got.description)


# -- the measurements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    edits: dict[str, dict[str, int]]
    tasks_md_bytes: dict[str, int]  # base, ours, theirs, merged
    tasks: dict[str, int]
    merge3: Stats
    merge3_cpu: Stats  # the same calls in CPU time: what other processes on the machine add
    git_merge_file: Stats
    parse: Stats  # Index.parse(base).tasks
    conflicts: int
    conflict_fields: dict[str, int]
    renumbered: int
    git_conflict_hunks: int

    @property
    def met(self) -> bool:
        return self.merge3.median_ms <= TARGET_MS


def git_merge_file(directory: Path) -> list[str]:
    return [
        "git",
        "merge-file",
        "-p",
        "--diff3",
        "-L",
        "ours",
        "-L",
        "base",
        "-L",
        "theirs",
        str(directory / "ours.md"),
        str(directory / "base.md"),
        str(directory / "theirs.md"),
    ]


def conflict_hunks(command: Sequence[str]) -> int:
    """Run ``git merge-file`` once; the number of ``<<<<<<<`` lines it writes."""
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode > 127:  # otherwise: the number of conflicts, at most 127
        raise SystemExit(f"git merge-file failed: {done.stderr.decode(errors='replace')}")
    hunks = sum(1 for line in done.stdout.splitlines() if line.startswith(b"<<<<<<<"))
    if done.returncode != min(hunks, 127):
        raise SystemExit(f"git merge-file reports {done.returncode} conflicts, wrote {hunks}")
    return hunks


def measure(s: Scenario, plan: Plan, root: Path) -> Result:
    base, ours, theirs = s.texts()
    first = merge3(base, ours, theirs)
    check(s, first, merge3(base, theirs, ours))
    directory = root / s.name
    directory.mkdir()
    for name, text in (("base", base), ("ours", ours), ("theirs", theirs)):
        (directory / f"{name}.md").write_text(text, encoding="utf-8")
    command = git_merge_file(directory)
    hunks = conflict_hunks(command)

    merged: list[IndexMerge] = []

    def merge_op() -> None:
        merged.append(merge3(base, ours, theirs))

    def git_op() -> None:
        subprocess.run(command, stdout=subprocess.PIPE, check=False)

    def parse_op() -> None:
        Index.parse(base).tasks  # noqa: B018 - the full parse is the point

    ops: list[Callable[[], None]] = [merge_op, git_op, parse_op]
    samples: list[list[int]] = [[] for _ in ops]
    cpu: list[int] = []  # merge3 again, in CPU time of this thread
    order = list(range(len(ops)))
    for i in range(plan.warmup + plan.runs):
        for which in order:
            started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
            ops[which]()
            elapsed, elapsed_cpu = (
                time.perf_counter_ns() - started,
                time.thread_time_ns() - started_cpu,
            )
            if i >= plan.warmup:
                samples[which].append(elapsed)
                if which == 0:
                    cpu.append(elapsed_cpu)
        order.reverse()
        if merged.pop().text != first.text:
            raise WrongMerge(f"{s.name}: merge3 wrote another text on run {i + 1}")

    fields = Counter(conflict.field for conflict in first.conflicts)
    return Result(
        s.name,
        s.summary(),
        {
            "base": len(base.encode()),
            "ours": len(ours.encode()),
            "theirs": len(theirs.encode()),
            "merged": len(first.text.encode()),
        },
        {
            "base": len(s.base),
            "ours": len(s.ours),
            "theirs": len(s.theirs),
            "merged": len(Index.parse(first.text).tasks),
        },
        stats(samples[0]),
        stats(cpu),
        stats(samples[1]),
        stats(samples[2]),
        len(first.conflicts),
        dict(sorted(fields.items())),
        len(first.renumbered),
        hunks,
    )


def scenarios(size: int) -> list[Scenario]:
    return [
        scenario("edits", size, create_and_delete=False, seed=SEED),
        scenario("edits + 5 created, 5 deleted per side", size, create_and_delete=True, seed=SEED),
    ]


# -- output ---------------------------------------------------------------------------------------


def describe(s: Scenario) -> str:
    summary = s.summary()
    parts = [f"{s.name}: base {len(s.base):,} tasks"]
    for side in ("ours", "theirs"):
        n = summary[side]
        text = (
            f"{side} changes {n['tasks_changed']} tasks ({n['status']} statuses, "
            f"{n['title']} titles, {n['description']} descriptions)"
        )
        if n["created"] or n["deleted"]:
            text += f", creates {n['created']}, deletes {n['deleted']}"
        parts.append(text)
    both = summary["both"]
    parts.append(
        f"{both['tasks_changed']} tasks changed on both sides "
        f"({both['same_field']} in the same field)"
    )
    return "; ".join(parts)


def table(results: Sequence[Result]) -> str:
    out = [
        "| scenario | tasks.md | merge3 median / p99 / min | target \u2264 50 ms | conflicts "
        "| renumbered | git merge-file median / p99 | git conflict hunks | full parse median |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        fields = ", ".join(f"{count} {name}" for name, count in r.conflict_fields.items())
        out.append(
            f"| {r.scenario} "
            f"| {r.tasks['base']:,} tasks, {r.tasks_md_bytes['base'] / 1024:,.0f} KiB "
            f"| {ms(r.merge3.median_ms)} / {ms(r.merge3.p99_ms)} / {ms(r.merge3.min_ms)} "
            f"| {'met' if r.met else 'MISSED'} "
            f"| {r.conflicts}{f' ({fields})' if fields else ''} | {r.renumbered} "
            f"| {ms(r.git_merge_file.median_ms)} / {ms(r.git_merge_file.p99_ms)} "
            f"| {r.git_conflict_hunks} | {ms(r.parse.median_ms)} |"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    if args.runs is not None:
        plan = replace(plan, runs=args.runs)
    command = shlex.join([sys.executable, *sys.argv])
    started = time.monotonic()
    load_before = load()
    results: list[Result] = []
    with sealed_environment() as root:
        info = machine(sys.executable)
        for s in scenarios(args.tasks):
            print(describe(s))
            print(f"measuring {s.name} ...", file=sys.stderr, flush=True)
            results.append(measure(s, plan, root))
    load_after = load()
    seconds = time.monotonic() - started
    text = table(results)
    print()
    print(text)
    cpu = ", ".join(f"{ms(r.merge3_cpu.median_ms)} ({r.scenario})" for r in results)
    print(
        f"\nmerge3 in CPU time of this thread, median: {cpu}.\n"
        f"{plan.runs} runs of each after {plan.warmup} warm-up runs; every merge checked. "
        f"{info['nproc']} CPUs, {info['python']}, {info['git']}; tasksync "
        f"{info['tasksync_source']}; {seconds:.0f} s in all; load average {load_before} before, "
        f"{load_after} after"
    )
    result = {
        "benchmark": "merge",
        "command": command,
        "mode": "quick" if args.quick else "full",
        "seconds": round(seconds, 1),
        "load_average": {"before": load_before, "after": load_after},
        "machine": info,
        "plan": asdict(plan),
        "seed": SEED,
        "target_ms": TARGET_MS,
        "scenarios": [
            {**asdict(r), "description": describe(s), "target_met": r.met}
            for r, s in zip(results, scenarios(args.tasks), strict=True)
        ],
        "table": text,
    }
    write_result(args.out, result)


def best_ms(run: Callable[[], object], number: int = 5) -> float:
    """Best of five mean times of ``number`` calls, in milliseconds."""
    return min(timeit.repeat(run, number=number, repeat=5)) / number * 1000


def classify(texts: Sequence[str]) -> dict[str, tuple[int, int]]:
    """What merge3 does first: split each side into lines, classify each distinct line once."""
    kinds: dict[str, tuple[int, int]] = {}
    for text in texts:
        for line in split_lines(text):
            if line not in kinds:
                kinds[line] = line_kind(line)
    return kinds


def pieces(s: Scenario, calls: int = 50) -> None:
    """Unprofiled times of the steps every merge3 call starts with, next to the whole call."""
    texts = s.texts()
    distinct = list(classify(texts))
    rows = [
        ("merge3(base, ours, theirs)", best_ms(lambda: merge3(*texts))),
        ("split_lines of the three texts", best_ms(lambda: [split_lines(t) for t in texts])),
        (
            f"line_kind of each of the {len(distinct):,} distinct lines",
            best_ms(lambda: [line_kind(line) for line in distinct]),
        ),
        ("both, with a dict lookup of every line", best_ms(lambda: classify(texts))),
        ("Index.parse(base).tasks", best_ms(lambda: Index.parse(texts[0]).tasks)),
    ]
    full: list[float] = []
    started = [0.0]

    def count(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2 and phase == "start":
            started[0] = time.perf_counter()
        elif info["generation"] == 2:
            full.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(count)
    try:
        for _ in range(calls):
            merge3(*texts)
    finally:
        gc.callbacks.remove(count)
    print(f"## pieces, {s.name}, unprofiled (best of 5)")
    for name, value in rows:
        print(f"{value:9.2f} ms  {name}")
    mean = sum(full) / len(full) if full else 0.0
    print(
        f"{len(full)} full collections of the garbage collector during {calls} more merge3 "
        f"calls, {mean:.1f} ms each on average"
    )
    print()


def profile(args: argparse.Namespace, calls: int = 20, top: int = 25) -> None:
    """cProfile of ``merge3`` in each scenario, by own time and by cumulative time, and
    unprofiled times of its first steps."""
    for s in scenarios(args.tasks):
        pieces(s)
        base, ours, theirs = s.texts()
        for _ in range(3):
            merge3(base, ours, theirs)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            merge3(base, ours, theirs)
        profiler.disable()
        for key, count in (("tottime", top), ("cumulative", top)):
            report = io.StringIO()
            pstats.Stats(profiler, stream=report).sort_stats(key).print_stats(count)
            print(f"## merge3, {s.name}, {calls} calls, by {key} (times are totals)")
            print(report.getvalue())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs (10 instead of 100)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--runs", type=int, help="timed runs per scenario (default: 100)")
    parser.add_argument(
        "--tasks", type=int, default=SIZE, help=f"tasks in the base document (default {SIZE:,})"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile reports of merge3 instead"
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.tasks < 1000:
        parser.error("--tasks must be at least 1000")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.profile:
        profile(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
