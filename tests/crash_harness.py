"""Crash harness: writer processes SIGKILLed at random and chosen instants lose nothing.

Run from the repository root with the interpreter tasksync is installed in::

    python tests/crash_harness.py --writers 16 --kills 200 --ops-per-writer 125 --seed 1
    python tests/crash_harness.py --writers 16 --kills 0 --ops-per-writer 1000 --seed 1
    python tests/crash_harness.py --writers 4 --kills 24 --ops-per-writer 60 --out r.json

It builds a repository in a temporary directory (``--keep DIR`` builds it there and keeps it,
with every writer's journal in ``DIR/logs``; ``--check DIR`` checks such a store again),
initializes the store, and keeps ``--writers`` processes of ``crash_writer.py`` busy until
``--ops-per-writer`` operations per writer have been started. Each process works in a worktree
of its own, so its commits name it. While they run the harness makes ``--kills`` kills, each
when the operations started pass a seeded random point of the run, of the kinds of ``--mix``:

- ``random``: SIGKILL of a running writer a random 0-30 ms later, whatever it is doing;
- ``cas_window``: the first writer to reach its compare-and-swap window (objects written, ref
  not moved, writer lock held) is paused there and killed;
- ``after_swap``: the first writer whose swap lands is paused before the call returns (lock
  held) and killed: the operation is on the ref but nobody was told;
- ``lock_waiter``: while one writer is paused holding the writer lock, another writer that
  the kernel shows blocked waiting for that lock (``/proc/locks``) is killed, then the holder
  goes on;
- ``ref_lock``: a ``git update-ref --stdin`` driven to ``start``/``update``/``prepare`` on the
  ref holds git's ref lock and is killed, leaving a real stale ``refs/tasks/main.lock``.

A killed writer is replaced by a new one (a new worktree) that carries on with its slot's
remaining operations. A writer acknowledged an operation when its journal line saying so
reached the harness (see crash_writer.py); the kill of a writer between the call returning and
that line leaves the operation unacknowledged, which is what its caller would have seen.
A ref lock file that stays 0.25 s or more (a live writer holds one for milliseconds) is a stale
one, whichever kill left it; the time from its last write until an operation lands again is its
recovery time. A ``ref_lock`` kill waits until writers have landed an operation since the last
stale lock went, so each one is timed alone.

Then the checks, each named in the report and the JSON (``--out``): those of the store against
the writers' journals (crash_check.py: ref, ``git fsck``, every acknowledged operation present
exactly once, every commit explained, the replay of the history, no duplicate id), then no
writer failed or crashed, every stale ref lock recovered within 5 s, every planned kill made.
Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from crash_check import (
    REF,
    Check,
    Journal,
    Message,
    check_store,
    load_journals,
    number,
    run_git,
)

WRITER = Path(__file__).with_name("crash_writer.py")
KINDS = ("random", "cas_window", "after_swap", "lock_waiter", "ref_lock")
DEFAULT_MIX = "random:40,cas_window:20,after_swap:15,lock_waiter:15,ref_lock:10"
STALE_TARGET = 5.0  # seconds a stale ref lock may block writers
STALE_AFTER = 0.25  # a ref lock that stayed this long was a stale one (a live writer: ms)
WAITER_WAIT = 3.0  # seconds to find a writer blocked on the lock held by a paused one
IDENTITY = {
    "GIT_AUTHOR_NAME": "Crash Writer",
    "GIT_AUTHOR_EMAIL": "writer@example.com",
    "GIT_COMMITTER_NAME": "Crash Writer",
    "GIT_COMMITTER_EMAIL": "writer@example.com",
}


@dataclass(frozen=True, slots=True)
class Config:
    writers: int = 4
    ops_per_writer: int = 50
    kills: int = 0
    seed: int = 0
    mix: tuple[tuple[str, int], ...] = ()
    stall_timeout: float = 30.0  # no operation landing for this long aborts the run
    stale_lock_after: str | None = None  # tasks.staleLockAfter of the repository
    keep: Path | None = None

    def kinds(self) -> list[str]:
        """The kind of each kill, in a seeded order: counts in proportion to the mix."""
        weights = dict(self.mix or parse_mix(DEFAULT_MIX))
        total = sum(weights.values())
        counts = {kind: self.kills * weight // total for kind, weight in weights.items()}
        for kind in sorted(weights, key=lambda k: -(self.kills * weights[k] % total)):
            if sum(counts.values()) < self.kills:
                counts[kind] += 1
        planned = [kind for kind, count in counts.items() for _ in range(count)]
        random.Random(self.seed).shuffle(planned)
        return planned


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in text.split(","):
        kind, _, weight = part.partition(":")
        if kind.strip() not in KINDS or not weight.strip().isdecimal():
            raise ValueError(f"{part!r}: use KIND:WEIGHT with KIND one of {', '.join(KINDS)}")
        out.append((kind.strip(), int(weight)))
    return tuple(out)


@dataclass(slots=True)
class Kill:
    kind: str
    writer: str
    at: float  # seconds since the start of the run
    when: float  # monotonic
    lock: tuple[int, int, int] | None  # the ref lock file a ref_lock kill left
    point: int  # operations started when it was due (the plan's point)
    started: int  # operations started when it was made
    in_flight: bool = False  # the writer had an operation under way


@dataclass(slots=True)
class StaleLock:
    """A ref lock left behind, and how long writers were blocked by it."""

    key: tuple[int, int, int]  # inode, mtime and ctime of the lock file
    since: float  # monotonic time of its last write
    kill: str | None  # the kind of the last kill made before then
    gone_at: float | None  # None: still there at the end
    blocked: float | None = None  # seconds from its last write until an operation landed


# -- the writers --------------------------------------------------------------------------------


class Writer:
    """One writer process (an incarnation of a slot) and what it has said so far."""

    def __init__(self, slot: int, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.slot = slot
        self.name = name
        self.proc = proc
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.saved = log.with_suffix(".jsonl")  # its journal, kept with the run
        self.log = log
        self.buffer = b""
        self.intents: list[Message] = []
        self.outcomes: dict[int, Message] = {}
        self.ready = False
        self.done = False
        self.killed = False
        self.paused: str | None = None

    @property
    def busy(self) -> bool:
        """Running operations: ready, not done, not killed."""
        return self.ready and not self.done and not self.killed

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(word.encode() + b"\n")
            self.proc.stdin.flush()

    def kill(self) -> None:
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)

    def journal(self) -> Journal:
        if self.killed:
            ending = "killed"
        elif self.proc.returncode == 0 and self.done:
            ending = "done"
        else:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            ending = f"exit status {self.proc.returncode}: {' | '.join(tail)}"
        return Journal(self.name, tuple(self.intents), dict(self.outcomes), ending)


def sealed_environment(home: Path) -> dict[str, str]:
    """This environment without git or tasksync settings, with a fresh HOME and identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TASKSYNC_"))}
    env.update(IDENTITY)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
    )
    return env


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class Run:
    """One run: the writers, the kills, and the event loop that drives both."""

    def __init__(self, config: Config, base: Path) -> None:
        self.config = config
        self.base = base
        self.repo = base / "repo"
        self.env = sealed_environment(base / "home")
        self.rng = random.Random(config.seed)
        self.selector = selectors.DefaultSelector()
        self.slots_used = [0] * config.writers
        self.incarnations = [0] * config.writers
        self.writers: list[Writer] = []
        self.live: dict[int, Writer] = {}  # slot → its current writer
        self.kills: list[Kill] = []
        self.skipped: list[str] = []
        self.stale: list[StaleLock] = []
        self.lock_seen: tuple[tuple[int, int, int], float] | None = None  # key, written at
        self.started = time.monotonic()
        self.last_landed = self.started
        self.aborted: str | None = None
        self.intents = 0
        kinds = config.kinds()
        total = config.writers * config.ops_per_writer
        # Kills end by 70% of the operations: a kill can take seconds (waiting for a stale
        # lock to go), and the writers must not finish before the last one is made.
        points = sorted(int(self.rng.uniform(0.02, 0.7) * total) for _ in kinds)
        self.plan = list(zip(points, kinds, strict=True))
        self.pending: Iterator[None] | None = None  # the kill under way, stepped by the loop
        self.made_before = 0  # kills made when it started
        self.wanted: str | None = None  # the pause point armed on every busy writer
        self.holder: Writer | None = None  # the writer paused there, held for its kill
        self.wall = 0.0
        self.ref_lock = self._common_dir() / (REF + ".lock")
        self.writer_lock = self._common_dir() / "tasksync" / (REF.replace("/", "%") + ".lock")

    def _common_dir(self) -> Path:
        return self.repo / ".git"

    # -- setup and writers --

    def setup(self) -> None:
        (self.base / "home").mkdir(parents=True)
        (self.base / "logs").mkdir()
        git(self.base, "init", "-q", "-b", "main", str(self.repo), env=self.env)
        git(self.repo, "commit", "-q", "--allow-empty", "-m", "first", env=self.env)
        if self.config.stale_lock_after is not None:
            value = self.config.stale_lock_after
            git(self.repo, "config", "tasks.staleLockAfter", value, env=self.env)
        subprocess.run(
            [sys.executable, "-m", "tasksync", "init"],
            cwd=self.repo,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self, slot: int) -> None:
        count = self.config.ops_per_writer - self.slots_used[slot]
        self.incarnations[slot] += 1
        name = f"w{slot:02d}-{self.incarnations[slot]:03d}"
        path = self.base / "wt" / name
        git(self.repo, "worktree", "add", "-q", "--detach", str(path), env=self.env)
        log = self.base / "logs" / f"{name}.log"
        seed = self.config.seed * 1_000_003 + slot * 1_009 + self.incarnations[slot]
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(WRITER), str(path), name, str(seed), str(count)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=self.env,
            )
        writer = Writer(slot, name, proc, log)
        self.writers.append(writer)
        self.live[slot] = writer
        self.selector.register(writer.fd, selectors.EVENT_READ, writer)

    def read(self, writer: Writer) -> None:
        data = os.read(writer.fd, 65536)
        if not data:
            self.selector.unregister(writer.fd)
            self.finish(writer)
            return
        lines = (writer.buffer + data).split(b"\n")
        writer.buffer = lines.pop()
        with writer.saved.open("ab") as saved:
            saved.writelines(line + b"\n" for line in lines)
        for line in lines:
            self.handle(writer, json.loads(line))

    def handle(self, writer: Writer, message: Message) -> None:
        kind = message["m"]
        if kind == "ready":
            writer.ready = True
        elif kind == "intent":
            writer.intents.append(message)
            self.slots_used[writer.slot] += 1
            self.intents += 1
        elif kind in ("ack", "refused", "error"):
            writer.outcomes[number(message)] = message
            if kind == "ack" and message.get("commit") is not None:
                self.landed(time.monotonic())
        elif kind == "paused":
            writer.paused = str(message["at"])
        elif kind == "done":
            writer.done = True

    def landed(self, now: float) -> None:
        self.last_landed = now
        self.watch_locks(now)
        for stale in self.stale:
            if stale.blocked is None:
                stale.blocked = now - stale.since

    def finish(self, writer: Writer) -> None:
        """The writer's output ended: reap it and start the next one of its slot."""
        writer.proc.wait()
        assert writer.proc.stdin is not None and writer.proc.stdout is not None
        with contextlib.suppress(OSError):
            writer.proc.stdin.close()
        writer.proc.stdout.close()
        if self.live.get(writer.slot) is writer:
            del self.live[writer.slot]
        with writer.saved.open("a") as saved:
            saved.write(json.dumps({"m": "end", "ending": writer.journal().ending}) + "\n")
        for kill in self.kills:
            if kill.writer == writer.name:
                kill.in_flight = writer.journal().in_flight() is not None
        if self.aborted is None and self.slots_used[writer.slot] < self.config.ops_per_writer:
            self.start(writer.slot)

    # -- kills --

    def record_kill(self, kind: str, name: str) -> None:
        now = time.monotonic()
        lock = self._lock_key() if kind == "ref_lock" else None
        at = round(now - self.started, 3)
        self.kills.append(Kill(kind, name, at, now, lock, self.plan[0][0], self.intents))

    def _left_by(self, seen: tuple[tuple[int, int, int], float]) -> str | None:
        """The kind of kill that left a lock file: the ``ref_lock`` kill that held it, else
        the last kill made before its last write."""
        key, written = seen
        found = [k.kind for k in self.kills if k.lock == key]
        found = found or [k.kind for k in self.kills if k.when <= written + 0.05]
        return found[-1] if found else None

    def _lock_key(self) -> tuple[int, int, int] | None:
        try:
            st = self.ref_lock.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_ctime_ns

    def watch_locks(self, now: float) -> None:
        """Record a ref lock file that stayed STALE_AFTER or longer once it is gone."""
        key = self._lock_key()
        seen = self.lock_seen
        if seen is not None and seen[0] != key:
            self.lock_seen = None
            if now - seen[1] >= STALE_AFTER:
                self.stale.append(StaleLock(seen[0], seen[1], self._left_by(seen), now))
        if key is not None and self.lock_seen is None:
            self.lock_seen = (key, now - max(0.0, time.time() - key[1] / 1e9))

    def busy_writers(self, exclude: Writer | None = None) -> list[Writer]:
        return [w for w in self.live.values() if w.busy and w is not exclude]

    def kill_random(self) -> Iterator[None]:
        candidates = self.busy_writers()
        if not candidates:
            return
        victim = self.rng.choice(candidates)
        at = time.monotonic() + self.rng.uniform(0.0, 0.03)
        while time.monotonic() < at:
            yield
        if not victim.killed and victim.proc.poll() is None:
            victim.kill()
            self.record_kill("random", victim.name)

    def pause(self, where: str) -> Iterator[Writer | None]:
        """Arm a pause point on every writer with work left; yields None until one of them is
        paused there (then that writer, the holder; the others are disarmed), or returns when
        none is left to pause. The first writer to reach the point is the one taken, so a kill
        at a pause point comes within about one operation."""
        candidates = [
            w
            for w in self.busy_writers()
            if self.config.ops_per_writer - self.slots_used[w.slot] >= 2
        ]
        if not candidates:
            return
        self.wanted = where
        for writer in candidates:
            writer.send(where)
        while self.holder is None:
            if not any(w.busy for w in candidates):
                self.wanted = None
                return
            yield None
        for writer in candidates:
            if writer is not self.holder:
                writer.send("disarm")
        yield self.holder

    def settle_pauses(self) -> None:
        """Take the first writer paused where a pause is wanted as the holder; let every other
        paused writer go on (one that paused before it read ``disarm``)."""
        for writer in self.live.values():
            if writer.paused is None or writer is self.holder:
                continue
            if self.wanted == writer.paused and self.holder is None and not writer.killed:
                self.holder, self.wanted = writer, None
            else:
                writer.paused = None
                writer.send("go")

    def kill_paused(self, kind: str, where: str) -> Iterator[None]:
        for holder in self.pause(where):
            if holder is not None:
                holder.kill()
                self.record_kill(kind, holder.name)
                self.holder = None
                return
            yield

    def kill_waiter(self) -> Iterator[None]:
        for holder in self.pause("window"):
            if holder is None:
                yield
                continue
            deadline = time.monotonic() + WAITER_WAIT
            while time.monotonic() < deadline:
                waiters = self.blocked_waiters(holder)
                if waiters:
                    waiter = self.rng.choice(waiters)
                    waiter.kill()
                    self.record_kill("lock_waiter", waiter.name)
                    break
                yield
            self.holder = None
            holder.paused = None
            holder.send("go")
            return

    def blocked_waiters(self, holder: Writer) -> list[Writer]:
        """The busy writers other than ``holder`` that the kernel shows waiting for the lock."""
        inode = self.writer_lock.stat().st_ino
        pids = {w.proc.pid: w for w in self.busy_writers(exclude=holder)}
        found = []
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if "->" not in parts:
                continue
            at = parts.index("->")
            if len(parts) > at + 5 and parts[at + 1] == "FLOCK":
                pid, where = parts[at + 4], parts[at + 5]
                if where.endswith(f":{inode}") and pid.isdecimal() and int(pid) in pids:
                    found.append(pids[int(pid)])
        return found

    def kill_ref_lock(self) -> Iterator[None]:
        """Hold git's ref lock with ``git update-ref --stdin`` and SIGKILL it there, once
        writers have landed an operation since the last stale lock went (so each lock's
        recovery is timed alone)."""
        while self.lock_seen is not None or any(s.blocked is None for s in self.stale):
            yield
        for _ in range(200):
            tip = git(self.repo, "rev-parse", REF, env=self.env).strip()
            proc = subprocess.Popen(
                ["git", "update-ref", "--stdin"],
                cwd=self.repo,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdin is not None and proc.stdout is not None
            # The update names the tip as both old and new value: were it ever committed, the
            # ref would stay where it is.
            proc.stdin.write(f"start\nupdate {REF} {tip} {tip}\nprepare\n")
            proc.stdin.flush()
            said = [proc.stdout.readline(), proc.stdout.readline()]
            if said == ["start: ok\n", "prepare: ok\n"]:
                proc.kill()
                proc.wait()
                self.record_kill("ref_lock", "git update-ref")
                proc.stdin.close()
                proc.stdout.close()
                return
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
            yield  # the ref moved or a writer held the lock: try again
        self.skipped.append("ref_lock: never got the ref lock")

    def next_kill(self, kind: str) -> Iterator[None]:
        if kind == "random":
            return self.kill_random()
        if kind == "cas_window":
            return self.kill_paused(kind, "window")
        if kind == "after_swap":
            return self.kill_paused(kind, "landed")
        if kind == "lock_waiter":
            return self.kill_waiter()
        return self.kill_ref_lock()

    def step_kills(self) -> None:
        """Advance the kill under way, or start the next one when its point is passed."""
        if self.pending is None:
            if not self.plan or self.intents < self.plan[0][0]:
                return
            self.made_before = len(self.kills)
            self.pending = self.next_kill(self.plan[0][1])
        try:
            next(self.pending)
        except StopIteration:
            self.pending = None
            if len(self.kills) > self.made_before:
                self.plan.pop(0)
            elif not self.live:
                self.skipped.append(f"{self.plan.pop(0)[1]}: no writer left to kill")

    # -- the loop --

    def run(self) -> None:
        self.setup()
        for slot in range(self.config.writers):
            self.start(slot)
        while self.live:
            timeout = 0.002 if self.pending is not None else 0.05
            for key, _ in self.selector.select(timeout):
                writer = key.data
                assert isinstance(writer, Writer)
                self.read(writer)
            now = time.monotonic()
            self.watch_locks(now)
            self.settle_pauses()
            if self.aborted is None:
                self.step_kills()
                if now - self.last_landed > self.config.stall_timeout:
                    self.abort(f"no operation landed for {self.config.stall_timeout:.0f} s")
        self.wall = time.monotonic() - self.started
        left = self.lock_seen
        if left is not None and time.monotonic() - left[1] >= STALE_AFTER:
            self.stale.append(StaleLock(left[0], left[1], None, None))

    def abort(self, reason: str) -> None:
        self.aborted = reason
        for writer in self.live.values():
            writer.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(writer.proc.pid, signal.SIGKILL)


# -- the checks -----------------------------------------------------------------------------------


def run_checks(run: Run, journals: Sequence[Journal]) -> tuple[list[Check], dict[str, object]]:
    """The store's checks (crash_check.py), then those of the run: no writer failed, stale
    locks recovered in time, every planned kill made."""
    out, figures = check_store(run.repo, journals)
    failed = [
        (j.name, o["error"]) for j in journals for o in j.outcomes.values() if o["m"] == "error"
    ]
    crashed = [(j.name, j.ending) for j in journals if j.ending not in ("done", "killed")]
    out.append(
        Check(
            "no writer failed",
            not failed and not crashed,
            f"errors {failed[:3]}, crashed {crashed[:3]}",
        )
    )
    blocked = [s.blocked for s in run.stale]
    worst = max((b for b in blocked if b is not None), default=0.0)
    out.append(
        Check(
            "stale ref locks recovered",
            all(b is not None and b <= STALE_TARGET for b in blocked),
            f"{len(blocked)} stale locks, longest block {worst:.2f} s "
            f"(target {STALE_TARGET:.0f} s), {sum(b is None for b in blocked)} never recovered",
        )
    )
    out.append(
        Check(
            "run completed",
            run.aborted is None and not run.skipped and not run.plan,
            f"aborted: {run.aborted}; kills made {len(run.kills)} of {run.config.kills}; "
            f"skipped {run.skipped}",
        )
    )
    figures.update(
        kills=dict(Counter(k.kind for k in run.kills)),
        kills_total=len(run.kills),
        random_kills_in_operation=sum(1 for k in run.kills if k.kind == "random" and k.in_flight),
        stale_locks=len(blocked),
        stale_lock_blocked_max_s=round(worst, 3),
        # Per stale lock: the kill that left it, seconds until it was removed, and until an
        # operation landed again (both from the lock file's last write).
        stale_lock_removed_and_blocked_s=[
            (
                s.kill,
                None if s.gone_at is None else round(s.gone_at - s.since, 3),
                None if s.blocked is None else round(s.blocked, 3),
            )
            for s in run.stale
        ],
        writers_started=len(run.writers),
        # Object files a killed libgit2 was writing (git fsck ignores them, git prune removes
        # them once older than its expiry).
        temporary_object_files=sum(1 for _ in (run.repo / ".git" / "objects").rglob("tmp*")),
        wall_s=round(run.wall, 1),
    )
    return out, figures


# -- the command --------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": run_git(Path.cwd(), "--version").stdout.strip(),
        "load_after": os.getloadavg(),
    }


