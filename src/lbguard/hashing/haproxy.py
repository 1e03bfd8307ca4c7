"""HAProxy 2.6 hash functions, server map and consistent-hash ring.

Every function here follows the HAProxy v2.6.0 source, read but not copied:
``src/hash.c`` (sdbm, djb2, wt6, crc32), ``include/haproxy/intops.h`` (``full_hash``, the
avalanche step), ``src/lb_map.c`` (``init_server_map``, ``recalc_server_map``) and
``src/lb_chash.c`` (``chash_init_server_tree``, ``chash_get_server_hash``).

Each hash function exists twice: a pure-Python reference over one ``bytes`` key, written
to mirror the C loop, and a numpy version over many keys at once. Tests check that both
agree. The numpy versions take keys packed into one byte buffer (`PackedKeys`) and loop
over byte positions, not over keys, so a million keys cost a few dozen array operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import gcd

import numpy as np
import numpy.typing as npt

from lbguard.model import HashFunction

U32 = npt.NDArray[np.uint32]
MASK32 = 0xFFFFFFFF

SRV_EWGHT_RANGE = 256 * 16
"""``SRV_UWGHT_RANGE * BE_WEIGHT_SCALE`` (include/haproxy/server-t.h, backend-t.h, v2.6.0):
the stride between two servers' ring-node keys."""

BE_WEIGHT_SCALE = 16
"""Effective weight per unit of configured weight for dynamic algorithms, and so ring nodes
per weight unit in consistent hashing (include/haproxy/backend-t.h, v2.6.0)."""

CRC32_POLYNOMIAL = 0xEDB88320
"""Reflected CRC-32 polynomial used by ``hash_crc32`` (src/hash.c, v2.6.0)."""

# --------------------------------------------------------------------------------------
# Reference implementations over one key


def sdbm(data: bytes) -> int:
    """Return HAProxy's ``hash_sdbm``: h = c + (h << 6) + (h << 16) - h, modulo 2**32."""
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & MASK32
    return h


def djb2(data: bytes) -> int:
    """Return HAProxy's ``hash_djb2``: h = 5381, then h = h * 33 + c, modulo 2**32."""
    h = 5381
    for c in data:
        h = ((h << 5) + h + c) & MASK32
    return h


def _rotl(value: int, bits: int) -> int:
    # C's (v << n) | (v >> (32 - n)) with n = 0 yields v on the machines HAProxy runs on.
    if bits == 0:
        return value
    return ((value << bits) | (value >> (32 - bits))) & MASK32


def wt6(data: bytes) -> int:
    """Return HAProxy's ``hash_wt6`` rotate-and-xor mixer."""
    h0, h1 = 0xA53C965A, 0x5CA6953A
    step0, step1 = 6, 18
    for c in data:
        h0 = ~(h0 ^ c) & MASK32
        h1 = ~(h1 + c) & MASK32
        t = _rotl(h1, step0)
        h1 = _rotl(h0, step1)
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return h0 ^ h1


def crc32(data: bytes) -> int:
    """Return HAProxy's bitwise ``hash_crc32`` (the standard reflected CRC-32)."""
    h = MASK32
    for c in data:
        h ^= c
        for _ in range(8):
            h = (h >> 1) ^ (CRC32_POLYNOMIAL if h & 1 else 0)
    return ~h & MASK32


def full_hash(value: int) -> int:
    """Return HAProxy's ``full_hash``: Bob Jenkins' 32-bit integer hash times 3221225473."""
    a = value & MASK32
    a = ((a + 0x7ED55D16) + (a << 12)) & MASK32
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & MASK32
    a = ((a + 0x165667B1) + (a << 5)) & MASK32
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK32
    a = ((a + 0xFD7046C5) + (a << 3)) & MASK32
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & MASK32
    return (a * 3221225473) & MASK32


