"""The git floor as a process: what any command that changes one task's status must do.

    python benchmarks/cli_floor.py REPOSITORY REF OFFSET CHARACTER

Imports pygit2 and click (as the bare-import baseline does), reads the tip of REF and its
process/tasks.md from disk, puts CHARACTER at byte OFFSET, and writes blob, trees and commit
and moves REF with a compare-and-swap: no parsing, no lookup, no checks. ``bench_status_set``
runs it beside ``git-tasks status set`` and the bare import. It repeats the steps of
``bench_status_set.floor_op`` on purpose: importing that module (and tasksync with it) would
add to the very imports this process is compared against.
"""

from __future__ import annotations

import os
import sys

import click  # noqa: F401 - imported as the baseline imports it
import pygit2


def main(path: str, ref: str, offset: int, character: str) -> None:
    repo = pygit2.Repository(path)
    reference = repo.references[ref]
    parent = reference.target
    commit = repo[parent]
    assert isinstance(commit, pygit2.Commit)
    root = commit.tree
    process = repo[root["process"].id]
    assert isinstance(process, pygit2.Tree)
    data = bytearray(repo.odb.read(process["tasks.md"].id)[1])  # one read of the object
    data[offset] = ord(character)
    blob = repo.create_blob(bytes(data))
    process_builder = repo.TreeBuilder(process)
    process_builder.insert("tasks.md", blob, pygit2.GIT_FILEMODE_BLOB)
    root_builder = repo.TreeBuilder(root)
    root_builder.insert("process", process_builder.write(), pygit2.GIT_FILEMODE_TREE)
    signature = pygit2.Signature(
        os.environ.get("GIT_AUTHOR_NAME", "Bench Author"),
        os.environ.get("GIT_AUTHOR_EMAIL", "author@example.com"),
    )
    summary = f"status set at byte {offset}"
    new = repo.create_commit(None, signature, signature, summary, root_builder.write(), [parent])
    reference.set_target(new, summary)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
