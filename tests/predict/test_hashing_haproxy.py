"""HAProxy hash functions, server map and ring, against hand-computed values."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.hashing.haproxy import (
    REFERENCE,
    build_map,
    build_ring,
    crc32,
    djb2,
    full_hash,
    full_hash_array,
    hash_packed,
    map_weights,
    pack_bytes,
    pack_keys,
    ring_arc_shares,
    ring_lookup,
    sdbm,
    wt6,
)
from lbguard.model import HashFunction


def test_sdbm_known_vectors() -> None:
    # h = h * 65599 + c: "a" = 97; "ab" = 97 * 65599 + 98.
    assert sdbm(b"") == 0
    assert sdbm(b"a") == 97
    assert sdbm(b"ab") == 97 * 65599 + 98
    assert sdbm(b"abc") == ((97 * 65599 + 98) * 65599 + 99) % 2**32


def test_djb2_known_vectors() -> None:
    # h = 5381, h = h * 33 + c.
    assert djb2(b"") == 5381
    assert djb2(b"a") == 5381 * 33 + 97
    assert djb2(b"ab") == (5381 * 33 + 97) * 33 + 98


def test_crc32_matches_zlib() -> None:
    for key in (b"", b"a", b"/index.html", bytes(range(256))):
        assert crc32(key) == zlib.crc32(key)


def test_wt6_empty_key_is_initial_xor() -> None:
    # With no byte the two initial state words are xor-ed.
    assert wt6(b"") == 0xA53C965A ^ 0x5CA6953A


def test_wt6_one_byte_by_hand() -> None:
    h0 = ~(0xA53C965A ^ 0x61) & 0xFFFFFFFF
    h1 = ~(0x5CA6953A + 0x61) & 0xFFFFFFFF
    rotated_h1 = ((h1 << 6) | (h1 >> 26)) & 0xFFFFFFFF
    rotated_h0 = ((h0 << 18) | (h0 >> 14)) & 0xFFFFFFFF
    assert wt6(b"a") == rotated_h1 ^ rotated_h0


def test_full_hash_first_step_by_hand() -> None:
    a = 0
    a = (a + 0x7ED55D16) & 0xFFFFFFFF
    a = (a ^ 0xC761C23C) ^ (a >> 19)
    a = ((a + 0x165667B1) + (a << 5)) & 0xFFFFFFFF
    a = ((a + 0xD3A2646C) ^ (a << 9)) & 0xFFFFFFFF
    a = ((a + 0xFD7046C5) + (a << 3)) & 0xFFFFFFFF
    a = (a ^ 0xB55A4F09) ^ (a >> 16)
    assert full_hash(0) == (a * 3221225473) & 0xFFFFFFFF


@pytest.mark.parametrize("function", list(REFERENCE))
def test_vectorised_hash_matches_reference_on_mixed_lengths(function: HashFunction) -> None:
    keys = ["", "a", "/index.html", "/api/v1/items?id=42", "héllo wörld", "x" * 300]
    hashes = hash_packed(pack_keys(keys), function)
    for key, value in zip(keys, hashes, strict=True):
        assert int(value) == REFERENCE[function](key.encode())


key_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(key_text, min_size=1, max_size=30), function=st.sampled_from(list(REFERENCE)))
def test_vectorised_hash_equals_reference(keys: list[str], function: HashFunction) -> None:
    hashes = hash_packed(pack_keys(keys), function)
    expected = [REFERENCE[function](key.encode()) for key in keys]
    assert [int(h) for h in hashes] == expected


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=50))
def test_full_hash_array_equals_reference(values: list[int]) -> None:
    hashed = full_hash_array(np.array(values, dtype=np.uint32))
    assert [int(h) for h in hashed] == [full_hash(v) for v in values]


def test_pack_bytes_hashes_binary_keys() -> None:
    keys = [bytes([127, 0, 0, 1]), b"", bytes([0, 0])]
    hashes = hash_packed(pack_bytes(keys), HashFunction.SDBM)
    assert [int(h) for h in hashes] == [sdbm(k) for k in keys]


def test_pack_keys_rejects_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        pack_keys(["a\0b", "c"])


def test_map_weights_divide_by_gcd() -> None:
    assert map_weights([10, 10, 100]) == [1, 1, 10]
    assert map_weights([0, 4, 6]) == [0, 2, 3]
    assert map_weights([0, 0]) == [0, 0]


def test_map_interleaves_by_weight() -> None:
    # Weights 1, 1, 2 over 4 slots: the heavy server takes slots 1 and 3.
    assert build_map([0, 1, 2], [1, 1, 2], 4) == [0, 2, 1, 2]
    # Equal weights keep declaration order.
    assert build_map([0, 1, 2], [1, 1, 1], 3) == [0, 1, 2]


def test_map_single_slot_takes_first_candidate() -> None:
    assert build_map([3, 5], [1, 7, 7, 1, 7, 1], 1) == [3]


def test_ring_arc_shares_two_servers() -> None:
    ring = build_ring([0, 1], [1, 2], [16, 16])
    shares = ring_arc_shares(ring, 2)
    assert shares.sum() == pytest.approx(1.0)
    assert shares.round(3).tolist() == [0.431, 0.569]


@pytest.mark.parametrize(
    ("count", "weight", "expected"),
    [
        (3, 1, [0.351, 0.295, 0.354]),
        (4, 1, [0.289, 0.185, 0.243, 0.283]),
        (5, 1, [0.240, 0.153, 0.211, 0.194, 0.202]),
        (3, 100, [0.320, 0.349, 0.331]),
        (5, 100, [0.198, 0.204, 0.197, 0.199, 0.202]),
    ],
)
def test_ring_arc_shares_table(count: int, weight: int, expected: list[float]) -> None:
    ring = build_ring(list(range(count)), list(range(1, count + 1)), [16 * weight] * count)
    assert ring_arc_shares(ring, count).round(3).tolist() == expected


def test_ring_lookup_agrees_with_arc_shares() -> None:
    ring = build_ring([0, 1, 2], [1, 2, 3], [16, 16, 16])
    hashes = np.linspace(0, 2**32 - 1, 200_001).astype(np.uint32)
    owners = ring_lookup(ring, hashes)
    observed = np.bincount(owners, minlength=3) / hashes.shape[0]
    assert np.allclose(observed, ring_arc_shares(ring, 3), atol=0.002)


def test_ring_lookup_nearest_node_either_side() -> None:
    ring = build_ring([0, 1], [1, 2], [16, 16])
    keys = ring.keys.astype(np.int64)
    # Just above a node, and exactly on a node, the lookup returns that node.
    for position in (3, 10):
        assert (
            ring_lookup(ring, np.array([keys[position]], dtype=np.uint32))[0]
            == ring.owners[position]
        )
        assert (
            ring_lookup(ring, np.array([keys[position] + 1], dtype=np.uint32))[0]
            == ring.owners[position]
        )
    # Just below the next node, the next node is nearer.
    assert ring_lookup(ring, np.array([keys[6] - 1], dtype=np.uint32))[0] == ring.owners[6]
    # At the exact midpoint of an even gap between two servers' nodes the previous wins.
    pairs = [
        i
        for i in range(len(ring) - 1)
        if (keys[i + 1] - keys[i]) % 2 == 0 and ring.owners[i] != ring.owners[i + 1]
    ]
    first = pairs[0]
    midpoint = (keys[first] + keys[first + 1]) // 2
    assert ring_lookup(ring, np.array([midpoint], dtype=np.uint32))[0] == ring.owners[first]
    assert (
        ring_lookup(ring, np.array([midpoint + 1], dtype=np.uint32))[0] == ring.owners[first + 1]
    )


def test_ring_node_keys_use_server_id() -> None:
    ring = build_ring([0], [7], [16])
    expected = sorted(full_hash(7 * 4096 + j) for j in range(16))
    assert ring.keys.tolist() == expected