REFERENCE: dict[HashFunction, Callable[[bytes], int]] = {
    HashFunction.SDBM: sdbm,
    HashFunction.DJB2: djb2,
    HashFunction.WT6: wt6,
    HashFunction.CRC32: crc32,
}

# --------------------------------------------------------------------------------------
# Vectorised implementations over many keys


@dataclass(frozen=True)
class PackedKeys:
    """Many byte-string keys stored back to back in one buffer."""

    buffer: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    """Offset of each key's first byte in ``buffer``."""

    lengths: npt.NDArray[np.int64]
    """Length of each key in bytes."""

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def key(self, index: int) -> bytes:
        start = int(self.starts[index])
        return self.buffer[start : start + int(self.lengths[index])].tobytes()


def pack_keys(keys: Sequence[str] | npt.NDArray[np.object_]) -> PackedKeys:
    """Pack ``str`` keys as their UTF-8 bytes.

    Keys are joined with NUL separators in one C-level join, so a key must not contain NUL
    (HAProxy rejects NUL in request lines and headers anyway).
    """
    count = len(keys)
    if count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return PackedKeys(np.zeros(0, dtype=np.uint8), empty, empty)
    joined = "\0".join(keys).encode("utf-8")
    buffer = np.frombuffer(joined, dtype=np.uint8)
    separators = np.flatnonzero(buffer == 0)
    if separators.shape[0] != count - 1:
        raise ValueError("hash keys must not contain NUL characters")
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = separators + 1
    ends = np.empty(count, dtype=np.int64)
    ends[:-1] = separators
    ends[-1] = buffer.shape[0]
    return PackedKeys(buffer, starts, ends - starts)


def pack_bytes(keys: Sequence[bytes]) -> PackedKeys:
    """Pack raw byte keys (binary samples such as an IPv4 address)."""
    lengths = np.fromiter((len(key) for key in keys), dtype=np.int64, count=len(keys))
    starts = np.zeros(len(keys), dtype=np.int64)
    if len(keys) > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    buffer = np.frombuffer(b"".join(keys), dtype=np.uint8)
    return PackedKeys(buffer, starts, lengths)


def _positions(packed: PackedKeys) -> Callable[[int], tuple[npt.NDArray[np.intp], U32]]:
    """Return a function that gives, for byte position j, the keys longer than j (in
    descending length order, as indices) and their j-th bytes."""
    order = np.argsort(-packed.lengths, kind="stable")
    sorted_lengths = packed.lengths[order]
    sorted_starts = packed.starts[order]
    # Keys longer than j form a prefix of the descending order.
    ascending = sorted_lengths[::-1]

    def at(j: int) -> tuple[npt.NDArray[np.intp], U32]:
        active = ascending.shape[0] - int(np.searchsorted(ascending, j, side="right"))
        rows = order[:active]
        return rows, packed.buffer[sorted_starts[:active] + j].astype(np.uint32)

    return at


def _crc32_table() -> U32:
    # The table-driven CRC gives the same result as HAProxy's bitwise loop, byte by byte.
    table = np.arange(256, dtype=np.uint32)
    polynomial = np.uint32(CRC32_POLYNOMIAL)
    for _ in range(8):
        table = (table >> np.uint32(1)) ^ (polynomial * (table & np.uint32(1)))
    return table


_CRC32_TABLE = _crc32_table()


