"""Writers SIGKILLed at random and at chosen instants lose nothing (tests/crash_harness.py).

The full runs (200 kills with 16 writers; 16 writers x 1,000 operations without kills) take
minutes and are run by hand: see docs/reliability.md, section Crashes.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import git
from crash_check import Check, Journal, check_store
from crash_harness import Config, Run, parse_mix, run_checks

REF = "refs/tasks/main"


def failed(checks: list[Check]) -> list[Check]:
    return [check for check in checks if not check.ok]


def names(checks: list[Check]) -> set[str]:
    return {check.name for check in failed(checks)}


@pytest.mark.slow
def test_writers_killed_at_every_kind_of_instant_lose_nothing(tmp_path: Path) -> None:
    # 24 kills of every kind among 4 writers of 80 operations each; stale ref locks are removed
    # after 0.5 s here (2 s by default) to keep the run short.
    mix = "random:10,cas_window:5,after_swap:4,lock_waiter:4,ref_lock:1"
    config = Config(4, 80, 24, seed=7, mix=parse_mix(mix), stale_lock_after="500ms")
    run = Run(config, tmp_path / "run")
    run.run()
    journals = [writer.journal() for writer in run.writers]

    checks, figures = run_checks(run, journals)

    assert failed(checks) == []
    kinds = Counter(kill.kind for kill in run.kills)
    assert kinds == {
        "random": 10,
        "cas_window": 5,
        "after_swap": 4,
        "lock_waiter": 4,
        "ref_lock": 1,
    }
    # Killed writers were replaced (those paused at a write had operations left).
    assert len(run.writers) >= 4 + kinds["cas_window"] + kinds["after_swap"]
    assert figures["operations"] == 4 * 80
    # An operation killed after its swap landed is on the ref unacknowledged: the replay
    # explained it from its writer's journal. One killed in its swap window or while waiting
    # for the lock never landed.
    landed, under_way = figures["in_flight_landed"], figures["in_flight_at_kill"]
    assert isinstance(landed, int) and isinstance(under_way, int)
    assert landed >= kinds["after_swap"]
    assert under_way - landed >= kinds["cas_window"] + kinds["lock_waiter"]
    # The ref lock the killed `git update-ref` left was removed and writers went on.
    stale = [lock for lock in run.stale if lock.kill == "ref_lock"]
    assert stale
    assert all(lock.blocked is not None and lock.blocked < 5 for lock in stale)


@pytest.mark.slow
def test_sixteen_writers_without_kills_lose_nothing(tmp_path: Path) -> None:
    # The CI size of the 16 x 1,000 run.
    run = Run(Config(16, 12, 0, seed=3), tmp_path / "run")
    run.run()
    journals = [writer.journal() for writer in run.writers]

    checks, figures = run_checks(run, journals)

    assert failed(checks) == []
    assert len(run.writers) == 16
    assert figures["operations"] == 16 * 12
    acknowledged = figures["acknowledged"]
    assert isinstance(acknowledged, int)
    assert acknowledged + 1 == figures["commits"]  # and the init commit
    assert [j.ending for j in journals] == ["done"] * 16


@pytest.fixture
def small_run(tmp_path: Path) -> tuple[Path, list[Journal]]:
    """A run of two writers without kills, whose store passes every check."""
    run = Run(Config(2, 15, 0, seed=5), tmp_path / "run")
    run.run()
    journals = [writer.journal() for writer in run.writers]
    assert failed(check_store(run.repo, journals)[0]) == []
    return run.repo, journals


def last_acknowledged(journals: list[Journal], repo: Path) -> str:
    tip = git(repo, "rev-parse", REF).strip()
    assert any(tip in journal.acknowledged() for journal in journals)
    return tip


def test_checks_see_a_lost_operation(small_run: tuple[Path, list[Journal]]) -> None:
    repo, journals = small_run
    tip = last_acknowledged(journals, repo)
    git(repo, "update-ref", REF, f"{tip}~1", tip)

    checks, figures = check_store(repo, journals)

    assert names(checks) == {"acknowledged operations present once", "reflog matches history"}
    assert figures["lost"] == 1


def test_checks_see_an_operation_applied_twice(small_run: tuple[Path, list[Journal]]) -> None:
    # The tip's operation lands again on top of it: the same op id, the same tree.
    repo, journals = small_run
    tip = last_acknowledged(journals, repo)
    message = git(repo, "log", "-1", "--format=%B", tip)
    again = git(repo, "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message).strip()
    git(repo, "update-ref", REF, again, tip)

    checks, figures = check_store(repo, journals)

    expected = {
        "acknowledged operations present once",
        "op ids unique",
        "every commit explained",
        "replay matches",
    }
    if "Tasksync-Operation: create" in message:
        expected.add("no id created twice")
    assert names(checks) == expected
    assert figures["duplicated"] == 1


def test_checks_see_a_misapplied_operation(
    small_run: tuple[Path, list[Journal]], tmp_path: Path
) -> None:
    # The tip's commit is replaced by one with the same message whose tasks.md says one thing
    # more, and its writer's journal is made to say it was told that one: everything adds up
    # but the replay.
    repo, journals = small_run
    tip = last_acknowledged(journals, repo)
    text = git(repo, "show", f"{tip}:process/tasks.md") + "\nA line nobody wrote.\n"
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo,
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "index")}
    for args in (
        ["read-tree", tip],
        ["update-index", "--cacheinfo", f"100644,{blob},process/tasks.md"],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    message = git(repo, "log", "-1", "--format=%B", tip)
    other = git(repo, "commit-tree", tree, "-p", f"{tip}^", "-m", message).strip()
    git(repo, "update-ref", REF, other, tip)
    told = [
        replace(
            journal,
            outcomes={
                n: {**outcome, "commit": other} if outcome.get("commit") == tip else outcome
                for n, outcome in journal.outcomes.items()
            },
        )
        for journal in journals
    ]

    checks, _ = check_store(repo, told)

    assert names(checks) == {"replay matches", "reflog matches history"}
    mismatch = next(check for check in checks if check.name == "replay matches")
    assert "1 mismatches" in mismatch.detail
