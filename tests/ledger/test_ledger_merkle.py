"""RFC 6962 Merkle functions against the certificate-transparency test vectors, and properties.

Vectors: google/certificate-transparency cpp/merkletree/merkle_tree_test.cc, as carried by
transparency-dev/merkle proof/verify_test.go (leaves, roots of sizes 1..8, inclusion and
consistency proofs).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clgate.ledger import merkle

LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
# (leaf number, 1-based as in the source; tree size; proof)
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_ct_vectors(size: int) -> None:
    assert merkle.root(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_ct_vectors(leaf: int, size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert merkle.inclusion_proof(LEAVES[:size], leaf - 1) == expected
    assert merkle.verify_inclusion(LEAVES[leaf - 1], leaf - 1, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_ct_vectors(old: int, new: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert merkle.consistency_proof(LEAVES[:new], old) == expected
    assert merkle.verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], expected)


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_fail(leaf: int, size: int, proof: list[str]) -> None:
    """The probes of transparency-dev's verifierCheck: wrong index, size, leaf, root, padding, bits."""
    good, root, data, i = [bytes.fromhex(h) for h in proof], ROOTS[size - 1], LEAVES[leaf - 1], leaf - 1
    bad_cases = [
        (data, i - 1, size, good, root),
        (data, i + 1, size, good, root),
        (data, i ^ 2, size, good, root),
        (data, i, size * 2, good, root),
        (data, i, size // 2, good, root),
        (b"WrongLeaf", i, size, good, root),
        (data, i, size, good, merkle.EMPTY_ROOT),
        (data, i, size, [*good, b""], root),
        (data, i, size, [*good, root], root),
        (data, i, size, [root, *good], root),
        (data, i, size, good[:-1], root),
    ]
    for k in range(len(good)):
        flipped = list(good)
        flipped[k] = bytes([flipped[k][0] ^ 8]) + flipped[k][1:]
        bad_cases.append((data, i, size, flipped, root))
    for case in bad_cases:
        assert not merkle.verify_inclusion(*case), case[1:3]


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[str]) -> None:
    good, r1, r2 = [bytes.fromhex(h) for h in proof], ROOTS[old - 1], ROOTS[new - 1]
    bad_cases = [
        (old - 1, new, r1, r2, good),
        (old + 1, new, r1, r2, good),
        (old ^ 2, new, r1, r2, good),
        (old, new * 2, r1, r2, good),
        (old, new // 2, r1, r2, good),
        (old, new, b"WrongRoot", r2, good),
        (old, new, r1, b"WrongRoot", good),
        (old, new, r2, r1, good),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*good, b""]),
        (old, new, r1, r2, [*good, r1]),
        (old, new, r1, r2, [r2, *good]),
        (old, new, r1, r2, [good[0], *good]),
        (old, new, r1, r2, good[:-1]),
    ]
    for k in range(len(good)):
        flipped = list(good)
        flipped[k] = bytes([flipped[k][0] ^ 16]) + flipped[k][1:]
        bad_cases.append((old, new, r1, r2, flipped))
    for case in bad_cases:
        assert not merkle.verify_consistency(*case), case[:2]


def test_out_of_range_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="outside a tree of size 3"):
        merkle.inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        merkle.consistency_proof(LEAVES[:3], 4)
    assert not merkle.verify_consistency(2, 1, ROOTS[1], ROOTS[0], [])


def test_frontier_reports_every_completed_subtree_and_round_trips() -> None:
    frontier = merkle.Frontier()
    created = [node for leaf in LEAVES for node in frontier.append(merkle.leaf_hash(leaf))]
    assert frontier.root() == ROOTS[-1]
    assert sorted((lv, i) for lv, i, _ in created) == sorted(
        [(0, i) for i in range(8)] + [(1, i) for i in range(4)] + [(2, 0), (2, 1), (3, 0)]
    )
    again = merkle.Frontier.from_bytes(frontier.size, frontier.to_bytes())
    assert again.root() == ROOTS[-1]
    with pytest.raises(ValueError, match="needs 1 hashes"):
        merkle.Frontier.from_bytes(8, b"")


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_proofs_verify_for_random_sizes(size: int, data: st.DataObject) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    root = merkle.root(leaves)
    assert merkle.verify_inclusion(leaves[index], index, size, merkle.inclusion_proof(leaves, index), root)
    proof = merkle.consistency_proof(leaves, old)
    assert merkle.verify_consistency(old, size, merkle.root(leaves[:old]), root, proof)
    if 0 < old < size:
        assert not merkle.verify_consistency(old, size, merkle.root([b"x", *leaves[1:old]]), root, proof)
    assert not merkle.verify_inclusion(b"other", index, size, merkle.inclusion_proof(leaves, index), root)
