"""The crash harness's checks of a store against its writers' journals, through the git CLI.

:func:`check_store` reads the ref's history with ``git log --raw`` and ``git cat-file``, not
through tasksync's store, and checks: the ref names a commit; ``git fsck`` (connectivity only,
and full) exits 0 and reports nothing; the history is one line of commits, and the ref's reflog
names each of them once and nothing else but attempts a kill cut short between their reflog line
and their ref update; every acknowledged operation's commit is on it and its
``Tasksync-Op-Id`` occurs exactly once, and no op id twice; every commit is explained by its
writer's journal; the replay matches; no two tasks share an id on the tip and no id was ever
created twice.

The replay starts from the tree of the first commit (``init``) and goes along the history. Each
commit is matched to its writer's journal (``Tasksync-Workspace`` names the writer): it must be
that writer's next operation acknowledged with a commit, or the one operation under way when the
writer was killed. That operation, with the exact arguments the journal gives, is applied with
tasksync's pure operations (:mod:`tasksync.operations`) to the files replayed so far: the files
it writes must hash to exactly the blob ids the commit changed, its subject and trailers must be
the commit's, and an acknowledged create must have the id its writer was told. The one value a
replay cannot know is the random creation identity a create records in
``.tasksync/records.json``; it is taken from the commit. After a mismatch the replay goes on
from the commit's real files, so one fault is reported once. At the end the replayed files must
equal ``git ls-tree -r`` of the tip. A lost, duplicated, reordered or mis-applied update makes
some commit differ from its replay.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tasksync import records
from tasksync.errors import TaskSyncError
from tasksync.markdown import INDEX_PATH, RECORDS_PATH, Index
from tasksync.model import Status, TaskId
from tasksync.operations import Change, Create, Delete, SetStatus, Snapshot, Update

REF = "refs/tasks/main"
TASK_LINE = re.compile(r"- \[.\] .* \[((?:md)?#\d+)\]\([^)]*\)")

Message = dict[str, object]


def number(message: Message) -> int:
    n = message["n"]
    assert isinstance(n, int)
    return n


@dataclass(frozen=True, slots=True)
class Journal:
    """What one writer process said: its operations in order and how each ended."""

    name: str
    intents: tuple[Message, ...]
    outcomes: Mapping[int, Message]  # n → its ack, refused or error line
    ending: str  # "done", "killed", or what went wrong

    def in_flight(self) -> Message | None:
        """The operation under way when the process ended, if any."""
        if self.intents and number(self.intents[-1]) not in self.outcomes:
            return self.intents[-1]
        return None

    def acknowledged(self) -> list[str]:
        """The commits of the acknowledged operations, in order."""
        out = []
        for message in self.outcomes.values():
            commit = message.get("commit")
            if message["m"] == "ack" and isinstance(commit, str):
                out.append(commit)
        return out


def load_journals(logs: Path) -> list[Journal]:
    """The journals a run kept (``NAME.jsonl`` in its ``logs`` directory)."""
    out = []
    for path in sorted(logs.glob("*.jsonl")):
        intents: list[Message] = []
        outcomes: dict[int, Message] = {}
        ending = "unknown"
        for line in path.read_text().splitlines():
            message = json.loads(line)
            if message["m"] == "intent":
                intents.append(message)
            elif message["m"] in ("ack", "refused", "error"):
                outcomes[number(message)] = message
            elif message["m"] == "end":
                ending = str(message["ending"])
        out.append(Journal(path.stem, tuple(intents), outcomes, ending))
    return out


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


# -- the history ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    subject: str
    trailers: tuple[tuple[str, str], ...]
    changes: Mapping[str, str | None]  # path → new blob id, None when removed

    def trailer(self, key: str) -> list[str]:
        return [value for k, value in self.trailers if k == key]


def read_history(repo: Path) -> list[Commit]:
    """Every commit of the ref, oldest first, with its trailers and the blobs it changed."""
    done = run_git(
        repo,
        "log",
        "--reverse",
        "--root",
        "--raw",
        "--no-renames",
        "--no-abbrev",
        "--format=%x1e%H%x1f%P%x1f%s%x1f%(trailers:only,unfold)%x1f",
        REF,
    )
    commits = []
    for chunk in done.stdout.split("\x1e")[1:]:
        commit, parents, subject, trailer_text, raw = chunk.split("\x1f")
        trailers = []
        for line in trailer_text.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                trailers.append((key, value))
        changes: dict[str, str | None] = {}
        for line in raw.splitlines():
            if line.startswith(":"):
                meta, _, path = line.partition("\t")
                _, _, _, new, status = meta.split()
                changes[path] = None if status == "D" else new
        commits.append(Commit(commit, tuple(parents.split()), subject, tuple(trailers), changes))
    return commits


class Blobs:
    """Blob contents through one ``git cat-file --batch`` process."""

    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen(
            ["git", "cat-file", "--batch"], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def text(self, oid: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(oid.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise RuntimeError(f"{oid} is not a blob: {header!r}")
        data = self.proc.stdout.read(int(header[2]))
        self.proc.stdout.read(1)
        return data.decode("utf-8")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def blob_id(text: str, algorithm: str) -> str:
    """The id git gives a blob of ``text`` (``algorithm``: the repository's object format)."""
    data = text.encode("utf-8")
    digest = hashlib.new(algorithm)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


# -- the replay -----------------------------------------------------------------------------------


def operation(intent: Message) -> Create | SetStatus | Update | Delete:
    """The pure operation a writer's call ran, from the arguments its journal gives."""

    def text(key: str) -> str | None:
        value = intent.get(key)
        return None if value is None else str(value)

    op = intent["op"]
    if op == "create":
        status = text("status")
        return Create(
            str(intent["title"]),
            text("description") or "",
            None,
            Status.TODO if status is None else Status.parse(status),
        )
    task = TaskId.parse(str(intent["task"]))
    if op == "set-status":
        expect = text("expect")
        return SetStatus(
            task,
            Status.parse(str(intent["status"])),
            None if expect is None else Status.parse(expect),
        )
    if op == "update":
        return Update(task, text("title"), text("description"), text("spec"))
    return Delete(task)


@dataclass(slots=True)
class Replayer:
    """The files of the ref replayed commit by commit from the writers' journals."""

    journals: Mapping[str, Journal]
    blobs: Blobs
    algorithm: str
    files: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    matched: dict[str, str] = field(default_factory=dict)  # commit → "ack" or "in flight"
    cursors: dict[str, int] = field(default_factory=dict)  # writer → its next journal entry

    def start(self, root: Commit) -> None:
        self.files = {path: self.blobs.text(oid) for path, oid in root.changes.items() if oid}
        if root.trailer("Tasksync-Operation") != ["init"] or root.parents:
            self.mismatches.append(f"{root.id}: the first commit is not the store's init")

    def step(self, commit: Commit) -> None:
        """Replay ``commit``; on a mismatch, record it and take the commit's real files."""
        problem = self._replay(commit)
        if problem is None:
            return
        self.mismatches.append(f"{commit.id}: {problem}")
        for path, oid in commit.changes.items():
            if oid is None:
                self.files.pop(path, None)
            else:
                self.files[path] = self.blobs.text(oid)

    def _replay(self, commit: Commit) -> str | None:
        workspaces = commit.trailer("Tasksync-Workspace")
        journal = self.journals.get(workspaces[0]) if len(workspaces) == 1 else None
        intent, how = (None, f"from {workspaces}: no writer's")
        if journal is not None:
            intent, how = self._match(commit, journal)
        if intent is None or journal is None:
            self.unexplained.append(f"{commit.id}: {how}")
            return how
        self.matched[commit.id] = how
        files = self.files
        wanted = operation(intent)
        try:
            change = wanted.apply(Snapshot(Index.parse(files[INDEX_PATH]), files.get))
        except TaskSyncError as error:
            return f"the replay of {intent} is refused: {error}"
        if not isinstance(change, Change):
            return f"the replay of {intent} changes nothing"
        written: dict[str, str | None] = dict(change.files)
        if change.index is not None:
            written[INDEX_PATH] = change.index.text
        if isinstance(wanted, Create) and change.task is not None:
            written[RECORDS_PATH] = self._their_uid(written, commit, change.task.id)
        problem = self._compare(commit, journal, intent, change, written)
        if problem is None:
            for path, text in written.items():
                if text is None:
                    files.pop(path, None)
                else:
                    files[path] = text
        return problem

    def _compare(
        self,
        commit: Commit,
        journal: Journal,
        intent: Message,
        change: Change,
        written: Mapping[str, str | None],
    ) -> str | None:
        expected = {
            path: None if text is None else blob_id(text, self.algorithm)
            for path, text in written.items()
            if text != self.files.get(path)
        }
        if expected != dict(commit.changes):
            return f"replaying {intent} changes {expected}, the commit {dict(commit.changes)}"
        if commit.subject != change.summary:
            return f"subject {commit.subject!r}, replay {change.summary!r}"
        trailers = [t for t in commit.trailers if t[0] != "Tasksync-Op-Id"]
        if trailers != [*change.trailers, ("Tasksync-Workspace", journal.name)]:
            return f"trailers {trailers}, replay {list(change.trailers)}"
        told = journal.outcomes.get(number(intent), {}).get("task")
        if told is not None and change.task is not None and told != str(change.task.id):
            return f"its writer was told task {told}, the replay gives {change.task.id}"
        return None

    def _match(self, commit: Commit, journal: Journal) -> tuple[Message | None, str]:
        """The journal entry of ``commit``: its writer's next operation acknowledged with a
        commit, or the one under way when the writer was killed; operations acknowledged
        without a commit (refused, no-op, failed) are passed over."""
        position = self.cursors.get(journal.name, 0)
        while position < len(journal.intents):
            intent = journal.intents[position]
            outcome = journal.outcomes.get(number(intent))
            if outcome is None:  # under way at the kill: only the last one can be
                self.cursors[journal.name] = position + 1
                return intent, "in flight"
            landed = outcome.get("commit")
            if outcome["m"] == "ack" and landed is not None:
                if landed != commit.id:
                    return None, f"comes where {journal.name} acknowledged {landed}"
                self.cursors[journal.name] = position + 1
                return intent, "ack"
            position += 1
        self.cursors[journal.name] = position
        return None, f"{journal.name} has no operation left to explain it"

    def _their_uid(
        self, written: Mapping[str, str | None], commit: Commit, task: TaskId
    ) -> str | None:
        """The replayed records file with the creation identity the commit gave the task."""
        mine = records.parse(written.get(RECORDS_PATH))
        oid = commit.changes.get(RECORDS_PATH)
        theirs = records.parse(self.blobs.text(oid)).uid_map() if oid is not None else {}
        uids = mine.uid_map()
        if task.number in theirs:
            uids[task.number] = theirs[task.number]
        return records.render(mine.with_uids(uids))


# -- the checks -----------------------------------------------------------------------------------


def check_store(repo: Path, journals: Sequence[Journal]) -> tuple[list[Check], dict[str, object]]:
    """The checks of the store in ``repo`` against the journals, and figures of the run."""
    out: list[Check] = []

    def add(name: str, ok: bool, detail: str) -> None:
        out.append(Check(name, ok, detail))

    kind = run_git(repo, "cat-file", "-t", REF).stdout.strip()
    add("ref is a commit", kind == "commit", f"{REF} is {kind!r}")
    for name, args in (
        ("fsck connectivity", ("--connectivity-only",)),
        ("fsck full", ()),
    ):
        done = run_git(repo, "fsck", "--no-dangling", "--no-progress", *args)
        said = (done.stdout + done.stderr).strip()
        add(name, done.returncode == 0 and not said, f"exit {done.returncode} {said[:300]!r}")

    commits = read_history(repo)
    ids = [c.id for c in commits]
    linear = run_git(repo, "rev-list", "--reverse", "--first-parent", REF).stdout.split()
    merges = run_git(repo, "rev-list", "--min-parents=2", REF).stdout.split()
    add("linear history", linear == ids and not merges, f"{len(ids)} commits, {len(merges)} merges")

    # git and libgit2 append the reflog line before they rename the ref's lock into place, so a
    # writer killed between the two leaves a line for a commit that never landed. Such a line
    # is allowed when the ref never held its commit: no later line moves the ref from it.
    lines = (repo / ".git" / "logs" / REF).read_text(encoding="utf-8").splitlines()
    moves = [tuple(line.split(" ", 2)[:2]) for line in lines if line.strip()]
    held = {old for old, _ in moves}
    history = set(ids)
    entries = [new for _, new in moves]
    outside = [new for new in entries if new not in history]
    attempts = [new for new in outside if new not in held]
    add(
        "reflog matches history",
        Counter(e for e in entries if e in history) == Counter(ids)
        and len(attempts) == len(outside),
        f"{len(entries)} reflog entries, {len(outside)} outside the history "
        f"({len(attempts)} of them attempts a kill cut short before the ref moved), "
        f"{len(history - set(entries))} commits without one",
    )

    op_ids = {c.id: c.trailer("Tasksync-Op-Id") for c in commits}
    counts = Counter(op for ops in op_ids.values() for op in ops)
    acknowledged = [commit for j in journals for commit in j.acknowledged()]
    lost = [c for c in acknowledged if c not in op_ids]
    twice = [c for c in acknowledged if c in op_ids and [counts[o] for o in op_ids[c]] != [1]]
    add(
        "acknowledged operations present once",
        not lost and not twice,
        f"{len(acknowledged)} acknowledged, {len(lost)} lost, {len(twice)} not exactly once",
    )
    repeated = sorted(op for op, n in counts.items() if n > 1)
    add("op ids unique", not repeated, f"{len(counts)} op ids, repeated: {repeated[:5]}")

    algorithm = run_git(repo, "rev-parse", "--show-object-format").stdout.strip() or "sha1"
    replayer = Replayer({j.name: j for j in journals}, Blobs(repo), algorithm)
    try:
        if commits:
            replayer.start(commits[0])
        for commit in commits[1:]:
            replayer.step(commit)
    finally:
        replayer.blobs.close()
    add(
        "every commit explained",
        not replayer.unexplained,
        f"{len(replayer.unexplained)} unexplained {replayer.unexplained[:3]}",
    )
    tree = run_git(repo, "ls-tree", "-r", REF).stdout.splitlines()
    tip = {line.split("\t", 1)[1]: line.split()[2] for line in tree}
    replayed = {path: blob_id(text, algorithm) for path, text in replayer.files.items()}
    add(
        "replay matches",
        not replayer.mismatches and replayed == tip,
        f"{max(0, len(commits) - 1)} commits replayed, {len(replayer.mismatches)} mismatches "
        f"{replayer.mismatches[:2]}; the tip's tree "
        + ("equals the replay" if replayed == tip else "differs from the replay"),
    )

    text = run_git(repo, "show", f"{REF}:{INDEX_PATH}").stdout
    parsed = [str(line.id) for line in Index.parse(text).tasks]
    lines = [m.group(1) for m in map(TASK_LINE.fullmatch, text.splitlines()) if m]
    same = [i for i, n in Counter(parsed).items() if n > 1]
    add(
        "no duplicate ids on the tip",
        not same and sorted(parsed) == sorted(lines),
        f"{len(parsed)} tasks, duplicated: {same[:5]}",
    )
    created = [
        ",".join(c.trailer("Tasksync-Task"))
        for c in commits
        if c.trailer("Tasksync-Operation") == ["create"]
    ]
    again = [i for i, n in Counter(created).items() if n > 1]
    add("no id created twice", not again, f"{len(created)} creates, ids created twice: {again[:5]}")

    outcomes = Counter(str(o["m"]) for j in journals for o in j.outcomes.values())
    figures: dict[str, object] = {
        "operations": sum(len(j.intents) for j in journals),
        "acknowledged": len(acknowledged),
        "acknowledged_noops": outcomes["ack"] - len(acknowledged),
        "refused": outcomes["refused"],
        "errors": outcomes["error"],
        "in_flight_at_kill": sum(j.in_flight() is not None for j in journals),
        "in_flight_landed": sum(1 for how in replayer.matched.values() if how == "in flight"),
        "commits": len(commits),
        "tasks_on_tip": len(parsed),
        "lost": len(lost),
        "duplicated": len(twice),
    }
    return out, figures
