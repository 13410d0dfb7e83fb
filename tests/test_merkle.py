"""The Merkle tree's math against RFC 9162 itself: a reference implementation written
from the RFC's definitions (§2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF), the
Certificate Transparency test vectors, and the stored tree (STRIDE levels, frontier,
one-query reads) on SQLite and PostgreSQL. No ledger here: fast."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ipledger.ledger import merkle
from ipledger.ledger.driver import Raw
from ipledger.ledger.proofs import STRIDE, Tree, append_leaves
from ipledger.ledger.schema import ensure_schema

# --------------------------------------------------------------------------- RFC 9162 §2.1, as written


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over the leaf *inputs* (§2.1.1)."""
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + d[0])
    k = ref_k(n)
    return sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (§2.1.3.1)."""
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (§2.1.4.1)."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) (§2.1.4.1)."""
    return ref_subproof(m, d, True)


def ref_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """An independent inclusion check: undo PATH's recursion (top sibling last)."""
    if n == 1:
        return leaf if not path else None
    if not path:
        return None
    k = ref_k(n)
    *inner, sibling = path
    if m < k:
        sub = ref_root_from_path(m, k, leaf, inner)
        return None if sub is None else sha256(b"\x01" + sub + sibling)
    sub = ref_root_from_path(m - k, n - k, leaf, inner)
    return None if sub is None else sha256(b"\x01" + sibling + sub)


# --------------------------------------------------------------------------- product side, from stored nodes


def product_tree(data: list[bytes]) -> dict[merkle.Node, bytes]:
    """Every node the product's incremental append completes (as the store would keep them)."""
    nodes: dict[merkle.Node, bytes] = {}
    frontier: list[bytes] = []
    size = 0
    for i, item in enumerate(data):
        h = merkle.leaf_hash(item)
        nodes[(0, i)] = h
        size, completed = merkle.append(size, frontier, [h])
        nodes.update({(level, idx): node for level, idx, node in completed})
    return nodes


def product_root(nodes: dict[merkle.Node, bytes], size: int) -> bytes:
    return merkle.resolve([merkle.root_nodes(size)], nodes)[0] if size else merkle.EMPTY_ROOT


def leaves(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 40)) for _ in range(n)]


# --------------------------------------------------------------------------- Certificate Transparency vectors

CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CT_CONSISTENCY = [  # (first, second, path)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def test_the_certificate_transparency_roots_for_every_size_0_to_8() -> None:
    nodes = product_tree(CT_LEAVES)
    for n, expected in enumerate(CT_ROOTS):
        assert product_root(nodes, n).hex() == expected
        assert ref_mth(CT_LEAVES[:n]).hex() == expected  # the reference is the RFC's too


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_the_certificate_transparency_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    nodes = product_tree(CT_LEAVES)
    proof = merkle.resolve(merkle.inclusion_plan(index, size), nodes)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert merkle.verify_inclusion(index, size, merkle.leaf_hash(CT_LEAVES[index]), proof, root)


@pytest.mark.parametrize(("first", "second", "path"), CT_CONSISTENCY)
def test_the_certificate_transparency_consistency_proofs(first: int, second: int, path: list[str]) -> None:
    nodes = product_tree(CT_LEAVES)
    proof = merkle.resolve(merkle.consistency_plan(first, second), nodes)
    assert [p.hex() for p in proof] == path
    roots = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert merkle.verify_consistency(first, second, *roots, proof)


# --------------------------------------------------------------------------- against the reference, exhaustively


def test_every_size_to_64_every_index_and_every_pair_of_sizes_agree_with_the_rfc() -> None:
    data = leaves(64, seed=9162)
    nodes = product_tree(data)
    for n in range(1, 65):
        root = product_root(nodes, n)
        assert root == ref_mth(data[:n]), n
        for m in range(n):
            path = merkle.resolve(merkle.inclusion_plan(m, n), nodes)
            assert path == ref_path(m, data[:n]), (m, n)
            leaf = merkle.leaf_hash(data[m])
            assert ref_root_from_path(m, n, leaf, path) == root
            assert merkle.verify_inclusion(m, n, leaf, path, root)
            assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(data[m] + b"x"), path, root)
        for first in range(1, n + 1):
            path = merkle.resolve(merkle.consistency_plan(first, n), nodes)
            assert path == ref_proof(first, data[:n]), (first, n)
            first_root = product_root(nodes, first)
            assert merkle.verify_consistency(first, n, first_root, root, path)
            if first < n:
                forged_first = ref_mth([b"forged"] + data[1:first])
                assert not merkle.verify_consistency(first, n, forged_first, root, path)


