"""The git floor as a process: what any command that changes one task's status must do.

    python benchmarks/cli_floor.py REPOSITORY REF OFFSET CHARACTER

Imports pygit2 and click (as the bare-import baseline does), reads the tip of REF and its
process/tasks.md from disk, puts CHARACTER at byte OFFSET, and writes blob, trees and commit
and moves REF with a compare-and-swap: no parsing, no lookup, no checks. ``bench_status_set``
runs it beside ``git-tasks status set`` and the bare import, and its own in-process floor
is made of the same two steps; this module imports nothing but pygit2 and click, as the
process it is compared against.
"""

from __future__ import annotations

import os
import sys

import click  # noqa: F401 - imported as the baseline imports it
import pygit2


def tip_trees(
    repo: pygit2.Repository, ref: str
) -> tuple[pygit2.Reference, pygit2.Oid, pygit2.Tree, pygit2.Tree]:
    """The ref, the commit it points at, and that commit's root and ``process`` trees."""
    reference = repo.references[ref]
    parent = reference.target
    assert isinstance(parent, pygit2.Oid)
    commit = repo[parent]
    assert isinstance(commit, pygit2.Commit)
    root = commit.tree
    process = repo[root["process"].id]
    assert isinstance(process, pygit2.Tree)
    return reference, parent, root, process


def write_index(
    repo: pygit2.Repository,
    tip: tuple[pygit2.Reference, pygit2.Oid, pygit2.Tree, pygit2.Tree],
    data: bytes,
    signature: pygit2.Signature,
    message: str,
) -> pygit2.Oid:
    """``data`` as process/tasks.md on top of ``tip``: blob, two trees (the rest reused),
    commit, and a compare-and-swap of the ref whose reflog gets the message's first line."""
    reference, parent, root, process = tip
    blob = repo.create_blob(data)
    process_builder = repo.TreeBuilder(process)
    process_builder.insert("tasks.md", blob, pygit2.GIT_FILEMODE_BLOB)
    root_builder = repo.TreeBuilder(root)
    root_builder.insert("process", process_builder.write(), pygit2.GIT_FILEMODE_TREE)
    new = repo.create_commit(None, signature, signature, message, root_builder.write(), [parent])
    reference.set_target(new, message.split("\n", 1)[0])
    return new


def main(path: str, ref: str, offset: int, character: str) -> None:
    repo = pygit2.Repository(path)
    tip = tip_trees(repo, ref)
    data = bytearray(repo.odb.read(tip[3]["tasks.md"].id)[1])  # one read of the object
    data[offset] = ord(character)
    signature = pygit2.Signature(
        os.environ.get("GIT_AUTHOR_NAME", "Bench Author"),
        os.environ.get("GIT_AUTHOR_EMAIL", "author@example.com"),
    )
    write_index(repo, tip, bytes(data), signature, f"status set at byte {offset}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
