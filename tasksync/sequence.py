"""Where things go in a merged tasks.md: the order of tasks and the lines between them.

A document is a sequence of tokens: each task one token (its number, whatever its fields say),
every other line one token (its text). Tasks present on all three sides in the same relative
order are anchors; the stretches between two anchors merge three-way on their own (a diff3 over
short token lists), which keeps every comparison small however long the file is. Pure.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Protocol

from .records import Conflict

Token = int | str  # a task (its number) or one line outside any task


class Doc(Protocol):
    """A tokenized tasks.md, as :mod:`.merge` builds it."""

    tokens: list[Token]
    blocks: dict[int, str]

    def order(self) -> list[int]: ...


def merge_order(b: Doc, o: Doc, t: Doc, conflicts: list[Conflict]) -> list[Token]:
    """The merged token sequence: tasks by number, other lines as themselves.

    Tasks present on all three sides in the same relative order are anchors; the stretches
    between two anchors (other lines, tasks created, deleted or moved) merge three-way on
    their own, which keeps every comparison small however long the file is.
    """
    anchors = _anchors(b, o, t)
    parts = (_stretches(doc.tokens, anchors) for doc in (b, o, t))
    merged: list[Token] = []
    for i, (was, mine, yours) in enumerate(zip(*parts, strict=True)):
        if i:
            merged.append(anchors[i - 1])
        merged.extend(_merge_tokens(was, mine, yours, conflicts))
    return merged


def _anchors(b: Doc, o: Doc, t: Doc) -> list[int]:
    common = [n for n in b.order() if n in o.blocks and n in t.blocks]
    keep_o = _in_order(common, o.order())
    keep_t = _in_order(common, t.order())
    return [n for n in common if n in keep_o and n in keep_t]


def _in_order(common: list[int], order: list[int]) -> set[int]:
    """The largest subset of ``common`` (in base order) that ``order`` keeps in that order."""
    where = {n: i for i, n in enumerate(order)}
    seq = [where[n] for n in common]
    if all(x < y for x, y in pairwise(seq)):
        return set(common)
    # Longest increasing subsequence, patience style.
    tails: list[int] = []
    tail_at: list[int] = []
    back = [-1] * len(seq)
    for i, value in enumerate(seq):
        k = bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_at.append(i)
        else:
            tails[k] = value
            tail_at[k] = i
        back[i] = tail_at[k - 1] if k else -1
    kept: set[int] = set()
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        kept.add(common[i])
        i = back[i]
    return kept


def _stretches(tokens: list[Token], anchors: list[int]) -> list[list[Token]]:
    """``tokens`` cut at each anchor: one more stretch than anchors."""
    cut = set(anchors)
    parts: list[list[Token]] = [[]]
    for token in tokens:
        if type(token) is int and token in cut:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _merge_tokens(
    was: list[Token], mine: list[Token], yours: list[Token], conflicts: list[Conflict]
) -> list[Token]:
    if yours in (mine, was):
        return mine
    if mine == was:
        return yours
    match_o, match_t = _matches(was, mine), _matches(was, yours)
    out: list[Token] = []
    i = jo = jt = 0
    while True:
        k = i
        while k < len(was) and not (k in match_o and k in match_t):
            k += 1
        if k == len(was):
            out.extend(_chunk(was[i:], mine[jo:], yours[jt:], conflicts))
            return out
        if k == i and match_o[k] == jo and match_t[k] == jt:
            out.append(was[k])
            i, jo, jt = i + 1, jo + 1, jt + 1
            continue
        out.extend(_chunk(was[i:k], mine[jo : match_o[k]], yours[jt : match_t[k]], conflicts))
        i, jo, jt = k, match_o[k], match_t[k]


def _matches(was: Sequence[Token], side: Sequence[Token]) -> dict[int, int]:
    matcher = difflib.SequenceMatcher(None, was, side, autojunk=False)
    found: dict[int, int] = {}
    for i, j, size in matcher.get_matching_blocks():
        for k in range(size):
            found[i + k] = j + k
    return found


def _chunk(
    was: list[Token], mine: list[Token], yours: list[Token], conflicts: list[Conflict]
) -> list[Token]:
    if mine == was:
        return yours
    if yours in (was, mine):
        return mine
    p = 0
    while p < min(len(mine), len(yours)) and mine[p] == yours[p]:
        p += 1
    s = 0
    while s < min(len(mine), len(yours)) - p and mine[-1 - s] == yours[-1 - s]:
        s += 1
    # Blank lines shared at the edges stay with each version: they separate it from the other.
    while p and _blank(mine[p - 1]):
        p -= 1
    while s and _blank(mine[len(mine) - s]):
        s -= 1
    head, tail = mine[:p], mine[len(mine) - s :]
    middle_o, middle_t = mine[p : len(mine) - s], yours[p : len(yours) - s]
    if not was:  # both added something here: keep both, in an order neither side decides
        first, second = sorted((middle_o, middle_t), key=_added_key)
        return [*head, *first, *second, *tail]
    # Both changed the same lines differently: the greater version stands, and any task that
    # only the other version holds stays too.
    won, lost = sorted((middle_o, middle_t), key=_changed_key, reverse=True)
    extra = [token for token in lost if type(token) is int and token not in won]
    lines_o, lines_t = _text(middle_o), _text(middle_t)
    if lines_o.strip() != lines_t.strip():
        conflicts.append(Conflict(None, "text", _text(was), lines_o, lines_t, _text(won)))
    return [*head, *won, *extra, *tail]


def _blank(token: Token) -> bool:
    return type(token) is str and not token.strip()


def _text(tokens: Iterable[Token]) -> str:
    return "".join(token for token in tokens if type(token) is str)


def _added_key(tokens: list[Token]) -> tuple[int, str, list[tuple[int, int, str]]]:
    numbers = [token for token in tokens if type(token) is int]
    return (min(numbers) if numbers else 1 << 62), _text(tokens), _whole(tokens)


def _changed_key(tokens: list[Token]) -> tuple[str, list[tuple[int, int, str]]]:
    return _text(tokens), _whole(tokens)


def _whole(tokens: list[Token]) -> list[tuple[int, int, str]]:
    """Every token in order, comparable: two different versions never tie (the order of
    versions must not fall back on which side is ours)."""
    return [(1, token, "") if type(token) is int else (0, 0, str(token)) for token in tokens]