def hash_packed(packed: PackedKeys, function: HashFunction) -> U32:
    """Hash every key with an HAProxy hash function; returns one uint32 per key."""
    count = len(packed)
    at = _positions(packed)
    longest = int(packed.lengths.max()) if count else 0

    if function is HashFunction.WT6:
        return _wt6_packed(count, longest, at)

    if function is HashFunction.CRC32:
        h = np.full(count, MASK32, dtype=np.uint32)
        for j in range(longest):
            rows, c = at(j)
            current = h[rows]
            h[rows] = (current >> np.uint32(8)) ^ _CRC32_TABLE[(current ^ c) & np.uint32(0xFF)]
        return ~h

    if function is HashFunction.DJB2:
        h = np.full(count, 5381, dtype=np.uint32)
        for j in range(longest):
            rows, c = at(j)
            h[rows] = h[rows] * np.uint32(33) + c
        return h

    if function in (HashFunction.SDBM, HashFunction.NONE):
        # sdbm's update c + (h << 6) + (h << 16) - h equals h * 65599 + c modulo 2**32.
        h = np.zeros(count, dtype=np.uint32)
        for j in range(longest):
            rows, c = at(j)
            h[rows] = h[rows] * np.uint32(65599) + c
        return h

    raise ValueError(f"unsupported hash function {function}")


def _rotl_array(value: U32, bits: U32) -> U32:
    # numpy returns 0 for a shift by 32, so a rotation by 0 stays the value itself.
    return (value << bits) | (value >> (np.uint32(32) - bits))


def _wt6_packed(
    count: int, longest: int, at: Callable[[int], tuple[npt.NDArray[np.intp], U32]]
) -> U32:
    h0 = np.full(count, 0xA53C965A, dtype=np.uint32)
    h1 = np.full(count, 0x5CA6953A, dtype=np.uint32)
    step0 = np.full(count, 6, dtype=np.uint32)
    step1 = np.full(count, 18, dtype=np.uint32)
    for j in range(longest):
        rows, c = at(j)
        a = ~(h0[rows] ^ c)
        b = ~(h1[rows] + c)
        t = _rotl_array(b, step0[rows])
        b = _rotl_array(a, step1[rows])
        a = t
        t = ((a >> np.uint32(16)) ^ b) & np.uint32(0xFFFF)
        h0[rows] = a
        h1[rows] = b
        step0[rows] = t & np.uint32(0x1F)
        step1[rows] = t >> np.uint32(11)
    return h0 ^ h1


def full_hash_array(values: npt.NDArray[np.uint32]) -> U32:
    """Apply HAProxy's ``full_hash`` (avalanche) to every value."""
    a = values.astype(np.uint32, copy=True)
    a = (a + np.uint32(0x7ED55D16)) + (a << np.uint32(12))
    a = (a ^ np.uint32(0xC761C23C)) ^ (a >> np.uint32(19))
    a = (a + np.uint32(0x165667B1)) + (a << np.uint32(5))
    a = (a + np.uint32(0xD3A2646C)) ^ (a << np.uint32(9))
    a = (a + np.uint32(0xFD7046C5)) + (a << np.uint32(3))
    a = (a ^ np.uint32(0xB55A4F09)) ^ (a >> np.uint32(16))
    result: U32 = a * np.uint32(3221225473)
    return result


# --------------------------------------------------------------------------------------
# Map-based placement (lb_map.c)


