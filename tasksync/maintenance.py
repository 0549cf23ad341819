"""Keeping the object store small: packing what task operations leave loose.

Every operation stores a whole new ``tasks.md`` blob, two trees and a commit as loose objects;
libgit2 never packs them. After a write, with a small chance (1 in 64, so a one-shot command
costs one random byte), tasksync does what git does after its own commands: it estimates the
loose objects from one of the 256 object directories, as ``git gc --auto`` does, and when the
estimate passes git's threshold (``gc.auto``, 6700 by default; 0 turns this off) it starts
``git gc --auto`` in the background. git packs the objects with deltas (one 54 KB index per
operation becomes a few hundred bytes each).

Safety against concurrent writers: an object a writer has just written is unreachable until
its compare-and-swap lands, so nothing young may be pruned. The gc runs with
``gc.pruneExpire=2.weeks.ago`` whatever the repository says (git's default: ``now`` would
let a gc delete a writer's fresh commit, after which the swap leaves the ref pointing at a
missing object). Packing and ``pack-refs`` beside writers lose nothing (every write is a
compare-and-swap). The gc is git's own program, found on ``PATH``; without it, or with
``tasks.autoPack`` set to false, nothing is started. Failures are never reported to the write
that triggered the check: the write has landed, and the next check tries again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: A write looks at the loose objects with this chance (one in 2**_SAMPLE_BITS).
_SAMPLE_BITS = 6
#: git's default for gc.auto: loose objects before ``git gc --auto`` packs.
DEFAULT_GC_AUTO = 6700
#: Unreachable objects younger than this are never pruned by the gc tasksync starts.
PRUNE_EXPIRE = "2.weeks.ago"


def sampled() -> bool:
    """Whether this write looks at the loose objects (one in 64, at random)."""
    return os.urandom(1)[0] >> (8 - _SAMPLE_BITS) == 0


def loose_estimate(common_dir: Path) -> int:
    """The loose objects of a repository, estimated as git does: the files in ``objects/17``
    times 256."""
    try:
        with os.scandir(common_dir / "objects" / "17") as entries:
            return 256 * sum(1 for entry in entries if len(entry.name) >= 38)
    except OSError:
        return 0


def start_gc(common_dir: Path) -> bool:
    """Start ``git gc --auto`` on the repository in the background; False when git could not
    be started. git decides again whether there is work, and detaches from this process."""
    import subprocess

    command = [
        "git",
        "-c",
        "gc.autoDetach=true",
        "-c",
        f"gc.pruneExpire={PRUNE_EXPIRE}",
        "--git-dir",
        str(common_dir),
        "gc",
        "--auto",
        "--quiet",
    ]
    try:
        subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def after_write(common_dir: Path, threshold: int, sample: Callable[[], bool] = sampled) -> bool:
    """The check a write makes after it landed; True when a gc was started."""
    if threshold <= 0 or not sample():
        return False
    if loose_estimate(common_dir) <= 256 * -(-threshold // 256):  # as git rounds it
        return False
    return start_gc(common_dir)
