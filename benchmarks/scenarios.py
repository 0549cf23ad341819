"""The four failure scenarios of in-tree task files, reproduced, then run again with tasksync.

Run from the repository root with the interpreter tasksync is installed in::

    python benchmarks/scenarios.py

Every scenario builds its own throwaway repositories in a temporary directory: a main checkout,
a session clone (``git clone PATH``) and a session worktree (``git worktree add``), all holding
the same ``process/tasks.md`` (a heading, prose, a fenced example, three tasks, one with a
description bullet) and its spec files.

The old way is the old markdown backend as it behaved: every task command reads
``process/tasks.md`` of its own working tree, parses the tasks, changes them, and writes the
whole file back regenerated from the parsed tasks; no lock, no commit (a status set in a
session stays an uncommitted edit there). tasksync runs the same steps through
``TaskStore``, on a main repository whose files were imported with ``migrate()`` and removed
from the tree; the session clone reaches them through its hub, the worktree directly.

The four scenarios: (1) stale state, (2) racing creates, (3) inconsistent views, (4) lost
updates. For each, the script prints what happened both ways, and checks it: the exit status
is 1 if the old way does not fail as described or tasksync does not keep every change
consistent everywhere, 0 otherwise. It takes a few seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from bench_status_set import sealed_environment

from tasksync import Status, TaskStore

INDEX = "process/tasks.md"
INITIAL_INDEX = """\
# Tasks

