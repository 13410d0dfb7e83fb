"""RFC 9162 §2.1 Merkle tree math: hashes, the shape of proofs, their verification.

Pure functions, no store: the store keeps the hashes (ledger.proofs), this module says
which perfect subtrees a tree head or a proof is made of, and how to check one. The
offline checker (`ipledger audit check`) needs nothing else.

Written here rather than taken from pymerkle 7 (evaluated for issue 17): its SQLite
backend keeps only leaves, on its own connection and file (so not in the transaction
that writes the events, and never on PostgreSQL), and computes interior hashes from the
leaves with an in-memory cache that a new process starts without: a cold proof at 1M
events rehashes the tree. Its proofs are its own format (`rule`, `subset`, a path that
starts with the leaf), not RFC 9162 audit paths. What is needed here is ~100 lines.

A node is `(level, index)`: the perfect subtree over leaves
`[index * 2**level, (index + 1) * 2**level)`; level 0 is a leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

Node = tuple[int, int]

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162: SHA-256(0x00 ‖ leaf)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 9162's MTH splits."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[Node]:
    """The perfect subtrees, left to right, whose right fold is MTH(D[lo:hi]).

    For a range that is a node of some tree (lo a multiple of a power of two ≥ hi − lo):
    MTH splits at the largest power of two below the size, so the range is its binary
    decomposition, largest first."""
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect subtrees (range_nodes order): a right fold."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree from its 2**k aligned descendants at one level."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def root_nodes(size: int) -> list[Node]:
    """The perfect subtrees a tree head of `size` leaves is made of."""
    return range_nodes(0, size)


def inclusion_plan(index: int, size: int) -> list[list[Node]]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]): each path entry as the perfect subtrees it folds.

    The recursion's sibling at the top comes last (PATH(m, D[0:k]) : MTH(D[k:n]))."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    items = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index - lo < k:
            items.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            items.append(range_nodes(lo, lo + k))
            lo += k
    items.reverse()
    return items


def consistency_plan(first: int, second: int) -> list[list[Node]]:
    """RFC 9162 §2.1.4.1 PROOF(first, D[second]) = SUBPROOF(first, D[second], true)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    items = []
    lo, hi, whole = 0, second, True
    while first < hi:  # SUBPROOF(first - lo, D[lo:hi], whole), first - lo < hi - lo
        k = split(hi - lo)
        if first - lo <= k:
            items.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            items.append(range_nodes(lo, lo + k))
            lo += k
            whole = False
    if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        items.append(range_nodes(lo, hi))
    items.reverse()
    return items


def needed(plans: Iterable[list[list[Node]]]) -> set[Node]:
    """Every perfect subtree the plans fold (to fetch them in one read)."""
    return {node for plan in plans for item in plan for node in item}


def resolve(plan: list[list[Node]], hashes: Mapping[Node, bytes]) -> list[bytes]:
    """A plan's hashes: each entry folded from its perfect subtrees."""
    return [fold([hashes[node] for node in item]) for item in plan]


def append(size: int, frontier: list[bytes], leaves: Iterable[bytes]) -> tuple[int, list[tuple[int, int, bytes]]]:
    """Append leaf hashes to a tree kept as its frontier (the roots of `root_nodes(size)`,
    largest first; updated in place). Returns the new size and every interior node
    completed on the way, as (level, index, hash)."""
    completed = []
    for h in leaves:
        node, level = h, 0
        while (size >> level) & 1:  # a perfect subtree of this level ends the tree: merge
            node = node_hash(frontier.pop(), node)
            level += 1
            completed.append((level, size >> level, node))
        frontier.append(node)
        size += 1
    return size, completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The tree head from its frontier."""
    return fold(frontier) if frontier else EMPTY_ROOT


# --------------------------------------------------------------------------- verification (RFC 9162)


def _to_right_child(fn: int, sn: int) -> tuple[int, int]:
    """RFC 9162's "if LSB(fn) is not set, right-shift both fn and sn equally until either
    LSB(fn) is set or fn is 0" (both verifications climb past the levels where the
    path's node is a left child with no right sibling)."""
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove leaf hash `leaf` at `index` in the tree `root` of `size`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _to_right_child(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does `path` prove the tree (`first`, `first_root`) is a prefix of
    (`second`, `second_root`)? Equal sizes need an empty path and equal roots; the empty
    tree is a prefix of every tree."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a node of the second
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _to_right_child(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