def test_random_sizes_up_to_100000_agree_with_the_rfc() -> None:
    rng = random.Random(2024)
    data = [i.to_bytes(4, "big") for i in range(100_000)]
    nodes = product_tree(data)
    for n in (100_000, rng.randint(65, 99_999), rng.randint(65, 99_999)):
        root = product_root(nodes, n)
        assert root == ref_mth(data[:n])
        for m in (0, n - 1, rng.randrange(n)):
            path = merkle.resolve(merkle.inclusion_plan(m, n), nodes)
            assert path == ref_path(m, data[:n])
            assert merkle.verify_inclusion(m, n, merkle.leaf_hash(data[m]), path, root)
        first = rng.randint(1, n)
        path = merkle.resolve(merkle.consistency_plan(first, n), nodes)
        assert path == ref_proof(first, data[:n])
        assert merkle.verify_consistency(first, n, ref_mth(data[:first]), root, path)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_proof_verifies_only_for_its_own_index_size_and_roots(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 300))
    items = leaves(n, seed=n)
    nodes = product_tree(items)
    m = data.draw(st.integers(0, n - 1))
    root = product_root(nodes, n)
    path = merkle.resolve(merkle.inclusion_plan(m, n), nodes)
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m))
    assert not merkle.verify_inclusion(other, n, merkle.leaf_hash(items[m]), path, root) or items[m] == items[other]
    assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(items[m]), path[:-1], root)
    assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(items[m]), [*path, root], root)
    first = data.draw(st.integers(1, n - 1))
    cpath = merkle.resolve(merkle.consistency_plan(first, n), nodes)
    assert merkle.verify_consistency(first, n, product_root(nodes, first), root, cpath)
    assert not merkle.verify_consistency(first, n, product_root(nodes, first), root, cpath[:-1])
    if first > 1:
        assert not merkle.verify_consistency(first - 1, n, product_root(nodes, first), root, cpath)


def test_consistency_edge_cases() -> None:
    nodes = product_tree(CT_LEAVES)
    root = product_root(nodes, 8)
    assert merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, root, [])
    assert merkle.verify_consistency(8, 8, root, root, [])
    assert not merkle.verify_consistency(8, 8, root, product_root(nodes, 7), [])
    assert not merkle.verify_consistency(8, 7, root, root, [])
    assert not merkle.verify_consistency(3, 8, product_root(nodes, 3), root, [])
    with pytest.raises(ValueError):
        merkle.consistency_plan(0, 8)
    with pytest.raises(ValueError):
        merkle.inclusion_plan(8, 8)


# --------------------------------------------------------------------------- the stored tree (STRIDE levels)


@pytest.fixture
def tree_store(store_url: str) -> Iterator[sa.Engine]:
    """An empty store at the head revision (no ledger: the tree is fed synthetic leaves)."""
    engine = sa.create_engine(store_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def feed(engine: sa.Engine, data: list[bytes], batches: list[int], gap_every: int = 0) -> list[int]:
    """Append leaves in batches as the recorder does, with gaps in positions every
    `gap_every` leaves (PostgreSQL's rolled-back positions). Returns the positions."""
    positions = [i + 1 + (i // gap_every if gap_every else 0) for i in range(len(data))]
    done = 0
    for batch in batches:
        with engine.connect() as conn:
            raw = Raw(conn)
            chunk = [(positions[i], merkle.leaf_hash(data[i])) for i in range(done, done + batch)]
            append_leaves(raw, None, chunk, log_was_empty=False)
            raw.commit()
        done += batch
    return positions


@pytest.mark.parametrize("gap_every", [0, 7])
def test_the_stored_tree_gives_the_rfc_roots_and_proofs(tree_store: sa.Engine, gap_every: int) -> None:
    rng = random.Random(gap_every)
    n = 16**2 * 3 + 37  # three complete level-8 subtrees and a ragged edge
    data = leaves(n, seed=1)
    batches = []
    while sum(batches) < n:
        batches.append(min(rng.choice([1, 3, 50, 200]), n - sum(batches)))
    positions = feed(tree_store, data, batches)
    with tree_store.connect() as conn:
        tree = Tree(conn)
        assert tree.head() == (n, ref_mth(data))
        levels = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT level FROM ipledger_tree_nodes")}
        assert levels == {STRIDE, 2 * STRIDE}  # only every STRIDE-th level is kept
        for size in (1, 2, 15, 16, 17, 255, 256, 257, 700, n):
            assert tree.root(size) == ref_mth(data[:size])
            for m in {0, size // 2, size - 1}:
                assert tree.inclusion(m, size) == ref_path(m, data[:size])
                assert tree.leaf(positions[m], size) == (m, merkle.leaf_hash(data[m]))
            first = rng.randint(1, size)
            assert tree.consistency(first, size) == ref_proof(first, data[:size])
            first_root, root, path = tree.consistency_with_roots(first, size)
            assert first_root == ref_mth(data[:first]) and root == ref_mth(data[:size])
            assert path == ref_proof(first, data[:size])