Tasks of the project, one line each. Sessions are named after their task (task#157).

```
- [ ] Example task [#000](process/tasks/000-example-task.md)
```

- [ ] Enhance task sync [#001](process/tasks/001-enhance-task-sync.md)
  - make main and every session agree
- [ ] Write the docs [#002](process/tasks/002-write-the-docs.md)
- [ ] Benchmark sync [#003](process/tasks/003-benchmark-sync.md)
"""
INITIAL_TITLES = ("Enhance task sync", "Write the docs", "Benchmark sync")
PROSE = "Tasks of the project, one line each."  # user text the old backend's rewrite drops

# -- the old backend ------------------------------------------------------------------------------

TASK_LINE = re.compile(r"^- \[(.)\] (.*) \[(#\d+)\]\(([^)]*)\)")
CHECKBOX = {status.value: status.checkbox for status in Status}
STATUS_OF = {status.checkbox: status.value for status in Status} | {"X": "DONE"}


@dataclass(frozen=True, slots=True)
class OldTask:
    id: str  # "#001"
    title: str
    status: str  # "IN-PROGRESS"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower())


def spec_path(task: str, title: str) -> str:
    return f"process/tasks/{task[1:]}-{slug(title)}.md"


class OldWorkspace:
    """The old markdown backend in one working tree: parse, change, regenerate the whole file.

    No lock, no atomic replace, no commit, ids from this working tree's copy."""

    def __init__(self, name: str, top: Path) -> None:
        self.name = name
        self.top = top

    def read(self) -> list[OldTask]:
        tasks: list[OldTask] = []
        fenced = False
        for line in (self.top / INDEX).read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                fenced = not fenced
            found = None if fenced else TASK_LINE.match(line)
            if found is not None:
                tasks.append(OldTask(found[3], found[2], STATUS_OF[found[1]]))
        return tasks

    def write(self, tasks: Iterable[OldTask]) -> None:
        """The whole index regenerated from the parsed tasks: prose, fences and descriptions
        go, links are rebuilt."""
        lines = [
            f"- [{CHECKBOX[t.status]}] {t.title} [{t.id}]({spec_path(t.id, t.title)})"
            for t in tasks
        ]
        (self.top / INDEX).write_text("# Tasks\n\n" + "\n".join(lines) + "\n", encoding="utf-8")

    def status(self, task: str) -> str:
        return next(t.status for t in self.read() if t.id == task)

    def set_status(self, task: str, status: str) -> None:
        self.write(with_status(self.read(), task, status))

    def create(self, title: str) -> str:
        tasks, new = with_new_task(self.read(), title)
        (self.top / spec_path(new.id, title)).write_text(
            f"# Task {new.id}: {title}\n", encoding="utf-8"
        )
        self.write(tasks)
        return new.id

    def views(self) -> dict[str, str]:
        return {t.id: t.status for t in self.read()}


def with_status(tasks: list[OldTask], task: str, status: str) -> list[OldTask]:
    return [replace(t, status=status) if t.id == task else t for t in tasks]


def with_new_task(tasks: list[OldTask], title: str) -> tuple[list[OldTask], OldTask]:
    """The old id rule, on whatever copy was read: highest numeric id + 1."""
    new = OldTask(f"#{max((int(t.id[1:]) for t in tasks), default=0) + 1:03d}", title, "TODO")
    return [*tasks, new], new


# -- repositories ---------------------------------------------------------------------------------


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=check, capture_output=True, text=True, encoding="utf-8"
    )


@dataclass(frozen=True, slots=True)
class Workspaces:
    main: Path
    clone: Path  # session-a: git clone of main
    worktree: Path  # session-b: git worktree add of main


def build_main(main: Path) -> None:
    """A main checkout with the in-tree files committed."""
    (main / "process" / "tasks").mkdir(parents=True)
    (main / INDEX).write_text(INITIAL_INDEX, encoding="utf-8")
    for number, title in enumerate(INITIAL_TITLES, start=1):
        spec = main / "process" / "tasks" / f"{number:03d}-{slug(title)}.md"
        spec.write_text(f"# Task #{number:03d}: {title}\n\n## Context\n\n{title}.\n", "utf-8")
    git(main.parent, "init", "-q", "-b", "main", str(main))
    git(main, "add", "process")
    git(main, "commit", "-q", "-m", "Add the tasks")


def add_sessions(main: Path) -> Workspaces:
    """A session clone and a session worktree of main, each on a branch of its own."""
    root = main.parent
    git(root, "clone", "-q", str(main), str(root / "session-a"))
    git(root / "session-a", "switch", "-q", "-c", "session-a")
    git(main, "worktree", "add", "-q", "-b", "session-b", str(root / "session-b"))
    return Workspaces(main, root / "session-a", root / "session-b")


def build_old(root: Path) -> tuple[Workspaces, OldWorkspace, OldWorkspace, OldWorkspace]:
    root.mkdir(parents=True)
    build_main(root / "main")
    spaces = add_sessions(root / "main")
    return (
        spaces,
        OldWorkspace("main", spaces.main),
        OldWorkspace("session-a (clone)", spaces.clone),
        OldWorkspace("session-b (worktree)", spaces.worktree),
    )


def build_new(root: Path) -> tuple[Workspaces, TaskStore, TaskStore, TaskStore]:
    """The same files imported onto refs/tasks/main and removed from main's tree before the
    sessions are made, as `git tasks migrate` and the commands it prints do."""
    root.mkdir(parents=True)
    main = root / "main"
    build_main(main)
    TaskStore.open(main).migrate()
    git(main, "rm", "-r", "-q", "process")
    git(main, "commit", "-q", "-m", "Move the tasks to the tasks ref")
    spaces = add_sessions(main)
    stores = TaskStore.open(main), TaskStore.open(spaces.clone), TaskStore.open(spaces.worktree)
    if len({store.store_dir for store in stores}) != 1:
        raise SystemExit("error: the session clone does not use main's tasks ref (its hub)")
    return spaces, *stores


def statuses(store: TaskStore) -> dict[str, str]:
    return {str(t.id): t.status.value for t in store.list(include_done=True)}


# -- checking and printing ------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def scenario(self, number: int, title: str) -> None:
        print(f"\n{number}. {title}")

    def line(self, how: str, text: str) -> None:
        print(f"   {how:<9} {text}")

    def expect(self, holds: bool, how: str, what: str) -> None:
        """``what`` is the behaviour the scenario says ``how`` shows."""
        mark = "reproduced" if how == "old way" else "holds"
        self.line("", f"{'ok' if holds else 'UNEXPECTED'}: {what} ({mark if holds else 'no'})")
        if not holds:
            self.failures.append(f"{how}: {what}")


def show(views: dict[str, str], tasks: Iterable[str] = ("#001", "#002", "#003")) -> str:
    return ", ".join(f"{t} {views.get(t, 'missing')}" for t in tasks)


# -- the scenarios --------------------------------------------------------------------------------


def stale_state(root: Path, report: Report) -> None:
    report.scenario(1, "Stale state: a status set in a session is invisible in main")
    _, main, clone, worktree = build_old(root / "old")
    clone.set_status("#001", "IN-PROGRESS")
    worktree.set_status("#002", "DONE")
    seen = main.views()
    report.line("old way", "session-a set #001 IN-PROGRESS, session-b set #002 DONE")
    report.line("", f"main shows: {show(seen)}")
    report.expect(
        seen["#001"] == "TODO" and seen["#002"] == "TODO",
        "old way",
        "main does not see either session's status",
    )

    _, new_main, new_clone, new_worktree = build_new(root / "new")
    new_clone.set_status("#001", Status.IN_PROGRESS)
    new_worktree.set_status("#002", Status.DONE)
    seen = statuses(new_main)
    report.line("tasksync", "session-a set #001 IN-PROGRESS, session-b set #002 DONE")
    report.line("", f"main shows: {show(seen)}")
    report.expect(
        seen["#001"] == "IN-PROGRESS" and seen["#002"] == "DONE",
        "tasksync",
        "main sees both at once, with no commit, merge or fetch",
    )


CREATOR = """\
import sys
from tasksync import TaskStore
store = TaskStore.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[3])):
    print(store.create(f"{sys.argv[2]} {n}").id, flush=True)
"""
CREATES_PER_SESSION = 10


def racing_creates(root: Path, report: Report) -> None:
    report.scenario(2, "Race: two sessions create a task at once")
    spaces, main, clone, worktree = build_old(root / "old")
    from_clone = clone.create("Add the sync command")
    from_worktree = worktree.create("Add the watch command")
    report.line("old way", f"session-a created {from_clone}, session-b created {from_worktree}")
    for session, branch in ((spaces.clone, "session-a"), (spaces.worktree, "session-b")):
        git(session, "add", "process")
        git(session, "commit", "-q", "-m", f"Work of {branch}")
    git(spaces.main, "fetch", "-q", str(spaces.clone), "session-a:session-a")
    first = git(spaces.main, "merge", "-q", "session-a", check=False)
    second = git(spaces.main, "merge", "-q", "session-b", check=False)
    conflicted = "CONFLICT" in second.stdout + second.stderr
    report.line(
        "",
        f"merging both into main: session-a {'merges' if first.returncode == 0 else 'fails'}, "
        f"session-b {'conflicts in ' + INDEX if conflicted else 'merges'}",
    )
    git(spaces.main, "merge", "--abort", check=False)
    report.expect(
        from_clone == from_worktree and conflicted,
        "old way",
        "both get the same id and their index files conflict",
    )
    # Two commands at once in one working tree: both read, then both write.
    first_read, second_read = main.read(), main.read()
    tasks_a, task_a = with_new_task(first_read, "Fix the login timeout")
    tasks_b, task_b = with_new_task(second_read, "Add ssh docs")
    main.write(tasks_a)
    main.write(tasks_b)
    kept = [t.title for t in main.read() if t.id == task_a.id]
    report.line(
        "", f"two creates at once in main: both got {task_a.id}; the file keeps only {kept}"
    )
    report.expect(
        task_a.id == task_b.id and kept == ["Add ssh docs"],
        "old way",
        "one create overwrites the other",
    )

    new_spaces, new_main, _, _ = build_new(root / "new")
    creators = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(path), name, str(CREATES_PER_SESSION)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for path, name in ((new_spaces.clone, "from a"), (new_spaces.worktree, "from b"))
    ]
    for creator in creators:  # both have opened their store: start them together
        if creator.stdout is None or creator.stdout.readline() != "ready\n":
            raise SystemExit("error: a creator process did not start")
    for creator in creators:
        assert creator.stdin is not None
        creator.stdin.write("go\n")
        creator.stdin.flush()
    ids = [line.strip() for creator in creators for line in creator.communicate()[0].split()]
    if any(creator.returncode != 0 for creator in creators):
        raise SystemExit("error: a creator process failed")
    titles = {t.title for t in new_main.list(include_done=True)}
    wanted = {f"from {s} {n}" for s in "ab" for n in range(CREATES_PER_SESSION)}
    report.line(
        "tasksync",
        f"session-a and session-b each created {CREATES_PER_SESSION} tasks at once: "
        f"{len(set(ids))} distinct ids of {len(ids)}, {len(titles & wanted)} of them in main",
    )
    report.expect(
        len(set(ids)) == len(ids) == len(wanted) and wanted <= titles,
        "tasksync",
        "every create gets its own id and none is overwritten",
    )


def inconsistent_views(root: Path, report: Report) -> None:
    report.scenario(3, "Inconsistent views: main and two sessions disagree at the same moment")
    _, main, clone, worktree = build_old(root / "old")
    main.set_status("#001", "BLOCKED")
    clone.set_status("#002", "IN-PROGRESS")
    worktree.set_status("#003", "DONE")
    report.line("old way", "main set #001 BLOCKED, session-a #002 IN-PROGRESS, session-b #003 DONE")
    views = {space.name: show(space.views()) for space in (main, clone, worktree)}
    for name, view in views.items():
        report.line("", f"{name:<20} shows: {view}")
    report.expect(len(set(views.values())) == 3, "old way", "three workspaces, three views")

    _, new_main, new_clone, new_worktree = build_new(root / "new")
    new_main.set_status("#001", Status.BLOCKED)
    new_clone.set_status("#002", Status.IN_PROGRESS)
    new_worktree.set_status("#003", Status.DONE)
    report.line(
        "tasksync", "main set #001 BLOCKED, session-a #002 IN-PROGRESS, session-b #003 DONE"
    )
    stores = {
        "main": new_main,
        "session-a (clone)": new_clone,
        "session-b (worktree)": new_worktree,
    }
    new_views = {name: show(statuses(store)) for name, store in stores.items()}
    for name, view in new_views.items():
        report.line("", f"{name:<20} shows: {view}")
    heads = {store.head() for store in stores.values()}
    report.expect(
        len(set(new_views.values())) == 1
        and next(iter(new_views.values())) == "#001 BLOCKED, #002 IN-PROGRESS, #003 DONE"
        and len(heads) == 1,
        "tasksync",
        "one view everywhere, with every change, from one commit",
    )


def lost_updates(root: Path, report: Report) -> None:
    report.scenario(4, "Lost updates: a session is deleted, another write regenerates the file")
    spaces, main, clone, worktree = build_old(root / "old")
    clone.set_status("#002", "DONE")
    worktree.set_status("#003", "IN-REVIEW")
    shutil.rmtree(spaces.clone)
    git(spaces.main, "worktree", "remove", "--force", str(spaces.worktree))
    seen = main.views()
    report.line("old way", "session-a set #002 DONE, session-b #003 IN-REVIEW; both deleted")
    report.line("", f"main shows: {show(seen)}")
    report.expect(
        seen["#002"] == "TODO" and seen["#003"] == "TODO",
        "old way",
        "both changes are gone with their sessions",
    )
    # Two commands at once in main: both read, then both write their regenerated file.
    first_read, second_read = main.read(), main.read()
    main.write(with_status(first_read, "#001", "IN-PROGRESS"))
    main.write(with_status(second_read, "#002", "IN-REVIEW"))
    text = (spaces.main / INDEX).read_text(encoding="utf-8")
    seen = main.views()
    report.line("", "in main, #001 IN-PROGRESS and #002 IN-REVIEW set at once")
    report.line(
        "",
        f"main shows: {show(seen, ('#001', '#002'))}; prose, fenced example and "
        f"description bullet {'kept' if PROSE in text else 'gone'}",
    )
    report.expect(
        seen["#001"] == "TODO" and PROSE not in text and "```" not in text,
        "old way",
        "the second write drops the first's status and the user's text",
    )

    new_spaces, new_main, new_clone, new_worktree = build_new(root / "new")
    new_clone.set_status("#002", Status.DONE)
    new_worktree.set_status("#003", Status.IN_REVIEW)
    shutil.rmtree(new_spaces.clone)
    git(new_spaces.main, "worktree", "remove", "--force", str(new_spaces.worktree))
    new_main.set_status("#001", Status.IN_PROGRESS)
    TaskStore.open(new_spaces.main).set_status("#001", Status.BLOCKED, expect=Status.IN_PROGRESS)
    seen = statuses(new_main)
    text = new_main.index_text()
    report.line("tasksync", "session-a set #002 DONE, session-b #003 IN-REVIEW; both deleted")
    report.line("", "in main, #001 IN-PROGRESS, then BLOCKED by another handle")
    report.line(
        "",
        f"main shows: {show(seen)}; prose, fenced example and description bullet "
        f"{'kept' if PROSE in text and '  - make main' in text else 'gone'}",
    )
    report.expect(
        seen == {"#001": "BLOCKED", "#002": "DONE", "#003": "IN-REVIEW"}
        and PROSE in text
        and "```" in text
        and "  - make main" in text,
        "tasksync",
        "every change outlives its session and no write drops another or the user's text",
    )


SCENARIOS: tuple[Callable[[Path, Report], None], ...] = (
    stale_state,
    racing_creates,
    inconsistent_views,
    lost_updates,
)


def main() -> int:
    report = Report()
    with sealed_environment() as root:
        for number, scenario in enumerate(SCENARIOS, start=1):
            scenario(root / str(number), report)
    print()
    if report.failures:
        for failure in report.failures:
            print(f"error: not as expected: {failure}", file=sys.stderr)
        return 1
    print("All four failures reproduced with the old way; none happened with tasksync.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