def execute(config: Config) -> dict[str, object]:
    """Run the harness once and return its report (``ok`` says whether every check passed)."""
    if not Path("/proc/locks").exists():
        raise SystemExit("the crash harness needs Linux (/proc/locks)")
    temporary = None
    if config.keep is None:
        temporary = tempfile.mkdtemp(prefix="tasksync-crash-")
        base = Path(temporary)
    else:
        base = config.keep
        base.mkdir(parents=True, exist_ok=False)
    load = os.getloadavg()
    try:
        run = Run(config, base)
        try:
            run.run()
        finally:
            for writer in run.live.values():  # an error in the harness itself
                with contextlib.suppress(ProcessLookupError):
                    os.kill(writer.proc.pid, signal.SIGKILL)
        journals = [w.journal() for w in run.writers]
        checking = time.monotonic()
        found, figures = run_checks(run, journals)
        figures["checks_s"] = round(time.monotonic() - checking, 1)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return {
        "config": {**asdict(config), "keep": None if config.keep is None else str(config.keep)},
        "machine": {**machine(), "load_before": load},
        "ok": all(c.ok for c in found),
        "checks": [asdict(c) for c in found],
        "figures": figures,
        "kills": [
            {"kind": k.kind, "writer": k.writer, "at": k.at, "due": k.point, "made": k.started}
            for k in run.kills
        ],
    }