def map_weights(weights: Sequence[int]) -> list[int]:
    """Return each server's map weight: its weight divided by the GCD of all non-zero
    weights of the backend, backups and disabled servers included (``init_server_map``)."""
    divisor = 0
    for weight in weights:
        if weight:
            divisor = gcd(divisor, weight)
    if divisor == 0:
        return [0 for _ in weights]
    return [weight // divisor for weight in weights]


def _c_division(numerator: int, denominator: int) -> int:
    # C integer division truncates toward zero; Python's // rounds toward minus infinity.
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def build_map(candidates: Sequence[int], eweights: Sequence[int], total: int) -> list[int]:
    """Fill a server map of *total* slots as ``recalc_server_map`` does.

    *candidates* are the indices (declaration order) of the servers that take part: every
    usable active server, or every usable backup server when none is active. For each slot
    every candidate adds its weight to a running score; the candidate with the largest
    ``(score + total) / total`` takes the slot (the first declared wins ties) and gives
    back *total*. Returns the server index of each slot.
    """
    if total <= 0 or not candidates:
        return []
    if total == 1:
        return [candidates[0]]
    scores = dict.fromkeys(candidates, 0)
    slots: list[int] = []
    for _ in range(total):
        best = -1
        best_value = 0
        for index in candidates:
            scores[index] += eweights[index]
            value = _c_division(scores[index] + total, total)
            if best < 0 or value > best_value:
                best, best_value = index, value
        slots.append(best)
        scores[best] -= total
    return slots


# --------------------------------------------------------------------------------------
# Consistent hashing (lb_chash.c)


@dataclass(frozen=True)
class Ring:
    """The consistent-hash tree of one server group, as sorted node keys."""

    keys: npt.NDArray[np.uint32]
    """Node keys in ascending order; nodes with equal keys keep insertion order."""

    owners: npt.NDArray[np.intp]
    """Server index of each node."""

    def __len__(self) -> int:
        return int(self.keys.shape[0])


def build_ring(members: Sequence[int], puids: Sequence[int], nodes: Sequence[int]) -> Ring:
    """Build the ring of the servers *members*: node j of a server has the key
    ``full_hash(puid * 4096 + j)``, for j below its node count (16 × weight)."""
    keys: list[npt.NDArray[np.uint32]] = []
    owners: list[npt.NDArray[np.intp]] = []
    for index in members:
        base = (puids[index] * SRV_EWGHT_RANGE) & MASK32
        node_ids = (np.arange(nodes[index], dtype=np.uint64) + np.uint64(base)) & np.uint64(MASK32)
        keys.append(full_hash_array(node_ids.astype(np.uint32)))
        owners.append(np.full(nodes[index], index, dtype=np.intp))
    if not keys:
        return Ring(np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.intp))
    all_keys = np.concatenate(keys)
    all_owners = np.concatenate(owners)
    # eb32 trees keep duplicate keys in insertion order, which a stable sort preserves.
    order = np.argsort(all_keys, kind="stable")
    return Ring(all_keys[order], all_owners[order])


def ring_lookup(ring: Ring, hashes: npt.NDArray[np.uint32]) -> npt.NDArray[np.intp]:
    """Return the server index for each hash: the nearest node on either side, the previous
    node winning a tie (``chash_get_server_hash`` without hash-balance-factor)."""
    size = len(ring)
    following = np.searchsorted(ring.keys, hashes, side="left")
    following[following == size] = 0
    previous = following - 1
    previous[previous < 0] = size - 1
    distance_prev = (hashes - ring.keys[previous]).astype(np.uint32)
    distance_next = (ring.keys[following] - hashes).astype(np.uint32)
    chosen = np.where(distance_prev <= distance_next, previous, following)
    return ring.owners[chosen]


def ring_arc_shares(ring: Ring, server_count: int) -> npt.NDArray[np.float64]:
    """Return each server's share of all 2**32 hash values under `ring_lookup`.

    Between two adjacent distinct keys a and b at distance d, the values a+1 .. a+d//2 go
    to a's last node and the rest to b's first node; the value equal to a key goes to its
    first node. Counts are exact integers.
    """
    shares = np.zeros(server_count, dtype=np.float64)
    if len(ring) == 0:
        return shares
    keys = ring.keys.astype(np.int64)
    distinct, first = np.unique(keys, return_index=True)
    last = np.append(first[1:], len(ring)) - 1
    if distinct.shape[0] == 1:
        shares[ring.owners[first[0]]] = 1.0
        return shares
    gaps = (np.roll(distinct, -1) - distinct) % (1 << 32)
    lower_half = gaps // 2
    upper_half = gaps - 1 - lower_half
    counts = np.zeros(server_count, dtype=np.int64)
    np.add.at(counts, ring.owners[first], 1)
    np.add.at(counts, ring.owners[last], lower_half)
    np.add.at(counts, ring.owners[np.roll(first, -1)], upper_half)
    shares[:] = counts / float(1 << 32)
    return shares