def summary(report: Mapping[str, object]) -> str:
    lines = ["| check | ok | detail |", "|---|---|---|"]
    found = report["checks"]
    assert isinstance(found, list)
    for check in found:
        lines.append(f"| {check['name']} | {'yes' if check['ok'] else 'NO'} | {check['detail']} |")
    lines.append("")
    figures = report["figures"]
    assert isinstance(figures, dict)
    lines.extend(f"- {key}: {value}" for key, value in figures.items())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=4, help="writer processes kept busy")
    parser.add_argument("--ops-per-writer", type=int, default=50, help="operations per writer")
    parser.add_argument("--kills", type=int, default=20, help="kills to make")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--mix", default=DEFAULT_MIX, help="KIND:WEIGHT,... of the kills")
    parser.add_argument("--stall-timeout", type=float, default=30.0, help="abort after this")
    parser.add_argument(
        "--stale-lock-after", help="tasks.staleLockAfter of the repository (default: unset)"
    )
    parser.add_argument("--keep", type=Path, help="build the run in this new directory, kept")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument(
        "--check", type=Path, metavar="DIR", help="only check the store a --keep run left in DIR"
    )
    args = parser.parse_args(argv)
    config = Config(
        args.writers,
        args.ops_per_writer,
        args.kills,
        args.seed,
        parse_mix(args.mix),
        args.stall_timeout,
        args.stale_lock_after,
        args.keep,
    )
    # The checks run git here too: without the user's or the system's git config.
    for key in [k for k in os.environ if k.startswith(("GIT_", "TASKSYNC_"))]:
        del os.environ[key]
    os.environ.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    command = ["python", "tests/crash_harness.py", *(argv if argv is not None else sys.argv[1:])]
    if args.check is not None:
        found, figures = check_store(args.check / "repo", load_journals(args.check / "logs"))
        result = {"ok": all(c.ok for c in found), "checks": [asdict(c) for c in found]}
        report: dict[str, object] = {"command": " ".join(command), **result, "figures": figures}
    else:
        report = {"command": " ".join(command), **execute(config)}
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
